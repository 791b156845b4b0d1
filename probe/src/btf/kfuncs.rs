//! The kernel functions of a BTF blob, and which of them carry the `bpf_kfunc` declaration
//! tag (`__bpf_kfunc`, 6.2+; a kernel built with pahole ≥ 1.25 emits it into BTF).
//!
//! vmlinux BTF is read alone; a module's BTF (`/sys/kernel/btf/<module>`) is split BTF on
//! top of vmlinux: its type ids continue after vmlinux's, and a string offset below the
//! base's string section length names a base string.
use std::collections::HashMap;

use crate::fxhash::FxMap;

use super::{BTF_KIND_DECL_TAG, BTF_KIND_FUNC, Reader, Sections, extra_len, name_at};

/// The declaration tag that marks a kfunc (`__bpf_kfunc` in include/linux/btf.h).
pub const KFUNC_TAG: &str = "bpf_kfunc";

/// One `FUNC` of a BTF blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfFunc {
    /// Its BTF type id (in its blob's id space: a module's ids follow vmlinux's).
    pub id: u32,
    /// Whether a `bpf_kfunc` declaration tag points at it.
    pub kfunc_tag: bool,
}

/// The functions of one BTF blob by name (the first of a duplicated name), and whether the
/// blob tags kfuncs at all. Compact: a vmlinux has ~60k functions, of which only the
/// tagged ones keep their names; the others are found by a 64-bit hash of the name.
#[derive(Clone, Debug, Default)]
pub struct BtfFuncs {
    by_hash: FxMap<u64, u32>,
    tagged_funcs: HashMap<String, u32>,
    /// How many functions carry the `bpf_kfunc` tag (0: this kernel does not tag them).
    pub tagged: usize,
    /// The number of types (the largest id of this blob).
    pub last_id: u32,
    /// The length of the string section (a split blob's string offsets start after it).
    pub str_len: u32,
}

fn name_hash(name: &[u8]) -> u64 {
    use std::hash::Hasher;
    // A fixed hash: the same name hashes the same in every run.
    let mut h = crate::fxhash::FxHasher::default();
    h.write(name);
    h.finish()
}

impl BtfFuncs {
    /// The functions of a vmlinux blob.
    pub fn parse(data: &[u8]) -> Result<Self, String> {
        scan(data, None)
    }

    /// The functions of a module's split blob on top of `base` (vmlinux's blob and its
    /// scan).
    pub fn parse_split(data: &[u8], base: (&[u8], &BtfFuncs)) -> Result<Self, String> {
        scan(data, Some(base))
    }

    /// The function called `name`.
    pub fn get(&self, name: &str) -> Option<BtfFunc> {
        if let Some(id) = self.tagged_funcs.get(name) {
            return Some(BtfFunc {
                id: *id,
                kfunc_tag: true,
            });
        }
        self.by_hash
            .get(&name_hash(name.as_bytes()))
            .map(|id| BtfFunc {
                id: *id,
                kfunc_tag: false,
            })
    }

    /// The names of the tagged kfuncs.
    pub fn kfunc_names(&self) -> impl Iterator<Item = &str> {
        self.tagged_funcs.keys().map(String::as_str)
    }
}

fn scan(data: &[u8], base: Option<(&[u8], &BtfFuncs)>) -> Result<BtfFuncs, String> {
    let r = Reader { data };
    let own = Sections::parse_as(data, base.is_some())?;
    let base_secs = match base {
        Some((b, _)) => Some((b, Sections::parse(b)?)),
        None => None,
    };
    let (first_id, base_strs) = match base {
        Some((_, f)) => (f.last_id, f.str_len),
        None => (0, 0),
    };
    let name = |off: u32| -> Result<&[u8], String> {
        match &base_secs {
            Some((b, secs)) if off < base_strs => name_at(b, &secs.strs, off),
            Some(_) => name_at(data, &own.strs, off - base_strs),
            None => name_at(data, &own.strs, off),
        }
    };
    // Functions in id order (ids only grow): their id, name offset and name hash.
    let mut funcs: Vec<(u32, u32, u64)> = Vec::new();
    let mut tagged_ids = Vec::new();
    let mut pos = own.types.start;
    let mut id = first_id;
    while pos < own.types.end {
        id = id
            .checked_add(1)
            .ok_or_else(|| "too many types".to_string())?;
        let name_off = r.u32(pos)?;
        let info = r.u32(pos + 4)?;
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        if kind == BTF_KIND_FUNC {
            funcs.push((id, name_off, name_hash(name(name_off)?)));
        } else if kind == BTF_KIND_DECL_TAG
            && name(name_off)? == KFUNC_TAG.as_bytes()
            // component_idx -1: the tag is on the function itself, not a parameter.
            && r.u32(pos + 12)? == u32::MAX
        {
            tagged_ids.push(r.u32(pos + 8)?);
        }
        pos = pos
            .checked_add(12 + extra_len(id, kind, vlen)?)
            .ok_or_else(|| "type section overflows".to_string())?;
    }
    if pos != own.types.end {
        return Err("type section ends inside a type".into());
    }
    let mut by_hash: FxMap<u64, u32> = FxMap::default();
    by_hash.reserve(funcs.len());
    for (fid, _, h) in &funcs {
        by_hash.entry(*h).or_insert(*fid);
    }
    let mut tagged_funcs = HashMap::new();
    for t in tagged_ids {
        // A tag may point at a vmlinux function from a module blob: only own functions
        // are kept here.
        if let Ok(i) = funcs.binary_search_by_key(&t, |(fid, _, _)| *fid) {
            let n = std::str::from_utf8(name(funcs[i].1)?).map_err(|e| e.to_string())?;
            tagged_funcs.entry(n.to_string()).or_insert(t);
        }
    }
    Ok(BtfFuncs {
        by_hash,
        tagged: tagged_funcs.len(),
        tagged_funcs,
        last_id: id,
        str_len: (own.strs.end - own.strs.start) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::BtfBuilder;

    #[test]
    fn tagged_functions_are_kfuncs() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        let proto = b.func_proto(int, &[("pid", int)]);
        let k = b.func("bpf_task_from_pid", proto);
        let plain = b.func("tcp_connect", proto);
        b.decl_tag(KFUNC_TAG, k);
        let other = b.func("bpf_other", proto);
        b.decl_tag("something_else", other);
        let f = BtfFuncs::parse(&b.build()).unwrap();
        assert_eq!(f.tagged, 1);
        assert_eq!(
            f.get("bpf_task_from_pid"),
            Some(BtfFunc {
                id: k,
                kfunc_tag: true
            })
        );
        assert_eq!(
            f.get("tcp_connect").map(|x| (x.id, x.kfunc_tag)),
            Some((plain, false))
        );
        assert!(!f.get("bpf_other").unwrap().kfunc_tag);
        assert_eq!(f.kfunc_names().collect::<Vec<_>>(), ["bpf_task_from_pid"]);
    }

    #[test]
    fn malformed_blobs_are_errors() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        let proto = b.func_proto(int, &[]);
        b.func("f", proto);
        let blob = b.build();
        for cut in 0..blob.len() {
            let _ = BtfFuncs::parse(&blob[..cut]);
        }
        assert!(BtfFuncs::parse(b"not btf").is_err());
    }

    #[test]
    fn the_running_kernel_tags_or_not() {
        let test = "the_running_kernel_tags_or_not";
        let Ok(data) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            crate::testing::skip(test, "no /sys/kernel/btf/vmlinux");
            return;
        };
        let f = BtfFuncs::parse(&data).unwrap();
        assert!(f.get("tcp_connect").is_some());
        // Tagged kernels (6.2+ with pahole 1.25) tag bpf_task_from_pid; others tag nothing.
        if f.tagged > 0 {
            assert!(f.get("bpf_task_from_pid").is_some_and(|k| k.kfunc_tag));
            assert!(!f.get("tcp_connect").unwrap().kfunc_tag);
        }
    }
}
