//! BTF: what the running kernel knows, and the small blobs some probes need.
//!
//! Reading: one pass over /sys/kernel/btf/vmlinux collects the members of the few enums we
//! care about (`bpf_func_id`, `bpf_prog_type`, `bpf_map_type`, `bpf_attach_type`) and the
//! type ids of a few functions probes attach to. aya-obj 0.3 keeps enum members private, and
//! a general BTF library would index all of the ~100k types; we need a handful, so this
//! reader walks the type section once and keeps only those.
//!
//! Field offsets: [`FieldOffsets`] answers `offsetof` for any `struct.member[.member…]` path
//! (through anonymous members and typedefs), for tracers that inject offsets as constants;
//! [`kernel_field_offset`] asks the running kernel's BTF, read once per process.
//!
//! Building: probes for BTF kinds, storage maps, `ext` and fentry-on-a-program need tiny
//! BTF blobs (libbpf builds the same ones by hand in `libbpf_probes.c`/`features.c`).
use std::{collections::HashMap, ops::Range, path::Path};

use aya_obj::generated::{
    BTF_KIND_ARRAY, BTF_KIND_DATASEC, BTF_KIND_DECL_TAG, BTF_KIND_ENUM, BTF_KIND_ENUM64,
    BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO, BTF_KIND_INT, BTF_KIND_STRUCT, BTF_KIND_UNION,
    BTF_KIND_VAR,
};

const BTF_MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
/// The longest name a BTF string may hold here (the kernel's KSYM_NAME_LEN).
const MAX_NAME: usize = 512;

/// Why the kernel's BTF could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// The file could not be read.
    #[error(
        "{path}: {source}; the kernel has no BTF here (built without CONFIG_DEBUG_INFO_BTF, \
         or sysfs is not mounted): probes fall back to built-in tables"
    )]
    Missing {
        /// The file.
        path: String,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The file is not valid BTF.
    #[error("{path}: malformed BTF: {what}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong with it.
        what: String,
    },
}

/// A named enum member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumMember {
    /// The member's name, such as `BPF_FUNC_map_lookup_elem`.
    pub name: String,
    /// Its value (64-bit enums included).
    pub value: i64,
}

/// What we read from the kernel's BTF.
#[derive(Clone, Debug, Default)]
pub struct KernelBtf {
    enums: HashMap<String, Vec<EnumMember>>,
    funcs: HashMap<String, u32>,
    members: HashMap<(String, String), u32>,
    /// Size of the blob and number of types: a cheap identity for caches.
    pub size: usize,
    /// The number of types in the blob (the largest type id).
    pub type_count: u32,
}

/// The enums the probe layer reads.
pub const WANTED_ENUMS: &[&str] = &[
    "bpf_func_id",
    "bpf_prog_type",
    "bpf_map_type",
    "bpf_attach_type",
];

/// Struct members whose byte offsets tracers inject as constants (instead of CO-RE), kept
/// by [`KernelBtf::parse`]; [`FieldOffsets`] answers for any member.
pub const WANTED_MEMBERS: &[(&str, &str)] = &[("sk_buff", "len"), ("pt_regs", "di")];

/// Kernel functions that probes use as attach targets. `bpf_fentry_test1` exists for
/// exactly this purpose (net/bpf/test_run.c, 5.5); `bpf_lsm_bpf` is an LSM hook stub.
pub const WANTED_FUNCS: &[&str] = &[
    "bpf_fentry_test1",
    "bpf_lsm_bpf",
    "bpf_lsm_file_open",
    // Sleepable targets: an LSM hook that may sleep (5.10), and syscalls the error-injection
    // list has (`prober::SLEEPABLE_FENTRY_TARGETS`).
    "bpf_lsm_bprm_committed_creds",
    "__x64_sys_getpgid",
    "__arm64_sys_getpgid",
    "__s390x_sys_getpgid",
    "__riscv_sys_getpgid",
    // Present only when a feature is built in: see `inferred::NEEDS_BTF_FUNC`.
    "lirc_mode2_func_proto",
    "register_fprobe_ips",
];

impl KernelBtf {
    /// Reads /sys/kernel/btf/vmlinux.
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_path("/sys/kernel/btf/vmlinux")
    }

    /// Reads a raw BTF file (native endianness).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, BtfError> {
        let path = path.as_ref();
        let data = crate::sys::read_file(path).map_err(|source| BtfError::Missing {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&data).map_err(|what| BtfError::Malformed {
            path: path.display().to_string(),
            what,
        })
    }

    /// Parses a raw BTF blob (native endianness), keeping only [`WANTED_ENUMS`] and
    /// [`WANTED_FUNCS`].
    pub fn parse(data: &[u8]) -> Result<Self, String> {
        Self::parse_with(data, false)
    }

    /// Like [`KernelBtf::parse`], also keeping every function when `all_funcs` (for a BPF
    /// program's own, small BTF).
    pub fn parse_with(data: &[u8], all_funcs: bool) -> Result<Self, String> {
        let r = Reader { data };
        let Sections { types, strs } = Sections::parse(data)?;
        // Names as bytes: most types are skipped after a byte comparison, without UTF-8
        // checks (126k types in a 6.18 vmlinux).
        let name_bytes = |off: u32| name_at(data, &strs, off);
        let name = |off: u32| -> Result<&str, String> {
            std::str::from_utf8(name_bytes(off)?).map_err(|e| e.to_string())
        };
        let wanted = |n: &[u8], list: &[&str]| list.iter().any(|w| w.as_bytes() == n);
        // Whether the name at `off` is one of `list`, without finding its end first: most
        // types are skipped here (126k in a 6.18 vmlinux), so no search for the NUL.
        let is_one_of = |off: u32, list: &[&str]| {
            let at = strs.start.saturating_add(off as usize);
            list.iter().any(|w| {
                let w = w.as_bytes();
                data.get(at..at + w.len()) == Some(w)
                    && data.get(at + w.len()) == Some(&0)
                    && at + w.len() < strs.end
            })
        };
        let mut out = KernelBtf {
            size: data.len(),
            ..Default::default()
        };
        let mut pos = types.start;
        let end = types.end;
        let mut id = 0u32;
        while pos < end {
            id += 1;
            let name_off = r.u32(pos)?;
            let info = r.u32(pos + 4)?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            pos += 12;
            let extra = extra_len(id, kind, vlen)?;
            if (kind == BTF_KIND_ENUM || kind == BTF_KIND_ENUM64)
                && wanted(name_bytes(name_off)?, WANTED_ENUMS)
            {
                let n = name(name_off)?;
                {
                    let step = if kind == BTF_KIND_ENUM { 8 } else { 12 };
                    let mut members = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let m = pos + i * step;
                        let value = if kind == BTF_KIND_ENUM {
                            r.u32(m + 4)? as i32 as i64
                        } else {
                            ((r.u32(m + 8)? as u64) << 32 | r.u32(m + 4)? as u64) as i64
                        };
                        members.push(EnumMember {
                            name: name(r.u32(m)?)?.to_string(),
                            value,
                        });
                    }
                    out.enums.insert(n.to_string(), members);
                }
            } else if kind == BTF_KIND_FUNC && (all_funcs || is_one_of(name_off, WANTED_FUNCS)) {
                out.funcs.entry(name(name_off)?.to_string()).or_insert(id);
            } else if kind == BTF_KIND_STRUCT {
                for (s, m) in WANTED_MEMBERS {
                    if !is_one_of(name_off, &[s]) {
                        continue;
                    }
                    let kind_flag = info >> 31 == 1;
                    for i in 0..vlen {
                        let at = pos + i * 12;
                        if name_bytes(r.u32(at)?)? == m.as_bytes() {
                            let off = r.u32(at + 8)?;
                            // With kind_flag the low 24 bits are the bit offset.
                            let bits = if kind_flag { off & 0xff_ffff } else { off };
                            if bits % 8 == 0 {
                                out.members.insert((s.to_string(), m.to_string()), bits / 8);
                            }
                        }
                    }
                }
            }
            pos += extra;
        }
        if pos != end {
            return Err("type section ends inside a type".into());
        }
        out.type_count = id;
        Ok(out)
    }

    /// Members of one of [`WANTED_ENUMS`], or `None` when this kernel's BTF lacks it.
    pub fn enum_members(&self, name: &str) -> Option<&[EnumMember]> {
        self.enums.get(name).map(Vec::as_slice)
    }

    /// The value of `member` in enum `enum_name`.
    pub fn enum_value(&self, enum_name: &str, member: &str) -> Option<i64> {
        self.enum_members(enum_name)?
            .iter()
            .find(|m| m.name == member)
            .map(|m| m.value)
    }

    /// The BTF type id of one of [`WANTED_FUNCS`] (of any function with `all_funcs`).
    pub fn func_id(&self, name: &str) -> Option<u32> {
        self.funcs.get(name).copied()
    }

    /// The byte offset of `member` in `struct name`, for [`WANTED_MEMBERS`] (direct members
    /// only). Any other path, or one through anonymous members: [`FieldOffsets`].
    pub fn member_offset(&self, name: &str, member: &str) -> Option<u32> {
        self.members
            .get(&(name.to_string(), member.to_string()))
            .copied()
    }

    /// The name of the function with type id `id`, among those kept.
    pub fn func_name(&self, id: u32) -> Option<&str> {
        self.funcs
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| k.as_str())
    }

    /// A synthetic BTF for tests of code that consumes [`KernelBtf`].
    pub fn synthetic(enums: &[(&str, &[(&str, i64)])], funcs: &[(&str, u32)]) -> Self {
        KernelBtf {
            enums: enums
                .iter()
                .map(|(n, ms)| {
                    (
                        n.to_string(),
                        ms.iter()
                            .map(|(m, v)| EnumMember {
                                name: m.to_string(),
                                value: *v,
                            })
                            .collect(),
                    )
                })
                .collect(),
            funcs: funcs.iter().map(|(n, i)| (n.to_string(), *i)).collect(),
            members: HashMap::new(),
            size: 0,
            type_count: 0,
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn u32(&self, at: usize) -> Result<u32, String> {
        self.data
            .get(at..at + 4)
            .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| format!("truncated at byte {at}"))
    }
    fn u16(&self, at: usize) -> Result<u16, String> {
        self.data
            .get(at..at + 2)
            .map(|b| u16::from_ne_bytes(b.try_into().expect("2 bytes")))
            .ok_or_else(|| format!("truncated at byte {at}"))
    }
}

/// Where the type and string sections of a raw BTF blob are, checked against its length.
struct Sections {
    types: Range<usize>,
    strs: Range<usize>,
}

impl Sections {
    /// Reads and checks the header (native endianness).
    fn parse(data: &[u8]) -> Result<Sections, String> {
        Self::parse_as(data, false)
    }

    /// As [`Sections::parse`], for a module's split BTF when `split`: its string section
    /// continues the base's, so it need not start with the empty name (libbpf checks the
    /// same way).
    fn parse_as(data: &[u8], split: bool) -> Result<Sections, String> {
        let r = Reader { data };
        if data.len() < HEADER_LEN || r.u16(0)? != BTF_MAGIC {
            return Err("bad magic (not BTF, or another endianness)".into());
        }
        let hdr_len = r.u32(4)? as usize;
        let section = |off: usize, len: usize| -> Result<Range<usize>, String> {
            let start = hdr_len.checked_add(r.u32(off)? as usize);
            let len = r.u32(len)? as usize;
            start
                .and_then(|s| Some(s..s.checked_add(len)?))
                .filter(|range| range.end <= data.len())
                .ok_or_else(|| "sections run past the end of the blob".to_string())
        };
        let types = section(8, 12)?;
        let strs = section(16, 20)?;
        // As libbpf checks: the string section starts with the empty name and ends with a
        // NUL, so every lookup ends inside it.
        let str_sec = &data[strs.clone()];
        if (!split && str_sec.first() != Some(&0)) || str_sec.last() != Some(&0) {
            return Err("the string section does not start and end with a NUL byte".into());
        }
        Ok(Sections { types, strs })
    }
}

/// The bytes of the name at offset `off` of the string section `strs`.
fn name_at<'a>(data: &'a [u8], strs: &Range<usize>, off: u32) -> Result<&'a [u8], String> {
    let tail = strs
        .start
        .checked_add(off as usize)
        .and_then(|start| data.get(start..strs.end))
        .ok_or_else(|| format!("string offset {off} out of range"))?;
    // The kernel limits names to KSYM_NAME_LEN (512): a longer search is no name, and
    // bounding it keeps a hostile blob from making a parse quadratic.
    let window = &tail[..tail.len().min(MAX_NAME + 1)];
    let len = memchr::memchr(0, window).ok_or_else(|| {
        format!("the name at string offset {off} is longer than {MAX_NAME} bytes")
    })?;
    Ok(&tail[..len])
}

/// The module BTF blobs of a directory laid out as /sys/kernel/btf (one file per loaded
/// module beside `vmlinux`), by module name; a file that cannot be read is left out.
pub fn module_blobs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut modules = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name != "vmlinux"
                && let Ok(data) =
                    crate::sys::read_file(&e.path()).map(crate::sys::FileBytes::into_vec)
            {
                modules.push((name, data));
            }
        }
    }
    modules.sort();
    modules
}

/// How many bytes follow the 12-byte common part of type `id`, of `kind` with `vlen`
/// (for code that rewrites BTF, such as an object loader's fixups).
pub fn extra_len(id: u32, kind: u32, vlen: usize) -> Result<usize, String> {
    Ok(match kind {
        BTF_KIND_INT | BTF_KIND_VAR | BTF_KIND_DECL_TAG => 4,
        BTF_KIND_ARRAY => 12,
        BTF_KIND_STRUCT | BTF_KIND_UNION | BTF_KIND_DATASEC => 12 * vlen,
        BTF_KIND_ENUM | BTF_KIND_FUNC_PROTO => 8 * vlen,
        BTF_KIND_ENUM64 => 12 * vlen,
        1..=BTF_KIND_ENUM64 => 0,
        k => return Err(format!("type {id} has unknown kind {k}")),
    })
}

mod builder;
mod fields;
mod kfuncs;
mod protos;
pub use builder::BtfBuilder;
pub use fields::{
    FieldError, FieldOffset, FieldOffsets, MAX_DEPTH, kernel_field_offset, kernel_field_offsets,
};
pub use kfuncs::{BtfFunc, BtfFuncs, KFUNC_TAG};
pub(crate) use protos::Named;
pub use protos::{BtfFunction, BtfProtos, Linkage, ValueKind};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_output_reads_back() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        let proto = b.func_proto(int, &[("ctx", int)]);
        let f = b.func("bpf_fentry_test1", proto);
        let e = b.enum64("bpf_func_id", "BPF_FUNC_x", 1 << 40);
        let skb = b.struct_("sk_buff", 16, &[("next", int, 0), ("len", int, 96)]);
        let btf = KernelBtf::parse(&b.build()).unwrap();
        assert_eq!((int, proto, f, e, skb), (1, 2, 3, 4, 5));
        assert_eq!(btf.member_offset("sk_buff", "len"), Some(12));
        assert_eq!(btf.member_offset("sk_buff", "data_len"), None);
        assert_eq!(btf.func_id("bpf_fentry_test1"), Some(3));
        assert_eq!(btf.enum_value("bpf_func_id", "BPF_FUNC_x"), Some(1 << 40));
        assert_eq!(btf.type_count, 5);
    }

    #[test]
    fn truncated_blob_is_an_error_not_a_panic() {
        let mut b = BtfBuilder::new();
        b.int("int", 4);
        let blob = b.build();
        for cut in 0..blob.len() {
            let _ = KernelBtf::parse(&blob[..cut]);
        }
        assert!(KernelBtf::parse(&blob[..10]).is_err());
        assert!(KernelBtf::parse(b"not btf at all, not at all").is_err());
    }

    fn u32_at(blob: &[u8], at: usize) -> usize {
        u32::from_ne_bytes(blob[at..at + 4].try_into().unwrap()) as usize
    }

    /// Found by the fuzzing pass (issue 8): both were accepted as valid.
    #[test]
    fn hostile_blobs() {
        let mut b = BtfBuilder::new();
        b.int("int", 4);
        let blob = b.build();
        let types = u32_at(&blob, 4) + u32_at(&blob, 8);
        // A kind past the last one the kernel defines.
        let mut bad = blob.clone();
        let info = u32_at(&bad, types + 4) as u32;
        bad[types + 4..types + 8]
            .copy_from_slice(&((info & !(0x1f << 24)) | (25 << 24)).to_ne_bytes());
        let e = KernelBtf::parse(&bad).unwrap_err();
        assert!(e.contains("unknown kind 25"), "{e}");
        // A string section without its closing NUL.
        let mut bad = blob.clone();
        let last = bad.len() - 1;
        bad[last] = b'a';
        assert!(KernelBtf::parse(&bad).is_err());
        // 10k types all naming one 8 MB string: bounded lookups, not 10k × 8 MB.
        let mut types = Vec::new();
        for _ in 0..10_000u32 {
            for w in [1u32, 1 << 24, 4, 32] {
                types.extend_from_slice(&w.to_ne_bytes());
            }
        }
        let mut strs = vec![0u8];
        strs.extend(std::iter::repeat_n(b'a', 8 << 20));
        strs.push(0);
        let mut raw = Vec::new();
        raw.extend_from_slice(&0xeb9fu16.to_ne_bytes());
        raw.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strs.len() as u32,
        ] {
            raw.extend_from_slice(&w.to_ne_bytes());
        }
        raw.extend_from_slice(&types);
        raw.extend_from_slice(&strs);
        let t = std::time::Instant::now();
        let e = KernelBtf::parse(&raw);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            t.elapsed()
        );
        assert!(e.is_ok() || e.unwrap_err().contains("longer than"));
    }
}
