use std::time::{Duration, Instant};

use super::*;
use crate::btf::{BtfBuilder, KernelBtf};

/// A kernel-like BTF: sk_buff in the `kind_flag` encoding with bitfields, an anonymous
/// union inside an anonymous struct, a `struct_group` (an anonymous union of an anonymous
/// struct and a named one), task_struct's `thread` behind a type tag, volatile, const and
/// a typedef, an old-encoding bitfield, a union at top level, a typedef'd anonymous struct.
fn kernelish() -> Vec<u8> {
    let mut b = BtfBuilder::new();
    let long = b.int("long", 8);
    let u32_ = b.int("unsigned int", 4);
    let u16_ = b.int("unsigned short", 2);
    let u8_ = b.int("unsigned char", 1);
    let be16 = b.typedef("__be16", u16_);
    let headers = b.struct_("", 56, &[("skb_iif", u32_, 0), ("protocol", be16, 384)]);
    let group = b.union_("", 56, &[("", headers, 0), ("headers", headers, 0)]);
    let mark = b.union_("", 4, &[("mark", u32_, 0), ("reserved_tailroom", u32_, 0)]);
    let anon = b.struct_("", 8, &[("", mark, 0), ("vlan_tci", u16_, 32)]);
    let cb = b.array(u8_, u32_, 48);
    let sock = b.struct_("sock", 2, &[("sk_family", u16_, 0)]);
    let sock_ptr = b.ptr(sock);
    b.struct_bitfields(
        "sk_buff",
        184,
        &[
            ("sk", sock_ptr, 192, 0),
            ("cb", cb, 320, 0),
            ("", anon, 768, 0),
            ("len", u32_, 896, 0),
            ("cloned", u8_, 1008, 1),
            ("nohdr", u8_, 1009, 1),
            ("active_extensions", u8_, 1016, 0),
            ("", group, 1024, 0),
        ],
    );
    let flags = b.int_bits("unsigned int", 4, 3, 5);
    let thread = b.struct_(
        "thread_struct",
        24,
        &[("ip", long, 0), ("sp", long, 64), ("flags", flags, 128)],
    );
    let thread_t = b.typedef("thread_t", thread);
    let c = b.const_(thread_t);
    let v = b.volatile(c);
    let tagged = b.type_tag("user", v);
    let thread_ptr = b.ptr(thread);
    b.struct_(
        "task_struct",
        64,
        &[
            ("pid", u32_, 0),
            ("tp", thread_ptr, 64),
            ("thread", tagged, 256),
        ],
    );
    let prog = b.struct_("", 8, &[("prog_type", u32_, 0), ("insn_cnt", u32_, 32)]);
    b.union_("bpf_attr", 8, &[("map_type", u32_, 0), ("", prog, 0)]);
    let counter = b.struct_("", 4, &[("counter", u32_, 0)]);
    b.typedef("atomic_t", counter);
    b.typedef("u32", u32_);
    let nibbles = b.struct_bitfields("", 4, &[("lo", u32_, 0, 4), ("hi", u32_, 4, 28)]);
    b.struct_("packed", 8, &[("first", u32_, 0), ("", nibbles, 32)]);
    b.build()
}

fn at(offset: u32, size: u32) -> FieldOffset {
    FieldOffset { offset, size }
}

#[test]
fn offsets_through_anonymous_members_and_typedefs() {
    let f = FieldOffsets::from_bytes(&kernelish()).unwrap();
    let cases = [
        ("sk_buff.len", at(112, 4)),
        ("struct sk_buff.len", at(112, 4)),
        ("  struct   sk_buff . len ", at(112, 4)),
        ("sk_buff.sk", at(24, 8)),
        ("sk_buff.cb", at(40, 48)),
        // An anonymous union inside an anonymous struct.
        ("sk_buff.mark", at(96, 4)),
        ("sk_buff.reserved_tailroom", at(96, 4)),
        ("sk_buff.vlan_tci", at(100, 2)),
        // A kind_flag member with bitfield size 0 is an ordinary member.
        ("sk_buff.active_extensions", at(127, 1)),
        // struct_group: the anonymous copy and the named one.
        ("sk_buff.protocol", at(176, 2)),
        ("sk_buff.headers", at(128, 56)),
        ("sk_buff.headers.protocol", at(176, 2)),
        ("sk_buff.headers.skb_iif", at(128, 4)),
        // Through a type tag, volatile, const and a typedef.
        ("task_struct.thread", at(32, 24)),
        ("task_struct.thread.sp", at(40, 8)),
        ("task_struct.tp", at(8, 8)),
        ("union bpf_attr.map_type", at(0, 4)),
        ("bpf_attr.insn_cnt", at(4, 4)),
        ("atomic_t.counter", at(0, 4)),
        ("sock.sk_family", at(0, 2)),
    ];
    for (path, want) in cases {
        match f.offset_of(path) {
            Ok(got) => assert_eq!(got, want, "{path}"),
            Err(e) => panic!("{path}: {e}"),
        }
    }
    assert_eq!(f.type_count(), 28);
}

#[test]
fn bitfields_are_refused_with_their_bit_offset() {
    let f = FieldOffsets::from_bytes(&kernelish()).unwrap();
    let cases = [
        // kind_flag encoding.
        ("sk_buff.cloned", 1008, 1),
        ("sk_buff.nohdr", 1009, 1),
        // The older encoding: an int type of 3 bits at bit 5, at member bit offset 128.
        ("task_struct.thread.flags", 256 + 128 + 5, 3),
        // Inside an anonymous struct.
        ("packed.hi", 32 + 4, 28),
    ];
    for (path, offset, size) in cases {
        match f.offset_of(path) {
            Err(FieldError::Bitfield {
                path: p,
                bit_offset,
                bit_size,
            }) => {
                assert_eq!((p.as_str(), bit_offset, bit_size), (path, offset, size));
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    let e = f.offset_of("sk_buff.cloned").unwrap_err().to_string();
    assert!(
        e.contains("bitfield") && e.contains("bit offset 1008"),
        "{e}"
    );
}

#[test]
fn unknown_names_say_where_and_suggest() {
    let f = FieldOffsets::from_bytes(&kernelish()).unwrap();
    match f.offset_of("sk_buf.len") {
        Err(FieldError::UnknownType {
            name, suggestion, ..
        }) => assert_eq!(
            (name.as_str(), suggestion.as_deref()),
            ("sk_buf", Some("sk_buff"))
        ),
        other => panic!("{other:?}"),
    }
    let e = f.offset_of("sk_buf.len").unwrap_err().to_string();
    assert!(e.contains("did you mean `sk_buff`"), "{e}");
    // The kind named must match.
    match f.offset_of("union sk_buff.len") {
        Err(FieldError::UnknownType { kind: "union", .. }) => {}
        other => panic!("{other:?}"),
    }
    match f.offset_of("task_struct.thread.spp") {
        Err(FieldError::UnknownMember {
            path,
            within,
            member,
            suggestion,
        }) => assert_eq!(
            (
                path.as_str(),
                within.as_str(),
                member.as_str(),
                suggestion.as_deref()
            ),
            (
                "task_struct.thread",
                "struct thread_struct",
                "spp",
                Some("sp")
            )
        ),
        other => panic!("{other:?}"),
    }
    // Suggestions come from anonymous members too.
    match f.offset_of("sk_buff.protocl") {
        Err(FieldError::UnknownMember { suggestion, .. }) => {
            assert_eq!(suggestion.as_deref(), Some("protocol"))
        }
        other => panic!("{other:?}"),
    }
    // `mark` is in sk_buff, not in its `headers` group.
    match f.offset_of("sk_buff.headers.mark") {
        Err(FieldError::UnknownMember { path, within, .. }) => {
            assert_eq!(
                (path.as_str(), within.as_str()),
                ("sk_buff.headers", "struct (anonymous)")
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        f.offset_of("no_such_thing_at_all.x"),
        Err(FieldError::UnknownType {
            suggestion: None,
            ..
        })
    ));
}

#[test]
fn members_of_non_structs_are_refused() {
    let f = FieldOffsets::from_bytes(&kernelish()).unwrap();
    match f.offset_of("sk_buff.len.x") {
        Err(FieldError::NotComposite { path, kind, member }) => {
            assert_eq!(
                (path.as_str(), kind, member.as_str()),
                ("sk_buff.len", "an int", "x")
            )
        }
        other => panic!("{other:?}"),
    }
    let e = f.offset_of("task_struct.tp.sp").unwrap_err();
    assert!(
        matches!(
            e,
            FieldError::NotComposite {
                kind: "a pointer",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("offsets do not follow pointers"),
        "{e}"
    );
    assert!(matches!(
        f.offset_of("sk_buff.cb.x"),
        Err(FieldError::NotComposite {
            kind: "an array",
            ..
        })
    ));
    // A typedef of an int at the root.
    assert!(matches!(
        f.offset_of("u32.x"),
        Err(FieldError::NotComposite { kind: "an int", .. })
    ));
}

#[test]
fn malformed_paths() {
    let f = FieldOffsets::from_bytes(&kernelish()).unwrap();
    let long = "a".repeat(5000) + ".b";
    for path in [
        "",
        "   ",
        "struct",
        "struct ",
        "sk_buff",
        "struct sk_buff",
        ".len",
        "sk_buff.",
        "sk_buff..len",
        "sk buff.len",
        "sk_buff.1en",
        "sk_buff->len",
        "sk_buff.len[0]",
        "σk_buff.len",
        long.as_str(),
    ] {
        match f.offset_of(path) {
            Err(FieldError::BadPath { path: shown, why }) => {
                assert!(shown.len() < 200 && !why.is_empty(), "{path:?}")
            }
            other => panic!("{path:?}: {other:?}"),
        }
    }
    // `structure` is a name, not the `struct` keyword.
    assert!(matches!(
        f.offset_of("structure.x"),
        Err(FieldError::UnknownType { .. })
    ));
}

/// Lookups that exercise every path of the code, for the mutation tests.
const PATHS: &[&str] = &[
    "sk_buff.len",
    "sk_buff.protocol",
    "sk_buff.headers.protocol",
    "sk_buff.cloned",
    "sk_buff.cb",
    "sk_buff.nothing",
    "sk_buf.len",
    "task_struct.thread.sp",
    "task_struct.thread.flags",
    "task_struct.tp.sp",
    "bpf_attr.insn_cnt",
    "atomic_t.counter",
    "u32.x",
    "packed.hi",
];

#[test]
fn truncated_and_mutated_btf_never_panics() {
    let blob = kernelish();
    for cut in 0..blob.len() {
        if let Ok(f) = FieldOffsets::from_bytes(&blob[..cut]) {
            for path in PATHS {
                let _ = f.offset_of(path);
            }
        }
    }
    let t = Instant::now();
    let mut accepted = 0;
    for i in 0..blob.len() {
        for byte in [0x00, 0x01, 0x1f, 0xff] {
            let mut bad = blob.clone();
            bad[i] = byte;
            if let Ok(f) = FieldOffsets::from_bytes(&bad) {
                accepted += 1;
                for path in PATHS {
                    let _ = f.offset_of(path);
                }
            }
        }
    }
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    // Most mutants index (a changed name, type id or offset): their lookups ran.
    assert!(accepted > blob.len(), "{accepted} of {}", 4 * blob.len());
    assert!(matches!(
        FieldOffsets::from_bytes(b"not btf at all, not at all"),
        Err(FieldError::Malformed(_))
    ));
}

#[test]
fn loops_and_depth_are_bounded() {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4);
    // typedef a -> typedef b -> typedef a.
    let a = b.typedef("a", int + 2);
    b.typedef("b", a);
    b.struct_("looped", 4, &[("m", a, 0)]);
    // An anonymous struct that contains itself.
    let selfish = b.struct_("", 4, &[("", int + 4, 0), ("y", int, 0)]);
    assert_eq!(selfish, int + 4);
    b.struct_("selfish", 4, &[("", selfish, 0)]);
    // A struct and a broken typedef of the same name; a broken typedef alone.
    b.struct_("shadowed", 4, &[("x", int, 0)]);
    b.typedef("shadowed", a);
    b.typedef("only_loop", a);
    // Anonymous structs nested 40 deep.
    let mut inner = b.struct_("", 4, &[("x", int, 0)]);
    for _ in 0..40 {
        inner = b.struct_("", 4, &[("", inner, 0)]);
    }
    b.struct_("deep", 4, &[("", inner, 0)]);
    // 30 levels of 200 anonymous members each: 200^30 paths, each type searched once.
    let mut level = b.struct_("", 4, &[("z", int, 0)]);
    for _ in 0..30 {
        let members = vec![("", level, 0); 200];
        level = b.struct_("", 4, &members);
    }
    b.struct_("wide", 4, &[("", level, 0)]);
    // A member of an out-of-range type, and an array too large for its size.
    b.struct_("dangling", 4, &[("m", 9999, 0)]);
    let huge = b.array(int, int, u32::MAX);
    let huger = b.array(huge, int, u32::MAX);
    b.struct_("huge", 4, &[("m", huger, 0)]);
    let f = FieldOffsets::from_bytes(&b.build()).unwrap();

    let e = f.offset_of("looped.m").unwrap_err().to_string();
    assert!(e.contains("typedefs and modifiers"), "{e}");
    assert_eq!(f.offset_of("shadowed.x").unwrap(), at(0, 4));
    let e = f.offset_of("only_loop.x").unwrap_err().to_string();
    assert!(e.contains("typedefs and modifiers"), "{e}");
    assert_eq!(f.offset_of("selfish.y").unwrap(), at(0, 4));
    assert!(matches!(
        f.offset_of("selfish.x"),
        Err(FieldError::UnknownMember { .. })
    ));
    let e = f.offset_of("deep.x").unwrap_err().to_string();
    assert!(e.contains("nested more than 32"), "{e}");
    let t = Instant::now();
    assert_eq!(f.offset_of("wide.z").unwrap(), at(0, 4));
    assert!(matches!(
        f.offset_of("wide.nothing"),
        Err(FieldError::UnknownMember { .. })
    ));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let e = f.offset_of("dangling.m").unwrap_err().to_string();
    assert!(e.contains("out of range"), "{e}");
    let e = f.offset_of("huge.m").unwrap_err().to_string();
    assert!(
        e.contains("larger than 4 GiB") || e.contains("too many"),
        "{e}"
    );
}

#[test]
fn pointer_size_comes_from_the_btf() {
    // No `long`: the host's pointer size.
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4);
    let p = b.ptr(int);
    b.struct_("s", 8, &[("p", p, 0)]);
    let f = FieldOffsets::from_bytes(&b.build()).unwrap();
    assert_eq!(f.offset_of("s.p").unwrap().size, size_of::<usize>() as u32);
    // A 32-bit target's BTF.
    let mut b = BtfBuilder::new();
    b.int("long int", 4);
    let int = b.int("int", 4);
    let p = b.ptr(int);
    b.struct_("s", 8, &[("p", p, 0)]);
    let f = FieldOffsets::from_bytes(&b.build()).unwrap();
    assert_eq!(f.offset_of("s.p").unwrap().size, 4);
}

/// The first definition of a name that has the whole path wins.
#[test]
fn duplicate_names() {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4);
    b.struct_("dup", 4, &[("a", int, 0)]);
    b.struct_("dup", 8, &[("a", int, 0), ("b", int, 32)]);
    let f = FieldOffsets::from_bytes(&b.build()).unwrap();
    assert_eq!(f.offset_of("dup.a").unwrap(), at(0, 4));
    assert_eq!(f.offset_of("dup.b").unwrap(), at(4, 4));
    assert!(matches!(
        f.offset_of("dup.c"),
        Err(FieldError::UnknownMember { .. })
    ));
}

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The running kernel's BTF, checked against bpftool's dump of it, read by a separate,
/// simple walk of the text (`RawDump`).
#[test]
fn real_vmlinux_matches_bpftool() {
    const TEST: &str = "btf::fields::tests::real_vmlinux_matches_bpftool";
    if !Path::new(VMLINUX).exists() {
        crate::testing::skip(
            TEST,
            "no /sys/kernel/btf/vmlinux (no CONFIG_DEBUG_INFO_BTF)",
        );
        return;
    }
    let t = Instant::now();
    let f = FieldOffsets::from_sys_fs().unwrap();
    eprintln!("{VMLINUX} read and indexed in {:?}: {f:?}", t.elapsed());
    let len = f.offset_of("sk_buff.len").unwrap();
    let t = Instant::now();
    let protocol = f.offset_of("sk_buff.protocol").unwrap();
    let found = t.elapsed();
    let t = Instant::now();
    let typo = f.offset_of("sk_buf.len").unwrap_err();
    eprintln!(
        "sk_buff.protocol found in {found:?}; `{typo}` in {:?}",
        t.elapsed()
    );
    assert_eq!((len.size, protocol.size), (4, 2));
    assert!(protocol.offset > len.offset, "{len:?} {protocol:?}");
    assert_eq!(kernel_field_offset("sk_buff.len").unwrap(), len);
    let old = KernelBtf::from_sys_fs().unwrap();
    assert_eq!(old.member_offset("sk_buff", "len"), Some(len.offset));
    assert!(matches!(
        f.offset_of("sk_buff.cloned"),
        Err(FieldError::Bitfield { bit_size: 1, .. })
    ));

    let Some(dump) = bpftool_raw_dump() else {
        crate::testing::skip(TEST, "bpftool not found: only sanity checks were made");
        return;
    };
    let raw = RawDump::parse(&dump);
    let mut paths = vec![
        "sk_buff.len",
        "sk_buff.protocol",
        "sk_buff.headers",
        "sk_buff.cb",
    ];
    if cfg!(target_arch = "x86_64") {
        paths.extend(["task_struct.thread.sp", "pt_regs.di"]);
    }
    paths.extend(["task_struct.pid", "sock.__sk_common", "bpf_attr.map_type"]);
    for path in paths {
        let want = raw
            .resolve(path)
            .unwrap_or_else(|| panic!("bpftool dump: no {path}"));
        assert_eq!(f.offset_of(path).unwrap(), want, "{path}");
        eprintln!("{path}: {want:?}, as bpftool says");
    }
}

fn bpftool_raw_dump() -> Option<String> {
    ["bpftool", "/usr/sbin/bpftool", "/sbin/bpftool"]
        .into_iter()
        .find_map(|tool| {
            let out = std::process::Command::new(tool)
                .args(["btf", "dump", "file", VMLINUX, "format", "raw"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        })
}

/// bpftool's `format raw` text, read independently of the binary parser: each type is
/// decoded from its lines when a lookup reaches it.
struct RawDump<'a> {
    lines: Vec<&'a str>,
    /// The line of `[id] KIND 'name' …`, by id.
    starts: Vec<usize>,
    /// Named structs and unions (the first of each name).
    by_name: std::collections::HashMap<&'a str, u32>,
}

/// `KIND`, `key=value` attributes, and `'name' type_id=N bits_offset=N` member lines.
struct RawType<'a> {
    kind: &'a str,
    attrs: Vec<(&'a str, u64)>,
    members: Vec<(&'a str, u32, u64)>,
}

impl RawType<'_> {
    fn attr(&self, key: &str) -> Option<u64> {
        self.attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

fn raw_attrs(s: &str) -> Vec<(&str, u64)> {
    s.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect()
}

impl<'a> RawDump<'a> {
    fn parse(text: &'a str) -> RawDump<'a> {
        let lines: Vec<&str> = text.lines().collect();
        let mut starts = vec![0];
        let mut by_name = std::collections::HashMap::new();
        for (i, line) in lines.iter().enumerate() {
            let Some((id, rest)) = line.strip_prefix('[').and_then(|l| l.split_once("] ")) else {
                continue;
            };
            assert_eq!(id.parse::<usize>().ok(), Some(starts.len()), "{line}");
            starts.push(i);
            for kind in ["STRUCT '", "UNION '"] {
                if let Some((name, _)) = rest.strip_prefix(kind).and_then(|r| r.split_once('\'')) {
                    by_name.entry(name).or_insert(starts.len() as u32 - 1);
                }
            }
        }
        RawDump {
            lines,
            starts,
            by_name,
        }
    }

    fn ty(&self, id: u32) -> Option<RawType<'a>> {
        let start = *self.starts.get(id as usize).filter(|_| id > 0)?;
        let (_, header) = self.lines[start].split_once("] ")?;
        let (kind, rest) = header.split_once(" '")?;
        let (_, rest) = rest.split_once('\'')?;
        let members = self.lines[start + 1..]
            .iter()
            .map_while(|l| l.strip_prefix("\t'"))
            .filter_map(|m| {
                let (name, rest) = m.split_once('\'')?;
                let a = raw_attrs(rest);
                let get = |k: &str| a.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
                Some((name, get("type_id")? as u32, get("bits_offset")?))
            })
            .collect();
        Some(RawType {
            kind,
            attrs: raw_attrs(rest),
            members,
        })
    }

    fn resolve(&self, path: &str) -> Option<FieldOffset> {
        let mut parts = path.split('.');
        let mut id = *self.by_name.get(parts.next()?)?;
        let mut bits = 0;
        for member in parts {
            let (b, t) = self.find(self.peel(id)?, member)?;
            bits += b;
            id = t;
        }
        Some(FieldOffset {
            offset: (bits / 8) as u32,
            size: self.size(id)? as u32,
        })
    }

    fn find(&self, id: u32, member: &str) -> Option<(u64, u32)> {
        for (name, t, bits) in self.ty(id)?.members {
            if name == member {
                return Some((bits, t));
            }
            if name == "(anon)"
                && let Some((b, t)) = self.find(self.peel(t)?, member)
            {
                return Some((bits + b, t));
            }
        }
        None
    }

    fn peel(&self, mut id: u32) -> Option<u32> {
        loop {
            let t = self.ty(id)?;
            if !matches!(
                t.kind,
                "TYPEDEF" | "CONST" | "VOLATILE" | "RESTRICT" | "TYPE_TAG"
            ) {
                return Some(id);
            }
            id = t.attr("type_id")? as u32;
        }
    }

    fn size(&self, id: u32) -> Option<u64> {
        let t = self.ty(self.peel(id)?)?;
        match t.kind {
            "PTR" => Some(size_of::<usize>() as u64),
            "ARRAY" => Some(self.size(t.attr("type_id")? as u32)? * t.attr("nr_elems")?),
            _ => t.attr("size"),
        }
    }
}
