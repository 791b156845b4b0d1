//! Map types: the table of every `enum bpf_map_type` member with libbpf's name and the
//! release it appeared in.
use aya_obj::generated::bpf_map_type::{self, *};

use super::{Since, UnknownName, closest, serde_by_name};

/// One row of the map-type table.
pub struct MapTypeDef {
    /// The UAPI value.
    pub ty: bpf_map_type,
    /// libbpf's name (`ringbuf`, `percpu_hash`).
    pub name: &'static str,
    /// The release that added it.
    pub since: Since,
}

const fn mt(ty: bpf_map_type, name: &'static str, since: Since) -> MapTypeDef {
    MapTypeDef { ty, name, since }
}

/// Every map type the UAPI we build against knows, with libbpf's name.
pub const MAP_TYPES: &[MapTypeDef] = &[
    mt(BPF_MAP_TYPE_HASH, "hash", Since::new(3, 19)),
    mt(BPF_MAP_TYPE_ARRAY, "array", Since::new(3, 19)),
    mt(BPF_MAP_TYPE_PROG_ARRAY, "prog_array", Since::new(4, 2)),
    mt(
        BPF_MAP_TYPE_PERF_EVENT_ARRAY,
        "perf_event_array",
        Since::new(4, 3),
    ),
    mt(BPF_MAP_TYPE_PERCPU_HASH, "percpu_hash", Since::new(4, 6)),
    mt(BPF_MAP_TYPE_PERCPU_ARRAY, "percpu_array", Since::new(4, 6)),
    mt(BPF_MAP_TYPE_STACK_TRACE, "stack_trace", Since::new(4, 6)),
    mt(BPF_MAP_TYPE_CGROUP_ARRAY, "cgroup_array", Since::new(4, 8)),
    mt(BPF_MAP_TYPE_LRU_HASH, "lru_hash", Since::new(4, 10)),
    mt(
        BPF_MAP_TYPE_LRU_PERCPU_HASH,
        "lru_percpu_hash",
        Since::new(4, 10),
    ),
    mt(BPF_MAP_TYPE_LPM_TRIE, "lpm_trie", Since::new(4, 11)),
    mt(
        BPF_MAP_TYPE_ARRAY_OF_MAPS,
        "array_of_maps",
        Since::new(4, 12),
    ),
    mt(BPF_MAP_TYPE_HASH_OF_MAPS, "hash_of_maps", Since::new(4, 12)),
    mt(BPF_MAP_TYPE_DEVMAP, "devmap", Since::new(4, 14)),
    mt(BPF_MAP_TYPE_SOCKMAP, "sockmap", Since::new(4, 14)),
    mt(BPF_MAP_TYPE_CPUMAP, "cpumap", Since::new(4, 15)),
    mt(BPF_MAP_TYPE_XSKMAP, "xskmap", Since::new(4, 18)),
    mt(BPF_MAP_TYPE_SOCKHASH, "sockhash", Since::new(4, 18)),
    mt(
        BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED,
        "cgroup_storage",
        Since::new(4, 19),
    ),
    mt(
        BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
        "reuseport_sockarray",
        Since::new(4, 19),
    ),
    mt(
        BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED,
        "percpu_cgroup_storage",
        Since::new(4, 20),
    ),
    mt(BPF_MAP_TYPE_QUEUE, "queue", Since::new(4, 20)),
    mt(BPF_MAP_TYPE_STACK, "stack", Since::new(4, 20)),
    mt(BPF_MAP_TYPE_SK_STORAGE, "sk_storage", Since::new(5, 2)),
    mt(BPF_MAP_TYPE_DEVMAP_HASH, "devmap_hash", Since::new(5, 4)),
    mt(BPF_MAP_TYPE_STRUCT_OPS, "struct_ops", Since::new(5, 6)),
    mt(BPF_MAP_TYPE_RINGBUF, "ringbuf", Since::new(5, 8)),
    mt(
        BPF_MAP_TYPE_INODE_STORAGE,
        "inode_storage",
        Since::new(5, 10),
    ),
    mt(BPF_MAP_TYPE_TASK_STORAGE, "task_storage", Since::new(5, 11)),
    mt(BPF_MAP_TYPE_BLOOM_FILTER, "bloom_filter", Since::new(5, 16)),
    mt(BPF_MAP_TYPE_USER_RINGBUF, "user_ringbuf", Since::new(6, 1)),
    mt(BPF_MAP_TYPE_CGRP_STORAGE, "cgrp_storage", Since::new(6, 2)),
    mt(BPF_MAP_TYPE_ARENA, "arena", Since::new(6, 9)),
];

/// A BPF map type (`enum bpf_map_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapType(pub u32);

impl MapType {
    /// 5.8: the event channel tracers prefer.
    pub const RINGBUF: Self = Self(BPF_MAP_TYPE_RINGBUF as u32);
    /// 4.3: the event channel before ringbuf.
    pub const PERF_EVENT_ARRAY: Self = Self(BPF_MAP_TYPE_PERF_EVENT_ARRAY as u32);

    /// Its row of [`MAP_TYPES`]; `None` for a number our UAPI does not know.
    pub fn def(self) -> Option<&'static MapTypeDef> {
        MAP_TYPES.iter().find(|d| d.ty as u32 == self.0)
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
        format!(
            "{:?}",
            self.def().map(|d| d.ty).unwrap_or(BPF_MAP_TYPE_UNSPEC)
        )
    }
    /// Every map type of the table, in UAPI order.
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
