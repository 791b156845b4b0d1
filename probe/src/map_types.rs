//! Map types: can this kernel create a map of each type?
//!
//! Each type gets a key/value/flags shape it accepts (libbpf's `probe_map_create` shapes).
//! Meaning of the answers: see [`crate::support`].
use std::os::fd::AsFd;

use aya_obj::generated::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, bpf_map_type::*};

use crate::{
    btf::BtfBuilder,
    names::MapType,
    support::{Evidence, Support, classify_errno},
    sys::{self, MapCreate},
};

/// `sizeof(struct bpf_cgroup_storage_key { __u64 cgroup_inode_id; __u32 attach_type; })`,
/// padded to the u64's alignment.
const CGROUP_STORAGE_KEY_SIZE: u32 = 16;

fn page_size() -> u32 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as u32)
}

/// Probes one map type (since: see [`crate::names::MAP_TYPES`]).
pub fn probe(t: MapType) -> Support {
    let ty = t.0;
    let is = |m: aya_obj::generated::bpf_map_type| ty == m as u32;
    let mut m = MapCreate {
        map_type: ty,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        ..Default::default()
    };
    let mut shape = "key 4, value 4, 1 entry".to_string();
    // Keep fds alive until the create call.
    let inner;
    let btf;
    if is(BPF_MAP_TYPE_STACK_TRACE) {
        m.value_size = 8;
    } else if is(BPF_MAP_TYPE_LPM_TRIE) {
        m.key_size = 8;
        m.value_size = 8;
        m.map_flags = BPF_F_NO_PREALLOC;
    } else if is(BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED)
        || is(BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED)
    {
        m.key_size = CGROUP_STORAGE_KEY_SIZE;
        m.value_size = 8;
        m.max_entries = 0;
    } else if is(BPF_MAP_TYPE_QUEUE) || is(BPF_MAP_TYPE_STACK) || is(BPF_MAP_TYPE_BLOOM_FILTER) {
        m.key_size = 0;
        m.value_size = 8;
    } else if is(BPF_MAP_TYPE_RINGBUF) || is(BPF_MAP_TYPE_USER_RINGBUF) {
        m.key_size = 0;
        m.value_size = 0;
        m.max_entries = page_size();
    } else if is(BPF_MAP_TYPE_ARENA) {
        m.key_size = 0;
        m.value_size = 0;
        m.max_entries = 1;
        m.map_flags = BPF_F_MMAPABLE;
    } else if is(BPF_MAP_TYPE_ARRAY_OF_MAPS) || is(BPF_MAP_TYPE_HASH_OF_MAPS) {
        let inner_shape = MapCreate {
            map_type: BPF_MAP_TYPE_ARRAY as u32,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            ..Default::default()
        };
        inner = match sys::map_create(&inner_shape) {
            Ok(fd) => fd,
            Err(e) => {
                return Support::unknown(
                    "could not create the inner map a map-of-maps probe needs",
                    Some(Evidence::probe("BPF_MAP_CREATE array").with_errno(e)),
                );
            }
        };
        m.inner_map_fd = Some(inner.as_fd());
    } else if is(BPF_MAP_TYPE_SK_STORAGE)
        || is(BPF_MAP_TYPE_INODE_STORAGE)
        || is(BPF_MAP_TYPE_TASK_STORAGE)
        || is(BPF_MAP_TYPE_CGRP_STORAGE)
    {
        // Local storage needs BTF for its value (libbpf's load_local_storage_btf).
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        let lock = b.struct_("bpf_spin_lock", 4, &[("val", int, 0)]);
        let val = b.struct_("val", 8, &[("cnt", int, 0), ("l", lock, 32)]);
        btf = match sys::btf_load(&b.build(), None) {
            Ok(fd) => fd,
            Err(e) => {
                return Support::unknown(
                    format!(
                        "could not load the BTF a local-storage map needs ({})",
                        e.errno
                    ),
                    Some(Evidence::probe("BPF_BTF_LOAD").with_errno(e.errno)),
                );
            }
        };
        m.btf_fd = Some(btf.as_fd());
        m.btf_key_type_id = int;
        m.btf_value_type_id = val;
        m.value_size = 8;
        m.max_entries = 0;
        m.map_flags = BPF_F_NO_PREALLOC;
        shape = "BTF key int, value struct with a spin lock".into();
    } else if is(BPF_MAP_TYPE_STRUCT_OPS) {
        // As libbpf: a struct_ops map with a bogus vmlinux value type makes a kernel that
        // knows the type look it up and fail with ENOTSUPP.
        m.btf_vmlinux_value_type_id = 1;
        let what = "BPF_MAP_CREATE struct_ops with btf_vmlinux_value_type_id 1";
        return match sys::map_create(&m) {
            Ok(_) => Support::supported(),
            Err(e) if e.0 == sys::ENOTSUPP => Support::Supported {
                evidence: Some(Evidence::probe(what).with_errno(e).with_detail(
                    "the kernel looked up a struct_ops value type, so it knows the map type",
                )),
            },
            Err(e) => classify_errno(Err(e), what),
        };
    } else if MapType(ty).def().is_none() {
        return Support::unknown("no probe shape is known for this map type", None);
    }
    let what = format!("BPF_MAP_CREATE {} ({shape})", t.name());
    classify_errno(sys::map_create(&m).map(drop), &what)
}
