//! Helpers: every `enum bpf_func_id` member in id order, and the release of each id range.
use aya_obj::generated::bpf_func_id::{self, *};

use super::{Since, UnknownName, closest, serde_by_name};

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
    (1, Since::new(3, 19)),
    (4, Since::new(4, 1)),
    (12, Since::new(4, 2)),
    (18, Since::new(4, 3)),
    (23, Since::new(4, 4)),
    (26, Since::new(4, 5)),
    (27, Since::new(4, 6)),
    (31, Since::new(4, 8)),
    (37, Since::new(4, 9)),
    (42, Since::new(4, 10)),
    (45, Since::new(4, 11)),
    (46, Since::new(4, 12)),
    (48, Since::new(4, 13)),
    (51, Since::new(4, 14)),
    (54, Since::new(4, 15)),
    (58, Since::new(4, 16)),
    (60, Since::new(4, 17)),
    (65, Since::new(4, 18)),
    (81, Since::new(4, 19)),
    (84, Since::new(4, 20)),
    (91, Since::new(5, 0)),
    (93, Since::new(5, 1)),
    (99, Since::new(5, 2)),
    (109, Since::new(5, 3)),
    (111, Since::new(5, 5)),
    (117, Since::new(5, 6)),
    (119, Since::new(5, 7)),
    (126, Since::new(5, 8)),
    (141, Since::new(5, 9)),
    (142, Since::new(5, 10)),
    (156, Since::new(5, 11)),
    (164, Since::new(5, 13)),
    (166, Since::new(5, 14)),
    (169, Since::new(5, 15)),
    (176, Since::new(5, 16)),
    (180, Since::new(5, 17)),
    (186, Since::new(5, 18)),
    (194, Since::new(5, 19)),
    (204, Since::new(6, 0)),
    (208, Since::new(6, 1)),
    (210, Since::new(6, 2)),
];

/// bpftool's name of every helper, by id: made once from the bindings' variant names (the
/// one source), so no question allocates a name.
static NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    HELPERS
        .iter()
        .map(|f| format!("bpf_{}", format!("{f:?}").trim_start_matches("BPF_FUNC_")))
        .collect()
});

/// A BPF helper function (`enum bpf_func_id`), printed as `bpf_<name>` like bpftool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Helper(pub u32);

impl Helper {
    /// 4.1; its load logs the `trace_printk()` banner, so it is not probed by default.
    pub const TRACE_PRINTK: Self = Self(BPF_FUNC_trace_printk as u32);
    /// 4.8; its load logs a warning, and lockdown=integrity refuses it.
    pub const PROBE_WRITE_USER: Self = Self(BPF_FUNC_probe_write_user as u32);
    /// 5.16; logs the same banner as [`Self::TRACE_PRINTK`].
    pub const TRACE_VPRINTK: Self = Self(BPF_FUNC_trace_vprintk as u32);
    /// 5.15; allowed per attach context, see [`crate::AttachContext`].
    pub const GET_FUNC_IP: Self = Self(BPF_FUNC_get_func_ip as u32);
    /// 5.15; what the `bpf_cookie` feature probes.
    pub const GET_ATTACH_COOKIE: Self = Self(BPF_FUNC_get_attach_cookie as u32);
    /// 4.2; callable from every tracing program type.
    pub const GET_CURRENT_PID_TGID: Self = Self(BPF_FUNC_get_current_pid_tgid as u32);
    /// 4.1; lockdown=confidentiality refuses it.
    pub const PROBE_READ: Self = Self(BPF_FUNC_probe_read as u32);
    /// 4.11; lockdown=confidentiality refuses it.
    pub const PROBE_READ_STR: Self = Self(BPF_FUNC_probe_read_str as u32);
    /// 5.5; lockdown=confidentiality refuses it.
    pub const PROBE_READ_KERNEL: Self = Self(BPF_FUNC_probe_read_kernel as u32);
    /// 5.5; lockdown=confidentiality refuses it.
    pub const PROBE_READ_KERNEL_STR: Self = Self(BPF_FUNC_probe_read_kernel_str as u32);
    /// 5.8, with the ringbuf map.
    pub const RINGBUF_OUTPUT: Self = Self(BPF_FUNC_ringbuf_output as u32);

    /// The `enum bpf_func_id` value, as a `call` instruction's immediate.
    pub fn id(self) -> u32 {
        self.0
    }
    /// The name without prefix (`get_func_ip`), as in the UAPI.
    pub fn short_name(self) -> &'static str {
        &self.name()[4..]
    }
    /// bpftool's name: `bpf_get_func_ip` (`bpf_unknown` past our UAPI).
    pub fn name(self) -> &'static str {
        NAMES
            .get(self.0 as usize)
            .map_or("bpf_unknown", String::as_str)
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
                suggestion: closest(&format!("bpf_{n}"), Self::all().map(|h| h.name())),
            })
    }
}
serde_by_name!(Helper);
