//! Typed names: program types, map types, helpers and attach contexts, with the kernel
//! release each appeared in.
//!
//! Numbers come from `aya_obj::generated` (the UAPI), never from hand-typed constants; names
//! are libbpf's and bpftool's (`sched_cls`, `kprobe`, `bpf_get_func_ip`) so users can move
//! between tools. The `since` columns feed the inferred answers (see [`crate::inferred`]) and
//! the version oracle of the tests.
use std::fmt;

use aya_obj::generated::{
    bpf_func_id::{self, *},
    bpf_map_type::{self, *},
    bpf_prog_type::{self, *},
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A kernel release as (major, minor): what `since` columns hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Since(pub u64, pub u64);

impl Since {
    pub fn version(self) -> semver::Version {
        semver::Version::new(self.0, self.1, 0)
    }
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl Serialize for Since {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An unknown name, with the closest valid one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{}'{}", shown(.given), .suggestion.as_ref().map(|s| format!("; did you mean '{s}'?")).unwrap_or_default())]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub suggestion: Option<String>,
}

/// Longer inputs are no typo of any name: no suggestion is searched for them, and messages
/// show only their start (a 100 kB argument must not become a 100 kB error).
const LONGEST_NAME: usize = 128;

fn shown(given: &str) -> String {
    match given.char_indices().nth(LONGEST_NAME) {
        Some((at, _)) => format!("{}… ({} bytes)", &given[..at], given.len()),
        None => given.to_string(),
    }
}

/// The closest of `candidates` to `given`, if it is close enough to be a typo.
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    if given.len() > LONGEST_NAME {
        return None;
    }
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(given, c), c))
        .min()
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .map(|(_, c)| c.to_string())
}

macro_rules! serde_by_name {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.name())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.name())
            }
        }
    };
}

/// One row of the program-type table.
pub struct ProgTypeDef {
    pub ty: bpf_prog_type,
    pub name: &'static str,
    pub since: Since,
}

const fn pt(ty: bpf_prog_type, name: &'static str, since: Since) -> ProgTypeDef {
    ProgTypeDef { ty, name, since }
}

/// Every program type the UAPI we build against knows, with libbpf's name.
pub const PROG_TYPES: &[ProgTypeDef] = &[
    pt(BPF_PROG_TYPE_SOCKET_FILTER, "socket_filter", Since(3, 19)),
    pt(BPF_PROG_TYPE_KPROBE, "kprobe", Since(4, 1)),
    pt(BPF_PROG_TYPE_SCHED_CLS, "sched_cls", Since(4, 1)),
    pt(BPF_PROG_TYPE_SCHED_ACT, "sched_act", Since(4, 1)),
    pt(BPF_PROG_TYPE_TRACEPOINT, "tracepoint", Since(4, 7)),
    pt(BPF_PROG_TYPE_XDP, "xdp", Since(4, 8)),
    pt(BPF_PROG_TYPE_PERF_EVENT, "perf_event", Since(4, 9)),
    pt(BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", Since(4, 10)),
    pt(BPF_PROG_TYPE_CGROUP_SOCK, "cgroup_sock", Since(4, 10)),
    pt(BPF_PROG_TYPE_LWT_IN, "lwt_in", Since(4, 10)),
    pt(BPF_PROG_TYPE_LWT_OUT, "lwt_out", Since(4, 10)),
    pt(BPF_PROG_TYPE_LWT_XMIT, "lwt_xmit", Since(4, 10)),
    pt(BPF_PROG_TYPE_SOCK_OPS, "sock_ops", Since(4, 13)),
    pt(BPF_PROG_TYPE_SK_SKB, "sk_skb", Since(4, 14)),
    pt(BPF_PROG_TYPE_CGROUP_DEVICE, "cgroup_device", Since(4, 15)),
    pt(BPF_PROG_TYPE_SK_MSG, "sk_msg", Since(4, 17)),
    pt(BPF_PROG_TYPE_RAW_TRACEPOINT, "raw_tracepoint", Since(4, 17)),
    pt(
        BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        "cgroup_sock_addr",
        Since(4, 17),
    ),
    pt(BPF_PROG_TYPE_LWT_SEG6LOCAL, "lwt_seg6local", Since(4, 18)),
    pt(BPF_PROG_TYPE_LIRC_MODE2, "lirc_mode2", Since(4, 18)),
    pt(BPF_PROG_TYPE_SK_REUSEPORT, "sk_reuseport", Since(4, 19)),
    pt(BPF_PROG_TYPE_FLOW_DISSECTOR, "flow_dissector", Since(4, 20)),
    pt(BPF_PROG_TYPE_CGROUP_SYSCTL, "cgroup_sysctl", Since(5, 2)),
    pt(
        BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE,
        "raw_tracepoint_writable",
        Since(5, 2),
    ),
    pt(BPF_PROG_TYPE_CGROUP_SOCKOPT, "cgroup_sockopt", Since(5, 3)),
    pt(BPF_PROG_TYPE_TRACING, "tracing", Since(5, 5)),
    pt(BPF_PROG_TYPE_STRUCT_OPS, "struct_ops", Since(5, 6)),
    pt(BPF_PROG_TYPE_EXT, "ext", Since(5, 6)),
    pt(BPF_PROG_TYPE_LSM, "lsm", Since(5, 7)),
    pt(BPF_PROG_TYPE_SK_LOOKUP, "sk_lookup", Since(5, 9)),
    pt(BPF_PROG_TYPE_SYSCALL, "syscall", Since(5, 14)),
    pt(BPF_PROG_TYPE_NETFILTER, "netfilter", Since(6, 4)),
];

/// A BPF program type (`enum bpf_prog_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgramType(pub u32);

impl ProgramType {
    pub const SOCKET_FILTER: Self = Self(BPF_PROG_TYPE_SOCKET_FILTER as u32);
    pub const KPROBE: Self = Self(BPF_PROG_TYPE_KPROBE as u32);
    pub const SCHED_CLS: Self = Self(BPF_PROG_TYPE_SCHED_CLS as u32);
    pub const TRACING: Self = Self(BPF_PROG_TYPE_TRACING as u32);
    pub const EXT: Self = Self(BPF_PROG_TYPE_EXT as u32);
    pub const LSM: Self = Self(BPF_PROG_TYPE_LSM as u32);
    pub const STRUCT_OPS: Self = Self(BPF_PROG_TYPE_STRUCT_OPS as u32);

    pub fn def(self) -> Option<&'static ProgTypeDef> {
        PROG_TYPES.iter().find(|d| d.ty as u32 == self.0)
    }
    pub fn name(self) -> String {
        self.def()
            .map_or_else(|| format!("prog_type_{}", self.0), |d| d.name.to_string())
    }
    pub fn since(self) -> Option<Since> {
        self.def().map(|d| d.since)
    }
    /// The UAPI enumerator name, as the kernel's BTF spells it.
    pub fn uapi_name(self) -> String {
        format!("BPF_PROG_TYPE_{}", self.name().to_uppercase())
    }
    pub fn all() -> impl Iterator<Item = Self> {
        PROG_TYPES.iter().map(|d| Self(d.ty as u32))
    }
}

impl std::str::FromStr for ProgramType {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.trim().to_ascii_lowercase();
        let n = n.strip_prefix("bpf_prog_type_").unwrap_or(&n);
        // libbpf's section-style aliases users type most often.
        let n = match n {
            "tc" | "classifier" => "sched_cls",
            "action" => "sched_act",
            "fentry" | "fexit" => "tracing",
            other => other,
        };
        PROG_TYPES
            .iter()
            .find(|d| d.name == n)
            .map(|d| Self(d.ty as u32))
            .ok_or_else(|| UnknownName {
                what: "program type",
                given: s.to_string(),
                suggestion: closest(n, PROG_TYPES.iter().map(|d| d.name)),
            })
    }
}
serde_by_name!(ProgramType);

/// One row of the map-type table.
pub struct MapTypeDef {
    pub ty: bpf_map_type,
    pub name: &'static str,
    pub since: Since,
}

const fn mt(ty: bpf_map_type, name: &'static str, since: Since) -> MapTypeDef {
    MapTypeDef { ty, name, since }
}

/// Every map type the UAPI we build against knows, with libbpf's name.
pub const MAP_TYPES: &[MapTypeDef] = &[
    mt(BPF_MAP_TYPE_HASH, "hash", Since(3, 19)),
    mt(BPF_MAP_TYPE_ARRAY, "array", Since(3, 19)),
    mt(BPF_MAP_TYPE_PROG_ARRAY, "prog_array", Since(4, 2)),
    mt(
        BPF_MAP_TYPE_PERF_EVENT_ARRAY,
        "perf_event_array",
        Since(4, 3),
    ),
    mt(BPF_MAP_TYPE_PERCPU_HASH, "percpu_hash", Since(4, 6)),
    mt(BPF_MAP_TYPE_PERCPU_ARRAY, "percpu_array", Since(4, 6)),
    mt(BPF_MAP_TYPE_STACK_TRACE, "stack_trace", Since(4, 6)),
    mt(BPF_MAP_TYPE_CGROUP_ARRAY, "cgroup_array", Since(4, 8)),
    mt(BPF_MAP_TYPE_LRU_HASH, "lru_hash", Since(4, 10)),
    mt(
        BPF_MAP_TYPE_LRU_PERCPU_HASH,
        "lru_percpu_hash",
        Since(4, 10),
    ),
    mt(BPF_MAP_TYPE_LPM_TRIE, "lpm_trie", Since(4, 11)),
    mt(BPF_MAP_TYPE_ARRAY_OF_MAPS, "array_of_maps", Since(4, 12)),
    mt(BPF_MAP_TYPE_HASH_OF_MAPS, "hash_of_maps", Since(4, 12)),
    mt(BPF_MAP_TYPE_DEVMAP, "devmap", Since(4, 14)),
    mt(BPF_MAP_TYPE_SOCKMAP, "sockmap", Since(4, 14)),
    mt(BPF_MAP_TYPE_CPUMAP, "cpumap", Since(4, 15)),
    mt(BPF_MAP_TYPE_XSKMAP, "xskmap", Since(4, 18)),
    mt(BPF_MAP_TYPE_SOCKHASH, "sockhash", Since(4, 18)),
    mt(
        BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED,
        "cgroup_storage",
        Since(4, 19),
    ),
    mt(
        BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
        "reuseport_sockarray",
        Since(4, 19),
    ),
    mt(
        BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED,
        "percpu_cgroup_storage",
        Since(4, 20),
    ),
    mt(BPF_MAP_TYPE_QUEUE, "queue", Since(4, 20)),
    mt(BPF_MAP_TYPE_STACK, "stack", Since(4, 20)),
    mt(BPF_MAP_TYPE_SK_STORAGE, "sk_storage", Since(5, 2)),
    mt(BPF_MAP_TYPE_DEVMAP_HASH, "devmap_hash", Since(5, 4)),
    mt(BPF_MAP_TYPE_STRUCT_OPS, "struct_ops", Since(5, 6)),
    mt(BPF_MAP_TYPE_RINGBUF, "ringbuf", Since(5, 8)),
    mt(BPF_MAP_TYPE_INODE_STORAGE, "inode_storage", Since(5, 10)),
    mt(BPF_MAP_TYPE_TASK_STORAGE, "task_storage", Since(5, 11)),
    mt(BPF_MAP_TYPE_BLOOM_FILTER, "bloom_filter", Since(5, 16)),
    mt(BPF_MAP_TYPE_USER_RINGBUF, "user_ringbuf", Since(6, 1)),
    mt(BPF_MAP_TYPE_CGRP_STORAGE, "cgrp_storage", Since(6, 2)),
    mt(BPF_MAP_TYPE_ARENA, "arena", Since(6, 9)),
];

/// A BPF map type (`enum bpf_map_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapType(pub u32);

impl MapType {
    pub const RINGBUF: Self = Self(BPF_MAP_TYPE_RINGBUF as u32);
    pub const PERF_EVENT_ARRAY: Self = Self(BPF_MAP_TYPE_PERF_EVENT_ARRAY as u32);

    pub fn def(self) -> Option<&'static MapTypeDef> {
        MAP_TYPES.iter().find(|d| d.ty as u32 == self.0)
    }
    pub fn name(self) -> String {
        self.def()
            .map_or_else(|| format!("map_type_{}", self.0), |d| d.name.to_string())
    }
    pub fn since(self) -> Option<Since> {
        self.def().map(|d| d.since)
    }
    /// The UAPI enumerator name, as the kernel's BTF spells it.
    pub fn uapi_name(self) -> String {
        format!(
            "{:?}",
            self.def().map(|d| d.ty).unwrap_or(BPF_MAP_TYPE_UNSPEC)
        )
    }
    pub fn all() -> impl Iterator<Item = Self> {
        MAP_TYPES.iter().map(|d| Self(d.ty as u32))
    }
}

impl std::str::FromStr for MapType {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.trim().to_ascii_lowercase();
        let n = n.strip_prefix("bpf_map_type_").unwrap_or(&n);
        MAP_TYPES
            .iter()
            .find(|d| {
                d.name == n
                    || format!("{:?}", d.ty).to_ascii_lowercase() == format!("bpf_map_type_{n}")
            })
            .map(|d| Self(d.ty as u32))
            .ok_or_else(|| UnknownName {
                what: "map type",
                given: s.to_string(),
                suggestion: closest(n, MAP_TYPES.iter().map(|d| d.name)),
            })
    }
}
serde_by_name!(MapType);

/// Every helper of the UAPI we build against, in id order (a test checks the order).
/// Variant names, not numbers: the compiler checks each against aya-obj's bindings.
pub const HELPERS: &[bpf_func_id] = &[
    BPF_FUNC_unspec,
    BPF_FUNC_map_lookup_elem,
    BPF_FUNC_map_update_elem,
    BPF_FUNC_map_delete_elem,
    BPF_FUNC_probe_read,
    BPF_FUNC_ktime_get_ns,
    BPF_FUNC_trace_printk,
    BPF_FUNC_get_prandom_u32,
    BPF_FUNC_get_smp_processor_id,
    BPF_FUNC_skb_store_bytes,
    BPF_FUNC_l3_csum_replace,
    BPF_FUNC_l4_csum_replace,
    BPF_FUNC_tail_call,
    BPF_FUNC_clone_redirect,
    BPF_FUNC_get_current_pid_tgid,
    BPF_FUNC_get_current_uid_gid,
    BPF_FUNC_get_current_comm,
    BPF_FUNC_get_cgroup_classid,
    BPF_FUNC_skb_vlan_push,
    BPF_FUNC_skb_vlan_pop,
    BPF_FUNC_skb_get_tunnel_key,
    BPF_FUNC_skb_set_tunnel_key,
    BPF_FUNC_perf_event_read,
    BPF_FUNC_redirect,
    BPF_FUNC_get_route_realm,
    BPF_FUNC_perf_event_output,
    BPF_FUNC_skb_load_bytes,
    BPF_FUNC_get_stackid,
    BPF_FUNC_csum_diff,
    BPF_FUNC_skb_get_tunnel_opt,
    BPF_FUNC_skb_set_tunnel_opt,
    BPF_FUNC_skb_change_proto,
    BPF_FUNC_skb_change_type,
    BPF_FUNC_skb_under_cgroup,
    BPF_FUNC_get_hash_recalc,
    BPF_FUNC_get_current_task,
    BPF_FUNC_probe_write_user,
    BPF_FUNC_current_task_under_cgroup,
    BPF_FUNC_skb_change_tail,
    BPF_FUNC_skb_pull_data,
    BPF_FUNC_csum_update,
    BPF_FUNC_set_hash_invalid,
    BPF_FUNC_get_numa_node_id,
    BPF_FUNC_skb_change_head,
    BPF_FUNC_xdp_adjust_head,
    BPF_FUNC_probe_read_str,
    BPF_FUNC_get_socket_cookie,
    BPF_FUNC_get_socket_uid,
    BPF_FUNC_set_hash,
    BPF_FUNC_setsockopt,
    BPF_FUNC_skb_adjust_room,
    BPF_FUNC_redirect_map,
    BPF_FUNC_sk_redirect_map,
    BPF_FUNC_sock_map_update,
    BPF_FUNC_xdp_adjust_meta,
    BPF_FUNC_perf_event_read_value,
    BPF_FUNC_perf_prog_read_value,
    BPF_FUNC_getsockopt,
    BPF_FUNC_override_return,
    BPF_FUNC_sock_ops_cb_flags_set,
    BPF_FUNC_msg_redirect_map,
    BPF_FUNC_msg_apply_bytes,
    BPF_FUNC_msg_cork_bytes,
    BPF_FUNC_msg_pull_data,
    BPF_FUNC_bind,
    BPF_FUNC_xdp_adjust_tail,
    BPF_FUNC_skb_get_xfrm_state,
    BPF_FUNC_get_stack,
    BPF_FUNC_skb_load_bytes_relative,
    BPF_FUNC_fib_lookup,
    BPF_FUNC_sock_hash_update,
    BPF_FUNC_msg_redirect_hash,
    BPF_FUNC_sk_redirect_hash,
    BPF_FUNC_lwt_push_encap,
    BPF_FUNC_lwt_seg6_store_bytes,
    BPF_FUNC_lwt_seg6_adjust_srh,
    BPF_FUNC_lwt_seg6_action,
    BPF_FUNC_rc_repeat,
    BPF_FUNC_rc_keydown,
    BPF_FUNC_skb_cgroup_id,
    BPF_FUNC_get_current_cgroup_id,
    BPF_FUNC_get_local_storage,
    BPF_FUNC_sk_select_reuseport,
    BPF_FUNC_skb_ancestor_cgroup_id,
    BPF_FUNC_sk_lookup_tcp,
    BPF_FUNC_sk_lookup_udp,
    BPF_FUNC_sk_release,
    BPF_FUNC_map_push_elem,
    BPF_FUNC_map_pop_elem,
    BPF_FUNC_map_peek_elem,
    BPF_FUNC_msg_push_data,
    BPF_FUNC_msg_pop_data,
    BPF_FUNC_rc_pointer_rel,
    BPF_FUNC_spin_lock,
    BPF_FUNC_spin_unlock,
    BPF_FUNC_sk_fullsock,
    BPF_FUNC_tcp_sock,
    BPF_FUNC_skb_ecn_set_ce,
    BPF_FUNC_get_listener_sock,
    BPF_FUNC_skc_lookup_tcp,
    BPF_FUNC_tcp_check_syncookie,
    BPF_FUNC_sysctl_get_name,
    BPF_FUNC_sysctl_get_current_value,
    BPF_FUNC_sysctl_get_new_value,
    BPF_FUNC_sysctl_set_new_value,
    BPF_FUNC_strtol,
    BPF_FUNC_strtoul,
    BPF_FUNC_sk_storage_get,
    BPF_FUNC_sk_storage_delete,
    BPF_FUNC_send_signal,
    BPF_FUNC_tcp_gen_syncookie,
    BPF_FUNC_skb_output,
    BPF_FUNC_probe_read_user,
    BPF_FUNC_probe_read_kernel,
    BPF_FUNC_probe_read_user_str,
    BPF_FUNC_probe_read_kernel_str,
    BPF_FUNC_tcp_send_ack,
    BPF_FUNC_send_signal_thread,
    BPF_FUNC_jiffies64,
    BPF_FUNC_read_branch_records,
    BPF_FUNC_get_ns_current_pid_tgid,
    BPF_FUNC_xdp_output,
    BPF_FUNC_get_netns_cookie,
    BPF_FUNC_get_current_ancestor_cgroup_id,
    BPF_FUNC_sk_assign,
    BPF_FUNC_ktime_get_boot_ns,
    BPF_FUNC_seq_printf,
    BPF_FUNC_seq_write,
    BPF_FUNC_sk_cgroup_id,
    BPF_FUNC_sk_ancestor_cgroup_id,
    BPF_FUNC_ringbuf_output,
    BPF_FUNC_ringbuf_reserve,
    BPF_FUNC_ringbuf_submit,
    BPF_FUNC_ringbuf_discard,
    BPF_FUNC_ringbuf_query,
    BPF_FUNC_csum_level,
    BPF_FUNC_skc_to_tcp6_sock,
    BPF_FUNC_skc_to_tcp_sock,
    BPF_FUNC_skc_to_tcp_timewait_sock,
    BPF_FUNC_skc_to_tcp_request_sock,
    BPF_FUNC_skc_to_udp6_sock,
    BPF_FUNC_get_task_stack,
    BPF_FUNC_load_hdr_opt,
    BPF_FUNC_store_hdr_opt,
    BPF_FUNC_reserve_hdr_opt,
    BPF_FUNC_inode_storage_get,
    BPF_FUNC_inode_storage_delete,
    BPF_FUNC_d_path,
    BPF_FUNC_copy_from_user,
    BPF_FUNC_snprintf_btf,
    BPF_FUNC_seq_printf_btf,
    BPF_FUNC_skb_cgroup_classid,
    BPF_FUNC_redirect_neigh,
    BPF_FUNC_per_cpu_ptr,
    BPF_FUNC_this_cpu_ptr,
    BPF_FUNC_redirect_peer,
    BPF_FUNC_task_storage_get,
    BPF_FUNC_task_storage_delete,
    BPF_FUNC_get_current_task_btf,
    BPF_FUNC_bprm_opts_set,
    BPF_FUNC_ktime_get_coarse_ns,
    BPF_FUNC_ima_inode_hash,
    BPF_FUNC_sock_from_file,
    BPF_FUNC_check_mtu,
    BPF_FUNC_for_each_map_elem,
    BPF_FUNC_snprintf,
    BPF_FUNC_sys_bpf,
    BPF_FUNC_btf_find_by_name_kind,
    BPF_FUNC_sys_close,
    BPF_FUNC_timer_init,
    BPF_FUNC_timer_set_callback,
    BPF_FUNC_timer_start,
    BPF_FUNC_timer_cancel,
    BPF_FUNC_get_func_ip,
    BPF_FUNC_get_attach_cookie,
    BPF_FUNC_task_pt_regs,
    BPF_FUNC_get_branch_snapshot,
    BPF_FUNC_trace_vprintk,
    BPF_FUNC_skc_to_unix_sock,
    BPF_FUNC_kallsyms_lookup_name,
    BPF_FUNC_find_vma,
    BPF_FUNC_loop,
    BPF_FUNC_strncmp,
    BPF_FUNC_get_func_arg,
    BPF_FUNC_get_func_ret,
    BPF_FUNC_get_func_arg_cnt,
    BPF_FUNC_get_retval,
    BPF_FUNC_set_retval,
    BPF_FUNC_xdp_get_buff_len,
    BPF_FUNC_xdp_load_bytes,
    BPF_FUNC_xdp_store_bytes,
    BPF_FUNC_copy_from_user_task,
    BPF_FUNC_skb_set_tstamp,
    BPF_FUNC_ima_file_hash,
    BPF_FUNC_kptr_xchg,
    BPF_FUNC_map_lookup_percpu_elem,
    BPF_FUNC_skc_to_mptcp_sock,
    BPF_FUNC_dynptr_from_mem,
    BPF_FUNC_ringbuf_reserve_dynptr,
    BPF_FUNC_ringbuf_submit_dynptr,
    BPF_FUNC_ringbuf_discard_dynptr,
    BPF_FUNC_dynptr_read,
    BPF_FUNC_dynptr_write,
    BPF_FUNC_dynptr_data,
    BPF_FUNC_tcp_raw_gen_syncookie_ipv4,
    BPF_FUNC_tcp_raw_gen_syncookie_ipv6,
    BPF_FUNC_tcp_raw_check_syncookie_ipv4,
    BPF_FUNC_tcp_raw_check_syncookie_ipv6,
    BPF_FUNC_ktime_get_tai_ns,
    BPF_FUNC_user_ringbuf_drain,
    BPF_FUNC_cgrp_storage_get,
    BPF_FUNC_cgrp_storage_delete,
];

/// The first helper id of each kernel release. Helper ids are only ever appended
/// (`enum bpf_func_id`, `___BPF_FUNC_MAPPER`), so a helper's release is the last entry whose
/// first id is at or below it. Checked against each matrix kernel's BTF.
pub const HELPER_ID_SINCE: &[(u32, Since)] = &[
    (1, Since(3, 19)),
    (4, Since(4, 1)),
    (12, Since(4, 2)),
    (18, Since(4, 3)),
    (23, Since(4, 4)),
    (26, Since(4, 5)),
    (27, Since(4, 6)),
    (31, Since(4, 8)),
    (37, Since(4, 9)),
    (42, Since(4, 10)),
    (45, Since(4, 11)),
    (46, Since(4, 12)),
    (48, Since(4, 13)),
    (51, Since(4, 14)),
    (54, Since(4, 15)),
    (58, Since(4, 16)),
    (60, Since(4, 17)),
    (65, Since(4, 18)),
    (81, Since(4, 19)),
    (84, Since(4, 20)),
    (91, Since(5, 0)),
    (93, Since(5, 1)),
    (99, Since(5, 2)),
    (109, Since(5, 3)),
    (111, Since(5, 5)),
    (117, Since(5, 6)),
    (119, Since(5, 7)),
    (126, Since(5, 8)),
    (141, Since(5, 9)),
    (142, Since(5, 10)),
    (156, Since(5, 11)),
    (164, Since(5, 13)),
    (166, Since(5, 14)),
    (169, Since(5, 15)),
    (176, Since(5, 16)),
    (180, Since(5, 17)),
    (186, Since(5, 18)),
    (194, Since(5, 19)),
    (204, Since(6, 0)),
    (208, Since(6, 1)),
    (210, Since(6, 2)),
];

/// A BPF helper function (`enum bpf_func_id`), printed as `bpf_<name>` like bpftool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Helper(pub u32);

impl Helper {
    pub const TRACE_PRINTK: Self = Self(BPF_FUNC_trace_printk as u32);
    pub const PROBE_WRITE_USER: Self = Self(BPF_FUNC_probe_write_user as u32);
    pub const TRACE_VPRINTK: Self = Self(BPF_FUNC_trace_vprintk as u32);
    pub const GET_FUNC_IP: Self = Self(BPF_FUNC_get_func_ip as u32);
    pub const GET_ATTACH_COOKIE: Self = Self(BPF_FUNC_get_attach_cookie as u32);
    pub const GET_CURRENT_PID_TGID: Self = Self(BPF_FUNC_get_current_pid_tgid as u32);
    pub const PROBE_READ: Self = Self(BPF_FUNC_probe_read as u32);
    pub const PROBE_READ_STR: Self = Self(BPF_FUNC_probe_read_str as u32);
    pub const PROBE_READ_KERNEL: Self = Self(BPF_FUNC_probe_read_kernel as u32);
    pub const PROBE_READ_KERNEL_STR: Self = Self(BPF_FUNC_probe_read_kernel_str as u32);
    pub const RINGBUF_OUTPUT: Self = Self(BPF_FUNC_ringbuf_output as u32);

    pub fn id(self) -> u32 {
        self.0
    }
    /// The name without prefix (`get_func_ip`), as in the UAPI.
    pub fn short_name(self) -> String {
        match HELPERS.get(self.0 as usize) {
            Some(f) => format!("{f:?}").trim_start_matches("BPF_FUNC_").to_string(),
            None => format!("helper_{}", self.0),
        }
    }
    /// bpftool's name: `bpf_get_func_ip`.
    pub fn name(self) -> String {
        format!("bpf_{}", self.short_name())
    }
    /// The release that added it, from [`HELPER_ID_SINCE`]; `None` beyond our UAPI.
    pub fn since(self) -> Option<Since> {
        if self.0 == 0 || self.0 as usize >= HELPERS.len() {
            return None;
        }
        HELPER_ID_SINCE
            .iter()
            .rev()
            .find(|(first, _)| *first <= self.0)
            .map(|(_, s)| *s)
    }
    /// Every real helper of our UAPI (id 0, `unspec`, is not one).
    pub fn all() -> impl Iterator<Item = Self> {
        (1..HELPERS.len() as u32).map(Self)
    }
}

impl std::str::FromStr for Helper {
    type Err = UnknownName;
    /// Accepts `bpf_get_func_ip`, `get_func_ip`, `BPF_FUNC_get_func_ip` or the id `173`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Ok(id) = t.parse::<u32>()
            && id > 0
            && (id as usize) < HELPERS.len()
        {
            return Ok(Self(id));
        }
        let n = t.to_ascii_lowercase();
        let n = n
            .strip_prefix("bpf_func_")
            .or_else(|| n.strip_prefix("bpf_"))
            .unwrap_or(&n)
            .to_string();
        Self::all()
            .find(|h| h.short_name() == n)
            .ok_or_else(|| UnknownName {
                what: "helper",
                given: s.to_string(),
                suggestion: closest(
                    &format!("bpf_{n}"),
                    Self::all()
                        .map(|h| h.name())
                        .collect::<Vec<_>>()
                        .iter()
                        .map(|s| s.as_str()),
                ),
            })
    }
}
serde_by_name!(Helper);

/// Where a program runs, for the questions that depend on more than the program type.
///
/// The verifier checks some helpers against the attach context, not the type alone:
/// `bpf_get_func_ip` is allowed in kprobe (5.15), kprobe_multi (5.18), fentry/fexit on a
/// kernel function (5.15), but in fentry on a *BPF program* only from 5.18 — before that
/// the program was verified as its target's type (`not supported for program type 3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttachContext {
    /// The plain setup of a program type (for tracing: fentry on a kernel function; for
    /// lsm: `BPF_LSM_MAC`; for ext: replacing a function of a BPF program).
    Default(ProgramType),
    /// kprobe with `BPF_TRACE_KPROBE_MULTI` (5.18).
    KprobeMulti,
    /// tracing with `BPF_TRACE_FEXIT` on a kernel function.
    FexitKernelFn,
    /// tracing with `BPF_TRACE_FENTRY` and `attach_prog_fd`: fentry on a BPF program.
    FentryBpfProg,
}

impl AttachContext {
    pub const FENTRY_KERNEL_FN: Self = Self::Default(ProgramType::TRACING);
    pub const KPROBE: Self = Self::Default(ProgramType::KPROBE);

    pub fn prog_type(self) -> ProgramType {
        match self {
            Self::Default(t) => t,
            Self::KprobeMulti => ProgramType::KPROBE,
            Self::FexitKernelFn | Self::FentryBpfProg => ProgramType::TRACING,
        }
    }
    /// The extra contexts probed beside each program type's default.
    pub const EXTRA: [Self; 3] = [Self::KprobeMulti, Self::FexitKernelFn, Self::FentryBpfProg];

    /// The context's own name (`kprobe_multi`, `fentry_bpf_prog`), or `None` for a default.
    pub fn attach_name(self) -> Option<&'static str> {
        match self {
            Self::Default(t) if t == ProgramType::TRACING => Some("fentry"),
            Self::Default(_) => None,
            Self::KprobeMulti => Some("kprobe_multi"),
            Self::FexitKernelFn => Some("fexit"),
            Self::FentryBpfProg => Some("fentry_bpf_prog"),
        }
    }
    /// `kprobe`, `kprobe/kprobe_multi`, `tracing/fentry_bpf_prog`: type, then context.
    pub fn name(self) -> String {
        match self.attach_name() {
            Some(a) => format!("{}/{a}", self.prog_type().name()),
            None => self.prog_type().name(),
        }
    }
    /// Builds a context from a program type and an optional attach name.
    pub fn new(prog_type: ProgramType, attach: Option<&str>) -> Result<Self, UnknownName> {
        let valid: &[(&str, Self)] = &[
            ("kprobe_multi", Self::KprobeMulti),
            ("fentry", Self::FENTRY_KERNEL_FN),
            ("fexit", Self::FexitKernelFn),
            ("fentry_bpf_prog", Self::FentryBpfProg),
        ];
        let Some(a) = attach else {
            return Ok(Self::Default(prog_type));
        };
        valid
            .iter()
            .find(|(n, c)| *n == a && c.prog_type() == prog_type)
            .map(|(_, c)| *c)
            .ok_or_else(|| UnknownName {
                what: "attach context for this program type",
                given: a.to_string(),
                suggestion: closest(
                    a,
                    valid
                        .iter()
                        .filter(|(_, c)| c.prog_type() == prog_type)
                        .map(|(n, _)| *n),
                ),
            })
    }
    /// Every context of the helper matrix: each program type's default, then the extras.
    pub fn all() -> impl Iterator<Item = Self> {
        ProgramType::all().map(Self::Default).chain(Self::EXTRA)
    }
}

impl std::str::FromStr for AttachContext {
    type Err = UnknownName;
    /// `kprobe`, `kprobe/kprobe_multi`, or a bare context name (`fentry_bpf_prog`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((t, a)) => Self::new(t.parse()?, Some(a)),
            None => match s {
                "kprobe_multi" => Ok(Self::KprobeMulti),
                "fexit" => Ok(Self::FexitKernelFn),
                "fentry_bpf_prog" => Ok(Self::FentryBpfProg),
                _ => Ok(Self::Default(s.parse()?)),
            },
        }
    }
}
serde_by_name!(AttachContext);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_table_is_in_id_order_and_complete() {
        for (i, f) in HELPERS.iter().enumerate() {
            assert_eq!(*f as usize, i, "{f:?} out of place");
        }
        assert_eq!(HELPERS.len(), bpf_func_id::__BPF_FUNC_MAX_ID as usize);
    }

    #[test]
    fn helper_names_parse_every_way() {
        for s in [
            "bpf_get_func_ip",
            "get_func_ip",
            "BPF_FUNC_get_func_ip",
            "173",
            " Bpf_Get_Func_Ip ",
        ] {
            assert_eq!(s.parse::<Helper>().unwrap(), Helper::GET_FUNC_IP, "{s}");
        }
        assert_eq!(Helper::GET_FUNC_IP.name(), "bpf_get_func_ip");
        let e = "bpf_get_func_iq".parse::<Helper>().unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("bpf_get_func_ip"));
        assert!(e.to_string().contains("did you mean 'bpf_get_func_ip'"));
        assert!("0".parse::<Helper>().is_err());
        assert!(
            "nonsense_entirely_unrelated"
                .parse::<Helper>()
                .unwrap_err()
                .suggestion
                .is_none()
        );
    }

    #[test]
    fn helper_since_follows_the_id_ranges() {
        assert_eq!(Helper::GET_FUNC_IP.since(), Some(Since(5, 15)));
        assert_eq!(Helper::GET_ATTACH_COOKIE.since(), Some(Since(5, 15)));
        assert_eq!(Helper::RINGBUF_OUTPUT.since(), Some(Since(5, 8)));
        assert_eq!(Helper::PROBE_READ_KERNEL.since(), Some(Since(5, 5)));
        assert_eq!(Helper(1).since(), Some(Since(3, 19)));
        assert_eq!(Helper(155).since(), Some(Since(5, 10)));
        assert_eq!(Helper(156).since(), Some(Since(5, 11)));
        assert_eq!(Helper(10_000).since(), None);
        let firsts: Vec<u32> = HELPER_ID_SINCE.iter().map(|(f, _)| *f).collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]));
        let versions: Vec<Since> = HELPER_ID_SINCE.iter().map(|(_, s)| *s).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn type_names_round_trip_and_suggest() {
        for t in ProgramType::all() {
            assert_eq!(t.name().parse::<ProgramType>().unwrap(), t);
            assert_eq!(t.uapi_name().parse::<ProgramType>().unwrap(), t);
        }
        for t in MapType::all() {
            assert_eq!(t.name().parse::<MapType>().unwrap(), t);
        }
        assert_eq!("tc".parse::<ProgramType>().unwrap(), ProgramType::SCHED_CLS);
        assert_eq!(
            "kprob"
                .parse::<ProgramType>()
                .unwrap_err()
                .suggestion
                .as_deref(),
            Some("kprobe")
        );
        assert_eq!(
            "ringbuff"
                .parse::<MapType>()
                .unwrap_err()
                .suggestion
                .as_deref(),
            Some("ringbuf")
        );
        assert_eq!(MapType::RINGBUF.uapi_name(), "BPF_MAP_TYPE_RINGBUF");
        assert_eq!(
            ProgramType::SCHED_CLS.uapi_name(),
            "BPF_PROG_TYPE_SCHED_CLS"
        );
    }

    #[test]
    fn contexts_name_and_parse() {
        for c in AttachContext::all() {
            assert_eq!(
                c.name().parse::<AttachContext>().unwrap(),
                c,
                "{}",
                c.name()
            );
        }
        assert_eq!(
            AttachContext::FentryBpfProg.name(),
            "tracing/fentry_bpf_prog"
        );
        assert_eq!(
            AttachContext::new(ProgramType::KPROBE, Some("kprobe_multi")).unwrap(),
            AttachContext::KprobeMulti
        );
        assert!(AttachContext::new(ProgramType::KPROBE, Some("fentry_bpf_prog")).is_err());
        assert_eq!(
            "fentry_bpf_prog".parse::<AttachContext>().unwrap(),
            AttachContext::FentryBpfProg
        );
    }
}
