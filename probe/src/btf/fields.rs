//! Field offsets from BTF for any `struct.member[.member…]` path, for tracers that inject
//! offsets as constants instead of relying on CO-RE relocations.
//!
//! [`FieldOffsets`] indexes a BTF blob in one pass — where each type's record starts, and
//! the sorted names of the structs, unions and typedefs — and decodes members only when a
//! path is looked up. A lookup walks through anonymous struct and union members (sk_buff's
//! `protocol` sits in `union { struct { … }; struct { … } headers; }`, a `struct_group`)
//! and through typedefs, `const`, `volatile`, `restrict` and type tags, and reads both
//! member offset encodings (with and without `kind_flag`).
//!
//! The blob may be hostile (fuzzers feed it): every read is bounds-checked, chains of
//! typedefs and modifiers, anonymous members and nested arrays are followed at most
//! [`MAX_DEPTH`] deep, and a lookup searches each anonymous type at most once, so its work
//! is bounded by the size of the blob.
use std::{collections::HashSet, fmt, path::Path, sync::OnceLock};

use aya_obj::generated::{
    BTF_KIND_ARRAY, BTF_KIND_CONST, BTF_KIND_DATASEC, BTF_KIND_DECL_TAG, BTF_KIND_ENUM,
    BTF_KIND_ENUM64, BTF_KIND_FLOAT, BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO, BTF_KIND_FWD,
    BTF_KIND_INT, BTF_KIND_PTR, BTF_KIND_RESTRICT, BTF_KIND_STRUCT, BTF_KIND_TYPE_TAG,
    BTF_KIND_TYPEDEF, BTF_KIND_UNION, BTF_KIND_VAR, BTF_KIND_VOLATILE,
};

use super::{Sections, extra_len, name_at};

/// How far a lookup follows a chain of typedefs and modifiers, nested anonymous members,
/// or arrays of arrays before calling the BTF malformed (the kernel's own limit for
/// modifier chains is 32 too, `MAX_RESOLVE_DEPTH`).
pub const MAX_DEPTH: usize = 32;

/// Paths longer than this are refused before any lookup.
const MAX_PATH: usize = 1024;

/// Where the kernel exposes its own BTF.
const SYS_FS_VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The names libbpf reads the pointer size from (`determine_ptr_size`).
const LONG_NAMES: &[&[u8]] = &[
    b"long",
    b"long int",
    b"unsigned long",
    b"long unsigned int",
    b"unsigned long int",
];

/// Where a member lives in its outermost struct or union.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldOffset {
    /// Bytes from the start of the struct or union named first in the path.
    pub offset: u32,
    /// The member's size in bytes, through typedefs and modifiers (an array: element size
    /// × count, 0 for a flexible array; a pointer: the BTF's pointer size).
    pub size: u32,
}

/// Why a field offset could not be given.
#[derive(Debug, thiserror::Error)]
pub enum FieldError {
    /// The path is empty or not `type.member[.member…]` made of C identifiers.
    #[error(
        "malformed field path `{path}`: {why} (expected `type.member[.member…]`, such as \
         `sk_buff.len` or `struct task_struct.thread.sp`)"
    )]
    BadPath {
        /// The path as given (its start only, when it is very long).
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// No struct or union (or typedef of one) has the path's first name.
    #[error("no {kind} named `{name}` in this BTF{}", did_you_mean(.suggestion))]
    UnknownType {
        /// The name looked for.
        name: String,
        /// `struct`, `union`, or `struct or union` (when the path names no kind).
        kind: &'static str,
        /// The closest name of that kind, when it looks like a typo.
        suggestion: Option<String>,
    },
    /// The struct or union reached so far has no such member, directly or in one of its
    /// anonymous members.
    #[error("`{path}` ({within}) has no member `{member}`{}", did_you_mean(.suggestion))]
    UnknownMember {
        /// The path up to, not including, the missing member.
        path: String,
        /// The type searched, such as `struct thread_struct`.
        within: String,
        /// The missing member.
        member: String,
        /// The closest member name, when it looks like a typo.
        suggestion: Option<String>,
    },
    /// The member is a bitfield: it has no byte offset (C's `offsetof` refuses it too).
    #[error(
        "`{path}` is a bitfield of {bit_size} bits at bit offset {bit_offset}: it is not \
         byte-addressable (read its storage unit, then shift and mask)"
    )]
    Bitfield {
        /// The path of the bitfield.
        path: String,
        /// Its offset in bits from the start of the outermost struct or union.
        bit_offset: u64,
        /// Its width in bits.
        bit_size: u32,
    },
    /// The path continues past a member that is not a struct or union.
    #[error(
        "`{path}` is {kind}, not a struct or union: it has no member `{member}`{}",
        pointer_hint(.kind)
    )]
    NotComposite {
        /// The path up to the member that is not a struct or union.
        path: String,
        /// What it is instead, such as `a pointer` or `an int`.
        kind: &'static str,
        /// The member the path asked of it.
        member: String,
    },
    /// The BTF file could not be read.
    #[error("cannot read BTF from {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The BTF is malformed (found when indexing it, or in the types a lookup reads).
    #[error("malformed BTF: {0}")]
    Malformed(String),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

fn pointer_hint(kind: &str) -> &'static str {
    if kind == "a pointer" {
        " (offsets do not follow pointers: read the pointer, then look the member up in \
         the pointed-to type)"
    } else {
        ""
    }
}

fn malformed(what: impl Into<String>) -> FieldError {
    FieldError::Malformed(what.into())
}

/// Field offsets of one BTF blob, such as the kernel's `/sys/kernel/btf/vmlinux`.
///
/// Holds the blob (5.5 MB for a 6.18 x86_64 vmlinux) and an index of under 1 MB; reading
/// and indexing a vmlinux takes 10-15 ms in a release build, a lookup a few microseconds
/// (a few milliseconds when an unknown name is compared with every name for a suggestion). Split BTF (kernel modules' files, whose type ids
/// continue the vmlinux ones) is not supported.
pub struct FieldOffsets {
    data: Vec<u8>,
    strs: std::ops::Range<usize>,
    /// Where type id `i`'s record starts in `data`, at `types[i - 1]`.
    types: Vec<u32>,
    /// Named structs, unions and typedefs, sorted by name, then id.
    names: Vec<Named>,
    ptr_size: u32,
}

/// A name in the index: `data[start..start + len]`.
#[derive(Clone, Copy)]
struct Named {
    start: u32,
    len: u32,
    id: u32,
    kind: u32,
}

/// One type record, decoded.
#[derive(Clone, Copy)]
struct Type {
    id: u32,
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    name_off: u32,
    size_or_type: u32,
    /// Where the kind-specific data after the common 12 bytes starts in the blob.
    extra: usize,
}

impl Type {
    /// Type id 0.
    const VOID: Type = Type {
        id: 0,
        kind: 0,
        vlen: 0,
        kind_flag: false,
        name_off: 0,
        size_or_type: 0,
        extra: 0,
    };

    fn is_composite(&self) -> bool {
        self.kind == BTF_KIND_STRUCT || self.kind == BTF_KIND_UNION
    }
}

/// A member found by name: its bit offset from the start of the type searched, its
/// bitfield size in the `kind_flag` encoding (0: none), and its type.
struct Hit {
    bits: u64,
    bitfield: u32,
    type_id: u32,
}

/// Which kinds the path's first name may have.
#[derive(Clone, Copy, PartialEq)]
enum Want {
    Struct,
    Union,
    Any,
}

impl Want {
    fn describe(self) -> &'static str {
        match self {
            Want::Struct => "struct",
            Want::Union => "union",
            Want::Any => "struct or union",
        }
    }

    fn accepts(self, kind: u32) -> bool {
        match self {
            Want::Struct => kind == BTF_KIND_STRUCT,
            Want::Union => kind == BTF_KIND_UNION,
            Want::Any => kind == BTF_KIND_STRUCT || kind == BTF_KIND_UNION,
        }
    }
}

/// A path split into its parts: `[struct |union ]root.member[.member…]`.
struct FieldPath<'a> {
    want: Want,
    root: &'a str,
    members: Vec<&'a str>,
}

impl<'a> FieldPath<'a> {
    fn parse(path: &'a str) -> Result<Self, FieldError> {
        let bad = |why: String| FieldError::BadPath {
            path: path.to_string(),
            why,
        };
        if path.len() > MAX_PATH {
            let mut end = 64;
            while !path.is_char_boundary(end) {
                end -= 1;
            }
            return Err(FieldError::BadPath {
                path: format!("{}…", &path[..end]),
                why: format!("longer than {MAX_PATH} bytes ({})", path.len()),
            });
        }
        let trimmed = path.trim();
        let (want, rest) = [("struct", Want::Struct), ("union", Want::Union)]
            .into_iter()
            .find_map(|(word, want)| {
                let rest = trimmed.strip_prefix(word)?;
                rest.starts_with(char::is_whitespace)
                    .then(|| (want, rest.trim_start()))
            })
            .unwrap_or((Want::Any, trimmed));
        if rest.is_empty() {
            return Err(bad("it names no type".into()));
        }
        let mut parts = Vec::new();
        for part in rest.split('.').map(str::trim) {
            if part.is_empty() {
                return Err(bad(
                    "an empty name (a leading, trailing or doubled dot)".into()
                ));
            }
            if !is_identifier(part) {
                return Err(bad(format!("`{part}` is not a C identifier")));
            }
            parts.push(part);
        }
        let root = parts.remove(0);
        if parts.is_empty() {
            return Err(bad(format!("no member after `{root}`")));
        }
        Ok(FieldPath {
            want,
            root,
            members: parts,
        })
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// "a pointer", "an int", …: what a member is when a path wants a struct of it.
fn kind_name(kind: u32) -> &'static str {
    match kind {
        0 => "void",
        BTF_KIND_INT => "an int",
        BTF_KIND_PTR => "a pointer",
        BTF_KIND_ARRAY => "an array",
        BTF_KIND_STRUCT => "a struct",
        BTF_KIND_UNION => "a union",
        BTF_KIND_ENUM | BTF_KIND_ENUM64 => "an enum",
        BTF_KIND_FWD => "a forward declaration",
        BTF_KIND_TYPEDEF => "a typedef",
        BTF_KIND_VOLATILE | BTF_KIND_CONST | BTF_KIND_RESTRICT | BTF_KIND_TYPE_TAG => "a modifier",
        BTF_KIND_FUNC => "a function",
        BTF_KIND_FUNC_PROTO => "a function prototype",
        BTF_KIND_VAR => "a variable",
        BTF_KIND_DATASEC => "a data section",
        BTF_KIND_FLOAT => "a float",
        BTF_KIND_DECL_TAG => "a declaration tag",
        _ => "a type of unknown kind",
    }
}

impl FieldOffsets {
    /// Reads and indexes the running kernel's BTF, `/sys/kernel/btf/vmlinux`.
    ///
    /// Each call reads the file again; [`kernel_field_offset`] keeps one copy per process.
    pub fn from_sys_fs() -> Result<Self, FieldError> {
        Self::from_path(SYS_FS_VMLINUX)
    }

    /// Reads and indexes a raw BTF file (native endianness), such as a vmlinux BTF saved
    /// from another machine of the same architecture.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, FieldError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|source| FieldError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_vec(data).map_err(|e| match e {
            FieldError::Malformed(what) => malformed(format!("{}: {what}", path.display())),
            e => e,
        })
    }

    /// Indexes a raw BTF blob (native endianness), copying it.
    pub fn from_bytes(data: &[u8]) -> Result<Self, FieldError> {
        Self::from_vec(data.to_vec())
    }

    /// Indexes a raw BTF blob (native endianness), keeping it without a copy.
    pub fn from_vec(data: Vec<u8>) -> Result<Self, FieldError> {
        let Sections { types, strs } = Sections::parse(&data).map_err(FieldError::Malformed)?;
        if u32::try_from(data.len()).is_err() {
            return Err(malformed("larger than 4 GiB"));
        }
        let word = |at: usize| -> Result<u32, FieldError> {
            data.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_ne_bytes)
                .ok_or_else(|| malformed(format!("truncated at byte {at}")))
        };
        // vmlinux records average 25 bytes (6.18): one allocation, a little too large.
        let mut offsets = Vec::with_capacity(types.len() / 20);
        let mut names = Vec::new();
        let mut ptr_size = None;
        let mut pos = types.start;
        while pos < types.end {
            let id = offsets.len() as u32 + 1;
            let name_off = word(pos)?;
            let info = word(pos + 4)?;
            let size = word(pos + 8)?;
            let kind = (info >> 24) & 0x1f;
            let extra =
                extra_len(id, kind, (info & 0xffff) as usize).map_err(FieldError::Malformed)?;
            let next = pos + 12 + extra;
            if next > types.end {
                return Err(malformed(format!(
                    "type {id} runs past the end of the type section"
                )));
            }
            // `pos` < data.len() <= u32::MAX, checked above.
            offsets.push(pos as u32);
            match kind {
                BTF_KIND_STRUCT | BTF_KIND_UNION | BTF_KIND_TYPEDEF if name_off != 0 => {
                    let name = name_at(&data, &strs, name_off).map_err(FieldError::Malformed)?;
                    if !name.is_empty() {
                        names.push(Named {
                            start: (strs.start + name_off as usize) as u32,
                            len: name.len() as u32,
                            id,
                            kind,
                        });
                    }
                }
                BTF_KIND_INT if ptr_size.is_none() && (size == 4 || size == 8) => {
                    let name = name_at(&data, &strs, name_off).map_err(FieldError::Malformed)?;
                    if LONG_NAMES.contains(&name) {
                        ptr_size = Some(size);
                    }
                }
                _ => {}
            }
            pos = next;
        }
        let bytes = |n: &Named| &data[n.start as usize..(n.start + n.len) as usize];
        names.sort_unstable_by(|a, b| bytes(a).cmp(bytes(b)).then(a.id.cmp(&b.id)));
        Ok(FieldOffsets {
            strs,
            types: offsets,
            names,
            ptr_size: ptr_size.unwrap_or(size_of::<usize>() as u32),
            data,
        })
    }

    /// How many types the BTF holds (the largest type id).
    pub fn type_count(&self) -> u32 {
        self.types.len() as u32
    }

    /// The byte offset and size of the member at `path`, such as `sk_buff.len`,
    /// `struct sk_buff.protocol`, `task_struct.thread.sp` or `union bpf_attr.map_type`.
    ///
    /// The first name is a struct or union (either, unless the path starts with `struct `
    /// or `union `), or a typedef of one. Members inside anonymous structs and unions are
    /// found as in C; a member in the middle of the path must be a struct or union, through
    /// typedefs and modifiers (not through pointers or arrays). Bitfields are refused: they
    /// have no byte offset.
    pub fn offset_of(&self, path: &str) -> Result<FieldOffset, FieldError> {
        let path = FieldPath::parse(path)?;
        let roots = self.roots(&path)?;
        let mut first_error = None;
        // A name defined twice (rare, but BTF allows it): the first definition that has
        // the whole path.
        for root in roots {
            match self.walk(root, &path) {
                Ok(found) => return Ok(found),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| FieldError::UnknownType {
            name: path.root.to_string(),
            kind: path.want.describe(),
            suggestion: self.closest_type(path.root, path.want),
        }))
    }

    /// The structs and unions the path's first name may mean, best first.
    fn roots(&self, path: &FieldPath) -> Result<Vec<Type>, FieldError> {
        let key = path.root.as_bytes();
        let lo = self.names.partition_point(|n| self.name_bytes(n) < key);
        let same = self.names[lo..]
            .iter()
            .take_while(|n| self.name_bytes(n) == key);
        let mut roots = Vec::new();
        let mut typedefs = Vec::new();
        for named in same {
            if path.want.accepts(named.kind) {
                roots.push(self.ty(named.id)?);
            } else if named.kind == BTF_KIND_TYPEDEF && path.want == Want::Any {
                typedefs.push(named.id);
            }
        }
        if !roots.is_empty() {
            // A broken typedef of the same name does not hide the struct.
            let peeled = typedefs.into_iter().filter_map(|id| self.peel(id).ok());
            roots.extend(peeled.filter(Type::is_composite));
            return Ok(roots);
        }
        let typedefs = typedefs
            .into_iter()
            .map(|id| self.peel(id))
            .collect::<Result<Vec<_>, _>>()?;
        // Only typedefs of something else, such as `u32.x`.
        if let Some(first) = typedefs.first()
            && !typedefs.iter().any(Type::is_composite)
        {
            return Err(FieldError::NotComposite {
                path: path.root.to_string(),
                kind: kind_name(first.kind),
                member: path.members[0].to_string(),
            });
        }
        Ok(typedefs.into_iter().filter(Type::is_composite).collect())
    }

    /// Follows `path`'s members from `root`, a struct or union.
    fn walk(&self, root: Type, path: &FieldPath) -> Result<FieldOffset, FieldError> {
        let mut within = root;
        let mut bits = 0u64;
        let mut shown = path.root.to_string();
        let mut type_id = root.id;
        for (i, member) in path.members.iter().enumerate() {
            if i > 0 {
                within = self.peel(type_id)?;
                if !within.is_composite() {
                    return Err(FieldError::NotComposite {
                        path: shown,
                        kind: kind_name(within.kind),
                        member: member.to_string(),
                    });
                }
            }
            let mut searched = HashSet::from([within.id]);
            let Some(hit) = self.find(within, member.as_bytes(), 0, &mut searched)? else {
                return Err(FieldError::UnknownMember {
                    within: self.describe(within),
                    member: member.to_string(),
                    suggestion: crate::names::closest(
                        member,
                        self.member_names(within).iter().map(String::as_str),
                    ),
                    path: shown,
                });
            };
            bits += hit.bits;
            shown.push('.');
            shown.push_str(member);
            type_id = hit.type_id;
            if i + 1 == path.members.len()
                && let Some((at, bit_size)) = self.bitfield(&hit)?
            {
                return Err(FieldError::Bitfield {
                    path: shown,
                    bit_offset: bits + at,
                    bit_size,
                });
            }
        }
        if !bits.is_multiple_of(8) {
            return Err(malformed(format!(
                "`{shown}` is at bit offset {bits}, not on a byte boundary, yet is no bitfield"
            )));
        }
        let offset = u32::try_from(bits / 8)
            .map_err(|_| malformed(format!("`{shown}` is more than 4 GiB into its struct")))?;
        Ok(FieldOffset {
            offset,
            size: self.size_of(type_id)?,
        })
    }

    /// `Some((extra bit offset, width))` when the member found is a bitfield: in the
    /// `kind_flag` encoding, or (older) as an int type whose bits do not fill its size.
    fn bitfield(&self, hit: &Hit) -> Result<Option<(u64, u32)>, FieldError> {
        if hit.bitfield != 0 {
            return Ok(Some((0, hit.bitfield)));
        }
        let t = self.peel(hit.type_id)?;
        if t.kind != BTF_KIND_INT {
            return Ok(None);
        }
        let encoding = self.word(t.extra)?;
        let (bits, at) = (encoding & 0xff, (encoding >> 16) & 0xff);
        let whole = at == 0 && u64::from(bits) == u64::from(t.size_or_type) * 8;
        Ok((!whole).then_some((u64::from(at), bits)))
    }

    /// Member `name` of the struct or union `t`, searching its anonymous struct and union
    /// members too (each at most once: `searched`).
    fn find(
        &self,
        t: Type,
        name: &[u8],
        depth: usize,
        searched: &mut HashSet<u32>,
    ) -> Result<Option<Hit>, FieldError> {
        for i in 0..t.vlen {
            let (member_name, type_id, bits, bitfield) = self.member(t, i)?;
            if !member_name.is_empty() {
                if member_name == name {
                    return Ok(Some(Hit {
                        bits: bits.into(),
                        bitfield,
                        type_id,
                    }));
                }
                continue;
            }
            let inner = self.peel(type_id)?;
            if !inner.is_composite() || !searched.insert(inner.id) {
                continue;
            }
            if depth >= MAX_DEPTH {
                return Err(malformed(format!(
                    "anonymous members nested more than {MAX_DEPTH} deep in type {}",
                    t.id
                )));
            }
            if let Some(hit) = self.find(inner, name, depth + 1, searched)? {
                return Ok(Some(Hit {
                    bits: hit.bits + u64::from(bits),
                    ..hit
                }));
            }
        }
        Ok(None)
    }

    /// The member names of `t`, those of its anonymous members included, for suggestions
    /// (best effort: what malformed BTF hides is left out).
    fn member_names(&self, t: Type) -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![(t, 0)];
        let mut searched = HashSet::from([t.id]);
        while let Some((t, depth)) = pending.pop() {
            for i in 0..t.vlen {
                let Ok((name, type_id, _, _)) = self.member(t, i) else {
                    break;
                };
                if !name.is_empty() {
                    out.extend(std::str::from_utf8(name).ok().map(str::to_string));
                } else if let Ok(inner) = self.peel(type_id)
                    && inner.is_composite()
                    && depth < MAX_DEPTH
                    && searched.insert(inner.id)
                {
                    pending.push((inner, depth + 1));
                }
            }
        }
        out
    }

    /// The closest struct or union name to `name`, when it looks like a typo of it.
    fn closest_type(&self, name: &str, want: Want) -> Option<String> {
        let candidates = self
            .names
            .iter()
            .filter(|n| want.accepts(n.kind))
            .filter_map(|n| std::str::from_utf8(self.name_bytes(n)).ok());
        crate::names::closest(name, candidates)
    }

    /// `struct thread_struct`, `union (anonymous)`.
    fn describe(&self, t: Type) -> String {
        let kind = if t.kind == BTF_KIND_UNION {
            "union"
        } else {
            "struct"
        };
        match self.name(t.name_off) {
            Ok(name) if !name.is_empty() => format!("{kind} {}", String::from_utf8_lossy(name)),
            _ => format!("{kind} (anonymous)"),
        }
    }

    /// The size in bytes of type `id`, through typedefs, modifiers and arrays.
    fn size_of(&self, id: u32) -> Result<u32, FieldError> {
        let mut count = 1u64;
        let mut id = id;
        for _ in 0..=MAX_DEPTH {
            let t = self.peel(id)?;
            let unit = match t.kind {
                BTF_KIND_INT | BTF_KIND_ENUM | BTF_KIND_ENUM64 | BTF_KIND_FLOAT
                | BTF_KIND_STRUCT | BTF_KIND_UNION => t.size_or_type,
                BTF_KIND_PTR => self.ptr_size,
                BTF_KIND_ARRAY => {
                    id = self.word(t.extra)?;
                    let elements = self.word(t.extra + 8)?;
                    count = count.checked_mul(elements.into()).ok_or_else(|| {
                        malformed(format!("array type {} has too many elements", t.id))
                    })?;
                    continue;
                }
                k => {
                    return Err(malformed(format!(
                        "type {} ({}) has no size, yet is a member's type",
                        t.id,
                        kind_name(k)
                    )));
                }
            };
            return count
                .checked_mul(unit.into())
                .and_then(|s| u32::try_from(s).ok())
                .ok_or_else(|| malformed(format!("type {id} is larger than 4 GiB")));
        }
        Err(malformed(format!(
            "arrays nested more than {MAX_DEPTH} deep at type {id}"
        )))
    }

    /// Type `id` after its typedefs, `const`, `volatile`, `restrict` and type tags.
    fn peel(&self, id: u32) -> Result<Type, FieldError> {
        let mut id = id;
        for _ in 0..=MAX_DEPTH {
            let t = self.ty(id)?;
            match t.kind {
                BTF_KIND_TYPEDEF | BTF_KIND_CONST | BTF_KIND_VOLATILE | BTF_KIND_RESTRICT
                | BTF_KIND_TYPE_TAG => id = t.size_or_type,
                _ => return Ok(t),
            }
        }
        Err(malformed(format!(
            "more than {MAX_DEPTH} typedefs and modifiers in a row at type {id} (a loop?)"
        )))
    }

    /// Type `id`'s record.
    fn ty(&self, id: u32) -> Result<Type, FieldError> {
        if id == 0 {
            return Ok(Type::VOID);
        }
        let start = *self.types.get(id as usize - 1).ok_or_else(|| {
            malformed(format!(
                "type id {id} out of range ({} types)",
                self.types.len()
            ))
        })? as usize;
        let info = self.word(start + 4)?;
        Ok(Type {
            id,
            kind: (info >> 24) & 0x1f,
            vlen: info & 0xffff,
            kind_flag: info >> 31 == 1,
            name_off: self.word(start)?,
            size_or_type: self.word(start + 8)?,
            extra: start + 12,
        })
    }

    /// Member `i` of struct or union `t`: its name, type, bit offset and bitfield size
    /// (only in the `kind_flag` encoding; 0 otherwise).
    fn member(&self, t: Type, i: u32) -> Result<(&[u8], u32, u32, u32), FieldError> {
        let at = t.extra + 12 * i as usize;
        let name = self.name(self.word(at)?)?;
        let type_id = self.word(at + 4)?;
        let offset = self.word(at + 8)?;
        Ok(if t.kind_flag {
            (name, type_id, offset & 0xff_ffff, offset >> 24)
        } else {
            (name, type_id, offset, 0)
        })
    }

    fn name(&self, off: u32) -> Result<&[u8], FieldError> {
        name_at(&self.data, &self.strs, off).map_err(FieldError::Malformed)
    }

    fn name_bytes(&self, n: &Named) -> &[u8] {
        &self.data[n.start as usize..(n.start + n.len) as usize]
    }

    fn word(&self, at: usize) -> Result<u32, FieldError> {
        self.data
            .get(at..at.saturating_add(4))
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            .ok_or_else(|| malformed(format!("truncated at byte {at}")))
    }
}

impl fmt::Debug for FieldOffsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldOffsets")
            .field("bytes", &self.data.len())
            .field("types", &self.types.len())
            .field("named", &self.names.len())
            .field("ptr_size", &self.ptr_size)
            .finish()
    }
}

/// The running kernel's [`FieldOffsets`], read from `/sys/kernel/btf/vmlinux` once per
/// process and kept (about 6 MB) for later lookups.
///
/// Only success is kept: after an error (no BTF, sysfs not mounted yet, too many open
/// files) the next call reads the file again. Two threads calling first at the same time
/// may both read it; one copy is kept.
pub fn kernel_field_offsets() -> Result<&'static FieldOffsets, FieldError> {
    static KERNEL: OnceLock<FieldOffsets> = OnceLock::new();
    if let Some(kept) = KERNEL.get() {
        return Ok(kept);
    }
    let loaded = FieldOffsets::from_sys_fs()?;
    Ok(KERNEL.get_or_init(|| loaded))
}

/// The byte offset and size of `path` (as in [`FieldOffsets::offset_of`]) in the running
/// kernel, from its BTF, read once per process ([`kernel_field_offsets`]).
///
/// ```no_run
/// let len = bpf_features_probe::btf::kernel_field_offset("sk_buff.len")?;
/// println!("offsetof(struct sk_buff, len) = {}", len.offset);
/// # Ok::<(), bpf_features_probe::btf::FieldError>(())
/// ```
pub fn kernel_field_offset(path: &str) -> Result<FieldOffset, FieldError> {
    kernel_field_offsets()?.offset_of(path)
}

#[cfg(test)]
mod tests;
