//! Building tiny BTF blobs: probes for BTF kinds, storage maps, `ext` and
//! fentry-on-a-program need them (libbpf builds the same ones by hand in
//! `libbpf_probes.c`/`features.c`).
use aya_obj::generated::{
    BTF_INT_SIGNED, BTF_KIND_ARRAY, BTF_KIND_CONST, BTF_KIND_DATASEC, BTF_KIND_DECL_TAG,
    BTF_KIND_ENUM64, BTF_KIND_FLOAT, BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO, BTF_KIND_INT,
    BTF_KIND_PTR, BTF_KIND_STRUCT, BTF_KIND_TYPE_TAG, BTF_KIND_TYPEDEF, BTF_KIND_UNION,
    BTF_KIND_VAR, BTF_KIND_VOLATILE,
};

use super::{BTF_MAGIC, HEADER_LEN};

/// Builds a small raw BTF blob, one type at a time. Type ids start at 1, in call order.
#[derive(Default)]
pub struct BtfBuilder {
    types: Vec<u8>,
    strings: Vec<u8>,
    next_id: u32,
}

fn info(kind: u32, vlen: u32, kind_flag: bool) -> u32 {
    (kind << 24) | (vlen & 0xffff) | ((kind_flag as u32) << 31)
}

impl BtfBuilder {
    /// An empty blob: no types, the string section holding only the empty name.
    pub fn new() -> Self {
        BtfBuilder {
            types: Vec::new(),
            strings: vec![0],
            next_id: 1,
        }
    }

    /// Adds a string to the string section; returns its offset.
    pub fn string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    fn words(&mut self, words: &[u32]) {
        for w in words {
            self.types.extend_from_slice(&w.to_ne_bytes());
        }
    }

    fn push(&mut self, name: &str, info: u32, size_or_type: u32, extra: &[u32]) -> u32 {
        let name = self.string(name);
        self.words(&[name, info, size_or_type]);
        self.words(extra);
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A signed integer of `bytes` bytes.
    pub fn int(&mut self, name: &str, bytes: u32) -> u32 {
        self.push(
            name,
            info(BTF_KIND_INT, 0, false),
            bytes,
            &[(BTF_INT_SIGNED << 24) | (bytes * 8)],
        )
    }

    /// An integer of the pre-`kind_flag` bitfield encoding: `bits` bits at bit `bit_offset`
    /// of a `bytes`-byte storage unit (how pahole described bitfields before kernel 4.20).
    pub fn int_bits(&mut self, name: &str, bytes: u32, bits: u32, bit_offset: u32) -> u32 {
        self.push(
            name,
            info(BTF_KIND_INT, 0, false),
            bytes,
            &[((bit_offset & 0xff) << 16) | (bits & 0xff)],
        )
    }

    /// A pointer to type `to`.
    pub fn ptr(&mut self, to: u32) -> u32 {
        self.push("", info(BTF_KIND_PTR, 0, false), to, &[])
    }

    /// A struct with `(name, type, bit offset)` members (an empty name: an anonymous member).
    pub fn struct_(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        self.composite(BTF_KIND_STRUCT, name, size, members, false)
    }

    /// A union with `(name, type, bit offset)` members (an empty name: an anonymous member).
    pub fn union_(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        self.composite(BTF_KIND_UNION, name, size, members, false)
    }

    /// A struct in the `kind_flag` encoding, with `(name, type, bit offset, bitfield size)`
    /// members; a bitfield size of 0 is an ordinary member.
    pub fn struct_bitfields(
        &mut self,
        name: &str,
        size: u32,
        members: &[(&str, u32, u32, u32)],
    ) -> u32 {
        let packed: Vec<(&str, u32, u32)> = members
            .iter()
            .map(|(n, t, off, bits)| (*n, *t, (bits << 24) | (off & 0xff_ffff)))
            .collect();
        self.composite(BTF_KIND_STRUCT, name, size, &packed, true)
    }

    fn composite(
        &mut self,
        kind: u32,
        name: &str,
        size: u32,
        members: &[(&str, u32, u32)],
        kind_flag: bool,
    ) -> u32 {
        let mut extra = Vec::new();
        for (n, t, off) in members {
            let n = self.string(n);
            extra.extend_from_slice(&[n, *t, *off]);
        }
        self.push(
            name,
            info(kind, members.len() as u32, kind_flag),
            size,
            &extra,
        )
    }

    /// `typedef to name;`
    pub fn typedef(&mut self, name: &str, to: u32) -> u32 {
        self.push(name, info(BTF_KIND_TYPEDEF, 0, false), to, &[])
    }

    /// `const to`.
    pub fn const_(&mut self, to: u32) -> u32 {
        self.push("", info(BTF_KIND_CONST, 0, false), to, &[])
    }

    /// `volatile to`.
    pub fn volatile(&mut self, to: u32) -> u32 {
        self.push("", info(BTF_KIND_VOLATILE, 0, false), to, &[])
    }

    /// An array of `count` elements of type `elem`, indexed by the integer type `index`.
    pub fn array(&mut self, elem: u32, index: u32, count: u32) -> u32 {
        self.push("", info(BTF_KIND_ARRAY, 0, false), 0, &[elem, index, count])
    }

    /// A function prototype with `(name, type)` parameters.
    pub fn func_proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
        let mut extra = Vec::new();
        for (n, t) in params {
            let n = self.string(n);
            extra.extend_from_slice(&[n, *t]);
        }
        self.push(
            "",
            info(BTF_KIND_FUNC_PROTO, params.len() as u32, false),
            ret,
            &extra,
        )
    }

    /// A global function (linkage 1) of prototype `proto`.
    pub fn func(&mut self, name: &str, proto: u32) -> u32 {
        self.push(name, info(BTF_KIND_FUNC, 1, false), proto, &[])
    }

    /// A global variable (linkage 1).
    pub fn var(&mut self, name: &str, ty: u32) -> u32 {
        self.push(name, info(BTF_KIND_VAR, 0, false), ty, &[1])
    }

    /// A data section with `(var type, offset, size)` entries.
    pub fn datasec(&mut self, name: &str, size: u32, vars: &[(u32, u32, u32)]) -> u32 {
        let extra: Vec<u32> = vars.iter().flat_map(|(t, o, s)| [*t, *o, *s]).collect();
        self.push(
            name,
            info(BTF_KIND_DATASEC, vars.len() as u32, false),
            size,
            &extra,
        )
    }

    /// A floating-point type of `bytes` bytes.
    pub fn float(&mut self, name: &str, bytes: u32) -> u32 {
        self.push(name, info(BTF_KIND_FLOAT, 0, false), bytes, &[])
    }

    /// A `decl_tag` on type `to` (component -1: the type itself).
    pub fn decl_tag(&mut self, name: &str, to: u32) -> u32 {
        self.push(name, info(BTF_KIND_DECL_TAG, 0, false), to, &[u32::MAX])
    }

    /// A `type_tag` (such as `__user`) on type `to`.
    pub fn type_tag(&mut self, name: &str, to: u32) -> u32 {
        self.push(name, info(BTF_KIND_TYPE_TAG, 0, false), to, &[])
    }

    /// A 64-bit enum with one member.
    pub fn enum64(&mut self, name: &str, member: &str, value: u64) -> u32 {
        let m = self.string(member);
        self.push(
            name,
            info(BTF_KIND_ENUM64, 1, false),
            8,
            &[m, value as u32, (value >> 32) as u32],
        )
    }

    /// The finished blob: header, types, strings.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.types.len() + self.strings.len());
        out.extend_from_slice(&BTF_MAGIC.to_ne_bytes());
        out.push(1); // version
        out.push(0); // flags
        for w in [
            HEADER_LEN as u32,
            0,
            self.types.len() as u32,
            self.types.len() as u32,
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}
