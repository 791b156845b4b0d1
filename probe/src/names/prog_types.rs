//! Program types: the table of every `enum bpf_prog_type` member with libbpf's name and
//! the release it appeared in.
use aya_obj::generated::bpf_prog_type::{self, *};

use super::{Since, UnknownName, closest, serde_by_name};

/// One row of the program-type table.
pub struct ProgTypeDef {
    /// The UAPI value.
    pub ty: bpf_prog_type,
    /// libbpf's name (`sched_cls`, `kprobe`).
    pub name: &'static str,
    /// The release that added it.
    pub since: Since,
}

const fn pt(ty: bpf_prog_type, name: &'static str, since: Since) -> ProgTypeDef {
    ProgTypeDef { ty, name, since }
}

/// Every program type the UAPI we build against knows, with libbpf's name.
pub const PROG_TYPES: &[ProgTypeDef] = &[
    pt(
        BPF_PROG_TYPE_SOCKET_FILTER,
        "socket_filter",
        Since::new(3, 19),
    ),
    pt(BPF_PROG_TYPE_KPROBE, "kprobe", Since::new(4, 1)),
    pt(BPF_PROG_TYPE_SCHED_CLS, "sched_cls", Since::new(4, 1)),
    pt(BPF_PROG_TYPE_SCHED_ACT, "sched_act", Since::new(4, 1)),
    pt(BPF_PROG_TYPE_TRACEPOINT, "tracepoint", Since::new(4, 7)),
    pt(BPF_PROG_TYPE_XDP, "xdp", Since::new(4, 8)),
    pt(BPF_PROG_TYPE_PERF_EVENT, "perf_event", Since::new(4, 9)),
    pt(BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb", Since::new(4, 10)),
    pt(BPF_PROG_TYPE_CGROUP_SOCK, "cgroup_sock", Since::new(4, 10)),
    pt(BPF_PROG_TYPE_LWT_IN, "lwt_in", Since::new(4, 10)),
    pt(BPF_PROG_TYPE_LWT_OUT, "lwt_out", Since::new(4, 10)),
    pt(BPF_PROG_TYPE_LWT_XMIT, "lwt_xmit", Since::new(4, 10)),
    pt(BPF_PROG_TYPE_SOCK_OPS, "sock_ops", Since::new(4, 13)),
    pt(BPF_PROG_TYPE_SK_SKB, "sk_skb", Since::new(4, 14)),
    pt(
        BPF_PROG_TYPE_CGROUP_DEVICE,
        "cgroup_device",
        Since::new(4, 15),
    ),
    pt(BPF_PROG_TYPE_SK_MSG, "sk_msg", Since::new(4, 17)),
    pt(
        BPF_PROG_TYPE_RAW_TRACEPOINT,
        "raw_tracepoint",
        Since::new(4, 17),
    ),
    pt(
        BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        "cgroup_sock_addr",
        Since::new(4, 17),
    ),
    pt(
        BPF_PROG_TYPE_LWT_SEG6LOCAL,
        "lwt_seg6local",
        Since::new(4, 18),
    ),
    pt(BPF_PROG_TYPE_LIRC_MODE2, "lirc_mode2", Since::new(4, 18)),
    pt(
        BPF_PROG_TYPE_SK_REUSEPORT,
        "sk_reuseport",
        Since::new(4, 19),
    ),
    pt(
        BPF_PROG_TYPE_FLOW_DISSECTOR,
        "flow_dissector",
        Since::new(4, 20),
    ),
    pt(
        BPF_PROG_TYPE_CGROUP_SYSCTL,
        "cgroup_sysctl",
        Since::new(5, 2),
    ),
    pt(
        BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE,
        "raw_tracepoint_writable",
        Since::new(5, 2),
    ),
    pt(
        BPF_PROG_TYPE_CGROUP_SOCKOPT,
        "cgroup_sockopt",
        Since::new(5, 3),
    ),
    pt(BPF_PROG_TYPE_TRACING, "tracing", Since::new(5, 5)),
    pt(BPF_PROG_TYPE_STRUCT_OPS, "struct_ops", Since::new(5, 6)),
    pt(BPF_PROG_TYPE_EXT, "ext", Since::new(5, 6)),
    pt(BPF_PROG_TYPE_LSM, "lsm", Since::new(5, 7)),
    pt(BPF_PROG_TYPE_SK_LOOKUP, "sk_lookup", Since::new(5, 9)),
    pt(BPF_PROG_TYPE_SYSCALL, "syscall", Since::new(5, 14)),
    pt(BPF_PROG_TYPE_NETFILTER, "netfilter", Since::new(6, 4)),
];

/// A BPF program type (`enum bpf_prog_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgramType(pub u32);

impl ProgramType {
    /// 3.19: the oldest type, which the feature probes load when the type does not matter.
    pub const SOCKET_FILTER: Self = Self(BPF_PROG_TYPE_SOCKET_FILTER as u32);
    /// 4.10: cgroup ingress/egress; with socket_filter, the types an unprivileged caller
    /// may load.
    pub const CGROUP_SKB: Self = Self(BPF_PROG_TYPE_CGROUP_SKB as u32);
    /// 4.1; also uprobes.
    pub const KPROBE: Self = Self(BPF_PROG_TYPE_KPROBE as u32);
    /// 4.1: tc's classifier (`tc`).
    pub const SCHED_CLS: Self = Self(BPF_PROG_TYPE_SCHED_CLS as u32);
    /// 5.5: fentry, fexit, fmod_ret, iterators; loaded against a BTF attach target.
    pub const TRACING: Self = Self(BPF_PROG_TYPE_TRACING as u32);
    /// 5.6: freplace of a BPF program's global function.
    pub const EXT: Self = Self(BPF_PROG_TYPE_EXT as u32);
    /// 5.7; needs `CONFIG_BPF_LSM`, and `bpf` among the active LSMs to run.
    pub const LSM: Self = Self(BPF_PROG_TYPE_LSM as u32);
    /// 5.6: kernel function tables (TCP congestion control, …) written in BPF.
    pub const STRUCT_OPS: Self = Self(BPF_PROG_TYPE_STRUCT_OPS as u32);
    /// `syscall` (5.14): programs run by `BPF_PROG_RUN` from user space, always sleepable.
    pub const SYSCALL: Self = Self(BPF_PROG_TYPE_SYSCALL as u32);

    /// Its row of [`PROG_TYPES`]; `None` for a number our UAPI does not know.
    pub fn def(self) -> Option<&'static ProgTypeDef> {
        PROG_TYPES.iter().find(|d| d.ty as u32 == self.0)
    }
    /// libbpf's name (`unknown` for a number outside the table, which no parse yields).
    pub fn name(self) -> &'static str {
        self.def().map_or("unknown", |d| d.name)
    }
    /// The release that added it; `None` outside the table.
    pub fn since(self) -> Option<Since> {
        self.def().map(|d| d.since)
    }
    /// The UAPI enumerator name, as the kernel's BTF spells it.
    pub fn uapi_name(self) -> String {
        // The bindings' variant name is the enumerator's: the same source as map types'.
        format!(
            "{:?}",
            self.def().map(|d| d.ty).unwrap_or(BPF_PROG_TYPE_UNSPEC)
        )
    }
    /// Every program type of the table, in UAPI order.
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
