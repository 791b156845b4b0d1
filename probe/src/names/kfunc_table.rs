//! Well-known kfuncs: when each appeared, for which program types it is registered, its
//! flags. Read from the kernel's sources (`register_btf_kfunc_id_set` calls, `BTF_ID_FLAGS`),
//! checked at each release tag. For kernels whose BTF lacks the `bpf_kfunc` declaration tags
//! (6.1 and earlier).
//!
//! `since` is the first release whose tree registers the name in a kfunc set, checked as
//! "present in X.Y, absent in the release before" in that release's sources. `flags` and
//! `hooks` are those of v6.18; a row's comment says where v6.1 or v6.12 differ.
//!
//! `hooks` are the program types the kernel's lookup (`btf_kfunc_id_set_contains`) finds the
//! kfunc for: the types passed to `register_btf_kfunc_id_set`, widened to every type that
//! `bpf_prog_type_to_kfunc_hook` maps to the same hook (in 6.18 `tracing` also brings
//! `tracepoint`, `perf_event` and `lsm`; `cgroup_skb` brings the other cgroup types and
//! `sock_ops`), narrowed where the set's `.filter` tests the program type. The verifier can
//! still refuse a call for its arguments (a context of the wrong type, a sleepable kfunc in
//! a non-sleepable program).
use super::Since;
use flags::*;

/// KF_* flags of a kfunc (include/linux/btf.h, v6.18 bit values).
pub mod flags {
    /// `KF_ACQUIRE`: returns a reference the program must release.
    pub const ACQUIRE: u32 = 1 << 0;
    /// `KF_RELEASE`: releases the reference passed to it.
    pub const RELEASE: u32 = 1 << 1;
    /// `KF_RET_NULL`: the returned pointer may be NULL.
    pub const RET_NULL: u32 = 1 << 2;
    /// `KF_TRUSTED_ARGS`: pointer arguments must be trusted.
    pub const TRUSTED_ARGS: u32 = 1 << 4;
    /// `KF_SLEEPABLE`: may sleep; sleepable programs only.
    pub const SLEEPABLE: u32 = 1 << 5;
    /// `KF_DESTRUCTIVE`: destructive (needs `CAP_SYS_BOOT`).
    pub const DESTRUCTIVE: u32 = 1 << 6;
    /// `KF_RCU`: takes RCU-protected or trusted pointers.
    pub const RCU: u32 = 1 << 7;
    /// `KF_ITER_NEW`: an open-coded iterator's constructor.
    pub const ITER_NEW: u32 = 1 << 8;
    /// `KF_ITER_NEXT`: an open-coded iterator's next method.
    pub const ITER_NEXT: u32 = 1 << 9;
    /// `KF_ITER_DESTROY`: an open-coded iterator's destructor.
    pub const ITER_DESTROY: u32 = 1 << 10;
    /// `KF_RCU_PROTECTED`: must be called inside an RCU read-side section.
    pub const RCU_PROTECTED: u32 = 1 << 11;
    /// `KF_FASTCALL`: supports the bpf_fastcall convention (6.13+).
    pub const FASTCALL: u32 = 1 << 12;
}

/// Program types a kfunc set is registered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hooks {
    /// BPF_PROG_TYPE_UNSPEC (the common hook): every program type.
    All,
    /// these program types (libbpf names)
    Types(&'static [&'static str]),
}

/// One kfunc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KfuncRow {
    /// The BTF function name.
    pub name: &'static str,
    /// The first release that registers it as a kfunc.
    pub since: Since,
    /// `None` for vmlinux; the module whose BTF holds it otherwise.
    pub module: Option<&'static str>,
    /// Its [`flags`] in v6.18.
    pub flags: u32,
    /// The program types it is registered for in v6.18.
    pub hooks: Hooks,
}

/// kernel/bpf/helpers.c `generic_kfunc_set` in v6.18: registered for TRACING, SCHED_CLS,
/// XDP, STRUCT_OPS, SYSCALL and CGROUP_SKB. v6.12: the same without `sock_ops` (the cgroup
/// hook took `sock_ops` after 6.14). Earlier the set reached fewer types: 6.2–6.7 `tracing`,
/// `lsm`, `sched_cls`, `struct_ops`; `xdp` from 6.8; `syscall` from 6.10; `tracepoint`,
/// `perf_event` and the `cgroup_*` types from 6.12. Never `kprobe` (its own hook since 6.10)
/// nor `raw_tracepoint`.
const GENERIC: &[&str] = &[
    "tracing",
    "tracepoint",
    "perf_event",
    "lsm",
    "sched_cls",
    "xdp",
    "struct_ops",
    "syscall",
    "cgroup_skb",
    "cgroup_sock",
    "cgroup_device",
    "cgroup_sock_addr",
    "cgroup_sockopt",
    "cgroup_sysctl",
    "sock_ops",
];

/// kernel/bpf/cpumask.c in v6.18 and v6.12: TRACING, STRUCT_OPS, SYSCALL (6.3–6.9 without
/// `syscall`; before 6.12 `tracing` did not bring `tracepoint`/`perf_event`).
const CPUMASK: &[&str] = &[
    "tracing",
    "tracepoint",
    "perf_event",
    "lsm",
    "struct_ops",
    "syscall",
];

/// net/core/filter.c `bpf_kfunc_set_skb` in v6.18 (SCHED_CLS, SCHED_ACT, SK_SKB,
/// SOCKET_FILTER, CGROUP_SKB, LWT_*, NETFILTER, TRACING), plus `struct_ops` from
/// net/sched/bpf_qdisc.c (filtered to Qdisc struct_ops).
const SKB_DYNPTR: &[&str] = &[
    "sched_cls",
    "sched_act",
    "sk_skb",
    "socket_filter",
    "cgroup_skb",
    "cgroup_sock",
    "cgroup_device",
    "cgroup_sock_addr",
    "cgroup_sockopt",
    "cgroup_sysctl",
    "sock_ops",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "lwt_seg6local",
    "netfilter",
    "tracing",
    "tracepoint",
    "perf_event",
    "lsm",
    "struct_ops",
];

/// XDP only.
const XDP: &[&str] = &["xdp"];

/// net/netfilter/nf_conntrack_bpf.c: XDP and SCHED_CLS.
const CONNTRACK: &[&str] = &["xdp", "sched_cls"];

/// Registered for LSM (the tracing hook), filtered to `lsm` programs.
const LSM_ONLY: &[&str] = &["lsm"];

/// The kprobe hook, filtered to kprobe.session (and, by 6.14, uprobe.session) programs.
const KPROBE_SESSION: &[&str] = &["kprobe"];

/// vmlinux.
const V: Option<&str> = None;
/// nf_conntrack.ko (net/netfilter/nf_conntrack_bpf.c is linked into it).
const NF_CONNTRACK: Option<&str> = Some("nf_conntrack");

/// The table, grouped by the kernel set that registers each kfunc.
#[rustfmt::skip]
pub const KFUNCS: &[KfuncRow] = &[
    // ---- kernel/bpf/helpers.c generic_kfunc_set (Hooks: GENERIC) ----
    // 6.1: in tracing_kfunc_set for TRACING only (tracing, lsm), under CONFIG_KEXEC_CORE;
    // 6.12: GENERIC without sock_ops. Under CONFIG_CRASH_DUMP in 6.18. Not `bpf_`-prefixed.
    KfuncRow { name: "crash_kexec", since: Since::new(6, 1), module: V, flags: DESTRUCTIVE, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops.
    KfuncRow { name: "bpf_obj_new_impl", since: Since::new(6, 2), module: V, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops.
    KfuncRow { name: "bpf_obj_drop_impl", since: Since::new(6, 2), module: V, flags: RELEASE, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. 6.4–6.6 flags without RCU.
    KfuncRow { name: "bpf_refcount_acquire_impl", since: Since::new(6, 4), module: V, flags: ACQUIRE | RET_NULL | RCU, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. Was `bpf_list_push_front` in 6.2–6.3.
    KfuncRow { name: "bpf_list_push_front_impl", since: Since::new(6, 4), module: V, flags: 0, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. Was `bpf_list_push_back` in 6.2–6.3.
    KfuncRow { name: "bpf_list_push_back_impl", since: Since::new(6, 4), module: V, flags: 0, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops.
    KfuncRow { name: "bpf_list_pop_front", since: Since::new(6, 2), module: V, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops.
    KfuncRow { name: "bpf_list_pop_back", since: Since::new(6, 2), module: V, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. Was `bpf_rbtree_add` in 6.3.
    KfuncRow { name: "bpf_rbtree_add_impl", since: Since::new(6, 4), module: V, flags: 0, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. 6.3: ACQUIRE only.
    KfuncRow { name: "bpf_rbtree_remove", since: Since::new(6, 3), module: V, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops.
    KfuncRow { name: "bpf_rbtree_first", since: Since::new(6, 3), module: V, flags: RET_NULL, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. 6.2–6.3 flags: ACQUIRE | TRUSTED_ARGS.
    KfuncRow { name: "bpf_task_acquire", since: Since::new(6, 2), module: V, flags: ACQUIRE | RCU | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops.
    KfuncRow { name: "bpf_task_release", since: Since::new(6, 2), module: V, flags: RELEASE, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. Refused in kprobe programs (kprobe has its own hook, which the
    // generic set is not registered for); tracepoint reaches it only from 6.12 (before, the
    // tracing hook took just tracing and lsm).
    KfuncRow { name: "bpf_task_from_pid", since: Since::new(6, 2), module: V, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // Not in 6.12.
    KfuncRow { name: "bpf_task_from_vpid", since: Since::new(6, 13), module: V, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. CONFIG_CGROUPS.
    KfuncRow { name: "bpf_task_under_cgroup", since: Since::new(6, 5), module: V, flags: RCU, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. CONFIG_CGROUPS.
    KfuncRow { name: "bpf_task_get_cgroup1", since: Since::new(6, 8), module: V, flags: ACQUIRE | RCU | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. CONFIG_CGROUPS. 6.2–6.3 flags: ACQUIRE | TRUSTED_ARGS.
    KfuncRow { name: "bpf_cgroup_acquire", since: Since::new(6, 2), module: V, flags: ACQUIRE | RCU | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. CONFIG_CGROUPS.
    KfuncRow { name: "bpf_cgroup_release", since: Since::new(6, 2), module: V, flags: RELEASE, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. CONFIG_CGROUPS. 6.2–6.3 flags: ACQUIRE | TRUSTED_ARGS | RET_NULL.
    KfuncRow { name: "bpf_cgroup_ancestor", since: Since::new(6, 2), module: V, flags: ACQUIRE | RCU | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops. CONFIG_CGROUPS.
    KfuncRow { name: "bpf_cgroup_from_id", since: Since::new(6, 4), module: V, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // 6.12: no sock_ops.
    KfuncRow { name: "bpf_throw", since: Since::new(6, 7), module: V, flags: 0, hooks: Hooks::Types(GENERIC) },
    // Not in 6.12. CONFIG_BPF_EVENTS.
    KfuncRow { name: "bpf_send_signal_task", since: Since::new(6, 13), module: V, flags: TRUSTED_ARGS, hooks: Hooks::Types(GENERIC) },
    // 6.1–6.17: key_sig_kfunc_set in kernel/trace/bpf_trace.c, for TRACING only: 6.1 tracing,
    // lsm; 6.12 tracing, tracepoint, perf_event, lsm. In the generic set from 6.18. CONFIG_KEYS.
    KfuncRow { name: "bpf_lookup_user_key", since: Since::new(6, 1), module: V, flags: ACQUIRE | RET_NULL | SLEEPABLE, hooks: Hooks::Types(GENERIC) },
    // As bpf_lookup_user_key: 6.1 tracing, lsm; 6.12 tracing, tracepoint, perf_event, lsm.
    KfuncRow { name: "bpf_lookup_system_key", since: Since::new(6, 1), module: V, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(GENERIC) },
    // As bpf_lookup_user_key: 6.1 tracing, lsm; 6.12 tracing, tracepoint, perf_event, lsm.
    KfuncRow { name: "bpf_key_put", since: Since::new(6, 1), module: V, flags: RELEASE, hooks: Hooks::Types(GENERIC) },
    // As bpf_lookup_user_key: 6.1 tracing, lsm; 6.12 tracing, tracepoint, perf_event, lsm.
    // Also needs CONFIG_SYSTEM_DATA_VERIFICATION.
    KfuncRow { name: "bpf_verify_pkcs7_signature", since: Since::new(6, 1), module: V, flags: SLEEPABLE, hooks: Hooks::Types(GENERIC) },
    // ---- kernel/bpf/helpers.c common_kfunc_set, BPF_PROG_TYPE_UNSPEC (Hooks::All) ----
    // The common hook exists from 6.2; 6.12 the same. FASTCALL from 6.13.
    KfuncRow { name: "bpf_cast_to_kern_ctx", since: Since::new(6, 2), module: V, flags: FASTCALL, hooks: Hooks::All },
    // FASTCALL from 6.13.
    KfuncRow { name: "bpf_rdonly_cast", since: Since::new(6, 2), module: V, flags: FASTCALL, hooks: Hooks::All },
    KfuncRow { name: "bpf_rcu_read_lock", since: Since::new(6, 2), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_rcu_read_unlock", since: Since::new(6, 2), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_dynptr_slice", since: Since::new(6, 4), module: V, flags: RET_NULL, hooks: Hooks::All },
    KfuncRow { name: "bpf_dynptr_slice_rdwr", since: Since::new(6, 4), module: V, flags: RET_NULL, hooks: Hooks::All },
    KfuncRow { name: "bpf_dynptr_adjust", since: Since::new(6, 5), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_dynptr_is_null", since: Since::new(6, 5), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_dynptr_is_rdonly", since: Since::new(6, 5), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_dynptr_size", since: Since::new(6, 5), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_dynptr_clone", since: Since::new(6, 5), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_num_new", since: Since::new(6, 4), module: V, flags: ITER_NEW, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_num_next", since: Since::new(6, 4), module: V, flags: ITER_NEXT | RET_NULL, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_num_destroy", since: Since::new(6, 4), module: V, flags: ITER_DESTROY, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_task_vma_new", since: Since::new(6, 7), module: V, flags: ITER_NEW | RCU, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_task_vma_next", since: Since::new(6, 7), module: V, flags: ITER_NEXT | RET_NULL, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_task_vma_destroy", since: Since::new(6, 7), module: V, flags: ITER_DESTROY, hooks: Hooks::All },
    // The css iterators need CONFIG_CGROUPS.
    KfuncRow { name: "bpf_iter_css_task_new", since: Since::new(6, 7), module: V, flags: ITER_NEW | TRUSTED_ARGS, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_css_task_next", since: Since::new(6, 7), module: V, flags: ITER_NEXT | RET_NULL, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_css_task_destroy", since: Since::new(6, 7), module: V, flags: ITER_DESTROY, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_css_new", since: Since::new(6, 7), module: V, flags: ITER_NEW | TRUSTED_ARGS | RCU_PROTECTED, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_css_next", since: Since::new(6, 7), module: V, flags: ITER_NEXT | RET_NULL, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_css_destroy", since: Since::new(6, 7), module: V, flags: ITER_DESTROY, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_task_new", since: Since::new(6, 7), module: V, flags: ITER_NEW | TRUSTED_ARGS | RCU_PROTECTED, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_task_next", since: Since::new(6, 7), module: V, flags: ITER_NEXT | RET_NULL, hooks: Hooks::All },
    KfuncRow { name: "bpf_iter_task_destroy", since: Since::new(6, 7), module: V, flags: ITER_DESTROY, hooks: Hooks::All },
    KfuncRow { name: "bpf_wq_init", since: Since::new(6, 10), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_wq_set_callback_impl", since: Since::new(6, 10), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_wq_start", since: Since::new(6, 10), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_preempt_disable", since: Since::new(6, 10), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_preempt_enable", since: Since::new(6, 10), module: V, flags: 0, hooks: Hooks::All },
    KfuncRow { name: "bpf_copy_from_user_str", since: Since::new(6, 12), module: V, flags: SLEEPABLE, hooks: Hooks::All },
    // ---- net/core/filter.c ----
    // 6.12: no sock_ops, no struct_ops (bpf_qdisc.c came after 6.14). Flags: none 6.4–6.11,
    // TRUSTED_ARGS from 6.12.
    KfuncRow { name: "bpf_dynptr_from_skb", since: Since::new(6, 4), module: V, flags: TRUSTED_ARGS, hooks: Hooks::Types(SKB_DYNPTR) },
    // 6.12: the same.
    KfuncRow { name: "bpf_dynptr_from_xdp", since: Since::new(6, 4), module: V, flags: 0, hooks: Hooks::Types(XDP) },
    // ---- fs/bpf_fs_kfuncs.c bpf_fs_kfunc_set, LSM with an lsm-only filter ----
    // 6.8–6.11 in kernel/trace/bpf_trace.c with the same lsm-only filter; 6.12 the same.
    KfuncRow { name: "bpf_get_file_xattr", since: Since::new(6, 8), module: V, flags: SLEEPABLE | TRUSTED_ARGS, hooks: Hooks::Types(LSM_ONLY) },
    // 6.12: the same. fs/bpf_fs_kfuncs.c is built with CONFIG_BPF_LSM.
    KfuncRow { name: "bpf_get_task_exe_file", since: Since::new(6, 12), module: V, flags: ACQUIRE | TRUSTED_ARGS | RET_NULL, hooks: Hooks::Types(LSM_ONLY) },
    // 6.12: the same.
    KfuncRow { name: "bpf_put_file", since: Since::new(6, 12), module: V, flags: RELEASE, hooks: Hooks::Types(LSM_ONLY) },
    // 6.12: the same.
    KfuncRow { name: "bpf_path_d_path", since: Since::new(6, 12), module: V, flags: TRUSTED_ARGS, hooks: Hooks::Types(LSM_ONLY) },
    // ---- kernel/trace/bpf_trace.c kprobe_multi_kfunc_set, KPROBE with a session filter ----
    // 6.10–6.12: the filter admits kprobe.session only; 6.18 (and 6.14) also uprobe.session.
    KfuncRow { name: "bpf_session_cookie", since: Since::new(6, 10), module: V, flags: 0, hooks: Hooks::Types(KPROBE_SESSION) },
    // As bpf_session_cookie.
    KfuncRow { name: "bpf_session_is_return", since: Since::new(6, 10), module: V, flags: 0, hooks: Hooks::Types(KPROBE_SESSION) },
    // ---- kernel/bpf/cpumask.c cpumask_kfunc_set (Hooks: CPUMASK; 6.12 the same) ----
    KfuncRow { name: "bpf_cpumask_create", since: Since::new(6, 3), module: V, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(CPUMASK) },
    // 6.3 flags: RELEASE | TRUSTED_ARGS.
    KfuncRow { name: "bpf_cpumask_release", since: Since::new(6, 3), module: V, flags: RELEASE, hooks: Hooks::Types(CPUMASK) },
    KfuncRow { name: "bpf_cpumask_acquire", since: Since::new(6, 3), module: V, flags: ACQUIRE | TRUSTED_ARGS, hooks: Hooks::Types(CPUMASK) },
    // 6.3 flags: TRUSTED_ARGS.
    KfuncRow { name: "bpf_cpumask_set_cpu", since: Since::new(6, 3), module: V, flags: RCU, hooks: Hooks::Types(CPUMASK) },
    // 6.3 flags: TRUSTED_ARGS.
    KfuncRow { name: "bpf_cpumask_test_cpu", since: Since::new(6, 3), module: V, flags: RCU, hooks: Hooks::Types(CPUMASK) },
    // ---- net/core/xdp.c xdp_metadata_kfunc_set, XDP (device-bound programs) ----
    // 6.12: the same. Flags 0 in 6.3–6.4, TRUSTED_ARGS by 6.8.
    KfuncRow { name: "bpf_xdp_metadata_rx_timestamp", since: Since::new(6, 3), module: V, flags: TRUSTED_ARGS, hooks: Hooks::Types(XDP) },
    // As bpf_xdp_metadata_rx_timestamp.
    KfuncRow { name: "bpf_xdp_metadata_rx_hash", since: Since::new(6, 3), module: V, flags: TRUSTED_ARGS, hooks: Hooks::Types(XDP) },
    // ---- net/netfilter/nf_conntrack_bpf.c nf_ct_kfunc_set, XDP and SCHED_CLS ----
    // Linked into nf_conntrack.ko when nf_conntrack is a module (Debian), with
    // CONFIG_DEBUG_INFO_BTF_MODULES. 6.1 and 6.12: the same hooks and flags.
    // 5.18–5.19: in the TC set only (bpf_skb_ct_lookup) / XDP set only (bpf_xdp_ct_lookup);
    // one set for both program types from 6.0.
    KfuncRow { name: "bpf_skb_ct_lookup", since: Since::new(5, 18), module: NF_CONNTRACK, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(CONNTRACK) },
    // 5.18–5.19: XDP set only.
    KfuncRow { name: "bpf_xdp_ct_lookup", since: Since::new(5, 18), module: NF_CONNTRACK, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(CONNTRACK) },
    KfuncRow { name: "bpf_ct_release", since: Since::new(5, 18), module: NF_CONNTRACK, flags: RELEASE, hooks: Hooks::Types(CONNTRACK) },
    KfuncRow { name: "bpf_skb_ct_alloc", since: Since::new(6, 0), module: NF_CONNTRACK, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(CONNTRACK) },
    KfuncRow { name: "bpf_xdp_ct_alloc", since: Since::new(6, 0), module: NF_CONNTRACK, flags: ACQUIRE | RET_NULL, hooks: Hooks::Types(CONNTRACK) },
    KfuncRow { name: "bpf_ct_insert_entry", since: Since::new(6, 0), module: NF_CONNTRACK, flags: ACQUIRE | RET_NULL | RELEASE, hooks: Hooks::Types(CONNTRACK) },
    KfuncRow { name: "bpf_ct_set_timeout", since: Since::new(6, 0), module: NF_CONNTRACK, flags: TRUSTED_ARGS, hooks: Hooks::Types(CONNTRACK) },
    KfuncRow { name: "bpf_ct_change_timeout", since: Since::new(6, 0), module: NF_CONNTRACK, flags: TRUSTED_ARGS, hooks: Hooks::Types(CONNTRACK) },
    KfuncRow { name: "bpf_ct_set_status", since: Since::new(6, 0), module: NF_CONNTRACK, flags: TRUSTED_ARGS, hooks: Hooks::Types(CONNTRACK) },
    KfuncRow { name: "bpf_ct_change_status", since: Since::new(6, 0), module: NF_CONNTRACK, flags: TRUSTED_ARGS, hooks: Hooks::Types(CONNTRACK) },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// kfuncs registered under the kernel's own name rather than a `bpf_` one.
    const NOT_BPF_PREFIXED: &[&str] = &["crash_kexec"];

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for k in KFUNCS {
            assert!(!k.name.is_empty());
            assert!(
                k.name.starts_with("bpf_") || NOT_BPF_PREFIXED.contains(&k.name),
                "{}",
                k.name
            );
            assert!(seen.insert(k.name), "{} twice", k.name);
        }
    }

    #[test]
    fn since_is_at_least_kfunc_calls() {
        for k in KFUNCS {
            assert!(k.since >= Since::new(5, 13), "{}", k.name);
            assert!(k.since <= Since::new(6, 18), "{}", k.name);
        }
    }

    #[test]
    fn hooks_are_known_program_types() {
        for k in KFUNCS {
            if let Hooks::Types(types) = k.hooks {
                assert!(!types.is_empty(), "{}", k.name);
                let mut seen = HashSet::new();
                for t in types {
                    assert!(
                        super::super::PROG_TYPES.iter().any(|d| d.name == *t),
                        "{}: unknown program type {t}",
                        k.name
                    );
                    assert!(seen.insert(*t), "{}: {t} twice", k.name);
                }
            }
        }
    }

    #[test]
    fn flags_are_known_bits() {
        let known = ACQUIRE
            | RELEASE
            | RET_NULL
            | TRUSTED_ARGS
            | SLEEPABLE
            | DESTRUCTIVE
            | RCU
            | ITER_NEW
            | ITER_NEXT
            | ITER_DESTROY
            | RCU_PROTECTED
            | FASTCALL;
        for k in KFUNCS {
            assert_eq!(k.flags & !known, 0, "{}", k.name);
        }
    }
}
