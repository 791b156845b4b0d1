//! Every function of the kernel's BTF with its prototype: what an fentry/fexit trampoline
//! needs to know about a target (its arguments' count and kinds, its return kind), and
//! C spellings of parameter types for selecting functions by parameter
//! (`struct sk_buff *`, as pwru selects them).
//!
//! vmlinux is read alone; a module's split BTF continues vmlinux's type ids and strings,
//! so a module function's parameters may name vmlinux types.
use std::{ops::Range, sync::Arc};

use crate::fxhash::FxMap;
use crate::interned::{NameHash, NameTable};

use aya_obj::generated::{
    BTF_KIND_CONST, BTF_KIND_ENUM, BTF_KIND_ENUM64, BTF_KIND_FLOAT, BTF_KIND_FUNC,
    BTF_KIND_FUNC_PROTO, BTF_KIND_FWD, BTF_KIND_INT, BTF_KIND_PTR, BTF_KIND_RESTRICT,
    BTF_KIND_STRUCT, BTF_KIND_TYPE_TAG, BTF_KIND_TYPEDEF, BTF_KIND_UNION, BTF_KIND_VOLATILE,
};

use super::{BTF_KIND_ARRAY, Reader, Sections, extra_len, name_at};

/// How deep a type is followed (modifiers, typedefs, pointers) before giving up: a
/// hostile blob may loop.
const MAX_CHAIN: usize = 32;

#[derive(Clone, Copy, Debug)]
struct Ty {
    info: u32,
    name_off: u32,
    size_or_type: u32,
    /// For a FUNC_PROTO, where its parameters start in [`Blob::params`].
    params: u32,
}

impl Ty {
    fn kind(&self) -> u32 {
        (self.info >> 24) & 0x1f
    }
    fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }
}

#[derive(Debug)]
struct Blob {
    data: Vec<u8>,
    strs: Range<usize>,
    /// The id of `types[0]`.
    first_id: u32,
    types: Vec<Ty>,
    /// Parameter type ids of every FUNC_PROTO, back to back.
    params: Vec<u32>,
}

/// Where a function's definition lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linkage {
    /// `static`.
    Static,
    /// A global function.
    Global,
    /// Declared here, defined elsewhere.
    Extern,
}

/// How a trampoline sees an argument or return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// `void` (returns only).
    Void,
    /// An integer, enum, or pointer: one register.
    Scalar,
    /// A struct or union passed by value, of this many bytes.
    Aggregate(u32),
    /// A floating-point value: trampolines refuse it.
    Float,
    /// Anything else (an array, a function, a broken reference).
    Other,
}

/// One function of the kernel's BTF.
#[derive(Clone, Debug)]
pub struct BtfFunction {
    /// Its name.
    pub name: Box<str>,
    /// The module whose BTF holds it; `None` for vmlinux.
    pub module: Option<Arc<str>>,
    /// Its BTF type id (a module's ids follow vmlinux's).
    pub id: u32,
    /// Static, global or extern.
    pub linkage: Linkage,
    /// The kind of each parameter.
    pub params: Vec<ValueKind>,
    /// Whether the prototype ends in `...`.
    pub variadic: bool,
    /// The return value's kind.
    pub ret: ValueKind,
    blob: u16,
    proto: u32,
}

/// The functions of one name: one (no allocation: counting every function asks for each
/// name's), or none or several.
#[derive(Debug)]
pub(crate) enum Named<'a> {
    One(&'a BtfFunction),
    Many(Vec<&'a BtfFunction>),
}

impl<'a> std::ops::Deref for Named<'a> {
    type Target = [&'a BtfFunction];
    fn deref(&self) -> &Self::Target {
        match self {
            Named::One(f) => std::slice::from_ref(f),
            Named::Many(v) => v,
        }
    }
}

/// The functions and types of vmlinux's and the loaded modules' BTF.
#[derive(Debug, Default)]
pub struct BtfProtos {
    blobs: Vec<Blob>,
    /// Every function, vmlinux's first, then each module's, in id order.
    pub functions: Vec<BtfFunction>,
    /// The module names, in blob order after vmlinux.
    modules: Vec<Box<str>>,
    /// The distinct function names, in `functions`' order.
    names: NameTable,
    /// By name id: the index in `functions` of the first function of that name.
    first_named: Vec<u32>,
    /// By name id, for the few names with several functions: the others.
    more_named: FxMap<u32, Vec<u32>>,
}

impl BtfProtos {
    /// Reads vmlinux's blob and module blobs (name, split BTF). A module blob that does
    /// not parse is skipped and named in the second value.
    pub fn from_blobs(
        vmlinux: Vec<u8>,
        modules: Vec<(String, Vec<u8>)>,
    ) -> Result<(Self, Vec<String>), String> {
        let mut out = BtfProtos::default();
        out.add(vmlinux, None)
            .map_err(|e| format!("vmlinux BTF: {e}"))?;
        let mut skipped = Vec::new();
        for (name, data) in modules {
            if let Err(e) = out.add(data, Some(name.clone())) {
                skipped.push(format!("{name}: {e}"));
            }
        }
        out.index_names();
        Ok((out, skipped))
    }

    fn index_names(&mut self) {
        let n = self.functions.len();
        self.names = NameTable::with_capacity(n, n * 24);
        self.first_named = Vec::with_capacity(n);
        for (i, f) in self.functions.iter().enumerate() {
            let i = i as u32;
            match self.names.intern(&f.name) {
                (_, true) => self.first_named.push(i),
                (id, false) => {
                    let first = self.first_named[id as usize];
                    let more = self.more_named.entry(id).or_default();
                    // pahole of the 6.1 era repeats a FUNC (syscall wrappers) within one
                    // blob: one function, as kallsyms confirms. Only a second blob's
                    // function of that name is another one.
                    if !std::iter::once(&first)
                        .chain(more.iter())
                        .any(|j| self.functions[*j as usize].module == f.module)
                    {
                        more.push(i);
                    }
                }
            }
        }
    }

    /// The distinct function names, vmlinux's first, as an iterator over ids in order.
    pub(crate) fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.names.iter()
    }

    /// The function name with id `id` (see [`names`](Self::names)).
    pub(crate) fn function_name(&self, id: u32) -> &str {
        self.names.name(id)
    }

    /// The id of function name `name`.
    pub(crate) fn name_id(&self, name: &str, hash: NameHash) -> Option<u32> {
        self.names.get_hashed(name, hash)
    }

    /// The functions whose name has id `id`: one, or several in different blobs.
    pub(crate) fn named(&self, id: u32) -> Named<'_> {
        let first = &self.functions[self.first_named[id as usize] as usize];
        match self.more_named.get(&id) {
            None => Named::One(first),
            Some(more) => Named::Many(
                std::iter::once(first)
                    .chain(more.iter().map(|i| &self.functions[*i as usize]))
                    .collect(),
            ),
        }
    }

    fn add(&mut self, data: Vec<u8>, module: Option<String>) -> Result<(), String> {
        let split = !self.blobs.is_empty();
        let secs = Sections::parse_as(&data, split)?;
        let first_id = match self.blobs.first() {
            Some(b) if split => b.first_id + b.types.len() as u32,
            _ => 1,
        };
        let base_str_len = match self.blobs.first() {
            Some(b) if split => (b.strs.end - b.strs.start) as u32,
            _ => 0,
        };
        let r = Reader { data: &data };
        let mut types = Vec::new();
        let mut params = Vec::new();
        let mut func_at = Vec::new();
        let mut pos = secs.types.start;
        let mut id = first_id - 1;
        while pos < secs.types.end {
            id = id.checked_add(1).ok_or("too many types")?;
            let info = r.u32(pos + 4)?;
            let mut ty = Ty {
                info,
                name_off: r.u32(pos)?,
                size_or_type: r.u32(pos + 8)?,
                params: 0,
            };
            let extra = extra_len(id, ty.kind(), ty.vlen())?;
            if ty.kind() == BTF_KIND_FUNC_PROTO {
                ty.params = params.len() as u32;
                for i in 0..ty.vlen() {
                    params.push(r.u32(pos + 12 + i * 8 + 4)?);
                }
            } else if ty.kind() == BTF_KIND_FUNC {
                func_at.push((id, ty));
            }
            types.push(ty);
            pos = pos
                .checked_add(12 + extra)
                .ok_or("type section overflows")?;
        }
        if pos != secs.types.end {
            return Err("type section ends inside a type".into());
        }
        let blob_index = self.blobs.len() as u16;
        let module: Option<Arc<str>> = module.map(Into::into);
        if let Some(m) = &module {
            self.modules.push(m.as_ref().into());
        }
        self.blobs.push(Blob {
            data,
            strs: secs.strs,
            first_id,
            types,
            params,
        });
        let mut functions = Vec::with_capacity(func_at.len());
        for (fid, ty) in func_at {
            let name = self.name_str(ty.name_off, blob_index, base_str_len)?;
            let linkage = match ty.vlen() {
                0 => Linkage::Static,
                1 => Linkage::Global,
                _ => Linkage::Extern,
            };
            let proto = ty.size_or_type;
            let mut f = BtfFunction {
                name: name.into(),
                module: module.clone(),
                id: fid,
                linkage,
                params: Vec::new(),
                variadic: false,
                ret: ValueKind::Other,
                blob: blob_index,
                proto,
            };
            if let Some(p) = self
                .ty(proto, blob_index)
                .filter(|p| p.kind() == BTF_KIND_FUNC_PROTO)
            {
                f.ret = self.value_kind(p.size_or_type, blob_index);
                let ids = self.param_ids(&p, proto, blob_index);
                f.params.reserve_exact(ids.len());
                for t in ids {
                    if *t == 0 {
                        f.variadic = true;
                    } else {
                        f.params.push(self.value_kind(*t, blob_index));
                    }
                }
            }
            functions.push(f);
        }
        self.functions.extend(functions);
        Ok(())
    }

    fn name(&self, off: u32, blob: u16, base_str_len: u32) -> Result<String, String> {
        self.name_str(off, blob, base_str_len).map(str::to_string)
    }

    fn name_str(&self, off: u32, blob: u16, base_str_len: u32) -> Result<&str, String> {
        let bytes = if blob > 0 && off < base_str_len {
            let b = &self.blobs[0];
            name_at(&b.data, &b.strs, off)?
        } else {
            let b = &self.blobs[blob as usize];
            name_at(
                &b.data,
                &b.strs,
                off - if blob > 0 { base_str_len } else { 0 },
            )?
        };
        std::str::from_utf8(bytes).map_err(|e| e.to_string())
    }

    fn name_of(&self, ty: &Ty, blob: u16) -> String {
        let base_len = (self.blobs[0].strs.end - self.blobs[0].strs.start) as u32;
        self.name(ty.name_off, blob, if blob > 0 { base_len } else { 0 })
            .unwrap_or_else(|_| "?".into())
    }

    /// The type `id` as seen from `blob` (vmlinux's ids are visible from every module).
    fn ty(&self, id: u32, blob: u16) -> Option<Ty> {
        let base = &self.blobs[0];
        let b = if id < base.first_id + base.types.len() as u32 {
            base
        } else {
            self.blobs.get(blob as usize)?
        };
        b.types.get(id.checked_sub(b.first_id)? as usize).copied()
    }

    /// The blob a type id found from `blob` lives in.
    fn blob_of(&self, id: u32, blob: u16) -> u16 {
        let base = &self.blobs[0];
        if id < base.first_id + base.types.len() as u32 {
            0
        } else {
            blob
        }
    }

    fn param_ids(&self, proto: &Ty, proto_id: u32, blob: u16) -> &[u32] {
        let b = &self.blobs[self.blob_of(proto_id, blob) as usize];
        let start = proto.params as usize;
        b.params
            .get(start..start + proto.vlen())
            .unwrap_or_default()
    }

    /// Follows typedefs and modifiers.
    fn resolve(&self, mut id: u32, blob: u16) -> Option<Ty> {
        for _ in 0..MAX_CHAIN {
            if id == 0 {
                return None;
            }
            let t = self.ty(id, blob)?;
            match t.kind() {
                BTF_KIND_TYPEDEF | BTF_KIND_CONST | BTF_KIND_VOLATILE | BTF_KIND_RESTRICT
                | BTF_KIND_TYPE_TAG => id = t.size_or_type,
                _ => return Some(t),
            }
        }
        None
    }

    fn value_kind(&self, id: u32, blob: u16) -> ValueKind {
        if id == 0 {
            return ValueKind::Void;
        }
        match self.resolve(id, blob) {
            Some(t) => match t.kind() {
                BTF_KIND_INT | BTF_KIND_ENUM | BTF_KIND_ENUM64 | BTF_KIND_PTR => ValueKind::Scalar,
                BTF_KIND_STRUCT | BTF_KIND_UNION => ValueKind::Aggregate(t.size_or_type),
                BTF_KIND_FLOAT => ValueKind::Float,
                _ => ValueKind::Other,
            },
            None => ValueKind::Other,
        }
    }

    /// The C spelling of each parameter's type (`struct sk_buff *`, `const char *`,
    /// `u32`): typedef names are kept, as the source spells them.
    pub fn param_types(&self, f: &BtfFunction) -> Vec<String> {
        let Some(p) = self.ty(f.proto, f.blob) else {
            return Vec::new();
        };
        self.param_ids(&p, f.proto, f.blob)
            .iter()
            .filter(|t| **t != 0)
            .map(|t| self.spell(*t, f.blob, 0))
            .collect()
    }

    fn spell(&self, id: u32, blob: u16, depth: usize) -> String {
        if id == 0 {
            return "void".into();
        }
        let Some(t) = self.ty(id, blob).filter(|_| depth < MAX_CHAIN) else {
            return "?".into();
        };
        let named = |prefix: &str| format!("{prefix}{}", self.name_of(&t, self.blob_of(id, blob)));
        let pointer_to = |inner: String| {
            if inner.ends_with('*') {
                format!("{inner}*")
            } else {
                format!("{inner} *")
            }
        };
        let target = t.size_or_type;
        let target_is_ptr = || {
            self.ty(target, blob)
                .is_some_and(|x| x.kind() == BTF_KIND_PTR)
        };
        match t.kind() {
            BTF_KIND_INT | BTF_KIND_FLOAT | BTF_KIND_TYPEDEF => named(""),
            BTF_KIND_STRUCT => named("struct "),
            BTF_KIND_UNION => named("union "),
            BTF_KIND_ENUM | BTF_KIND_ENUM64 => named("enum "),
            BTF_KIND_FWD if t.info >> 31 == 1 => named("union "),
            BTF_KIND_FWD => named("struct "),
            BTF_KIND_PTR => pointer_to(self.spell(target, blob, depth + 1)),
            BTF_KIND_CONST | BTF_KIND_VOLATILE => {
                let q = if t.kind() == BTF_KIND_CONST {
                    "const"
                } else {
                    "volatile"
                };
                if target_is_ptr() {
                    format!("{} {q}", self.spell(target, blob, depth + 1))
                } else {
                    format!("{q} {}", self.spell(target, blob, depth + 1))
                }
            }
            BTF_KIND_RESTRICT | BTF_KIND_TYPE_TAG => self.spell(target, blob, depth + 1),
            BTF_KIND_FUNC_PROTO => "func".into(),
            BTF_KIND_ARRAY => "array".into(),
            _ => "?".into(),
        }
    }

    /// vmlinux's raw blob, as read (other readers of the kernel's BTF can share the read).
    pub fn vmlinux_blob(&self) -> Option<&[u8]> {
        self.blobs.first().map(|b| b.data.as_slice())
    }

    /// The names of the modules read, in order.
    pub fn modules(&self) -> impl ExactSizeIterator<Item = &str> {
        self.modules.iter().map(|m| &**m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::BtfBuilder;

    #[test]
    fn the_running_kernel_has_skb_functions() {
        let Ok(vmlinux) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            crate::testing::skip(
                "btf::protos::the_running_kernel_has_skb_functions",
                "/sys/kernel/btf/vmlinux is not readable",
            );
            return;
        };
        let (protos, _) = BtfProtos::from_blobs(vmlinux, Vec::new()).unwrap();
        assert!(
            protos.functions.len() > 10_000,
            "{}",
            protos.functions.len()
        );
        let f = protos
            .functions
            .iter()
            .find(|f| &*f.name == "kfree_skb_reason" || &*f.name == "consume_skb")
            .expect("an skb function");
        assert_eq!(protos.param_types(f)[0], "struct sk_buff *");
        assert!(f.params.iter().all(|k| *k == ValueKind::Scalar));
    }

    #[test]
    fn synthetic_prototypes_spell_and_classify() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        let s = b.struct_("sk_buff", 16, &[("len", int, 0)]);
        let ptr = b.ptr(s);
        let c = b.const_(s);
        let cptr = b.ptr(c);
        let proto = b.func_proto(int, &[("skb", ptr), ("c", cptr), ("v", s), ("", 0)]);
        b.func("f", proto);
        let blob = b.build();
        let (protos, _) = BtfProtos::from_blobs(blob, Vec::new()).unwrap();
        let f = &protos.functions[0];
        assert_eq!(&*f.name, "f");
        assert_eq!(f.linkage, Linkage::Global);
        assert!(f.variadic);
        assert_eq!(f.ret, ValueKind::Scalar);
        assert_eq!(
            f.params,
            vec![
                ValueKind::Scalar,
                ValueKind::Scalar,
                ValueKind::Aggregate(16)
            ]
        );
        assert_eq!(
            protos.param_types(f),
            vec![
                "struct sk_buff *",
                "const struct sk_buff *",
                "struct sk_buff"
            ]
        );
    }

    #[test]
    fn hostile_blobs_are_errors() {
        assert!(BtfProtos::from_blobs(vec![0; 10], Vec::new()).is_err());
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        let proto = b.func_proto(int, &[]);
        b.func("f", proto);
        let mut blob = b.build();
        blob.truncate(blob.len() - 3);
        assert!(BtfProtos::from_blobs(blob, Vec::new()).is_err());
    }
}
