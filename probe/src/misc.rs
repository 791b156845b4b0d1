//! Miscellaneous features: verifier and ISA capabilities, BTF kinds, global data, links,
//! multi-attach, and the attach contexts tracers need. One entry per feature, each with the
//! release it appeared in; meaning of the answers: see [`crate::support`].
use std::{ffi::CStr, os::fd::AsFd};

use aya_obj::generated::{
    BPF_F_RDONLY_PROG, BPF_JLT, BPF_JNE, BPF_SUB, bpf_attach_type, bpf_map_type, bpf_prog_type,
};
use serde::{Deserialize, Serialize};

use crate::{
    btf::BtfBuilder,
    helpers, insn,
    names::{AttachContext, Helper, MapType, ProgramType, Since, UnknownName, closest},
    prober::{LoadSetup, Prober, load_and_classify, with_log},
    support::{Evidence, Scope, Support, classify_errno, classify_prog_load},
    sys::{self, Errno, LinkCreate, MapCreate, ProgLoad},
};

macro_rules! misc_features {
    ($($variant:ident => $name:literal, $since:expr, $doc:literal;)*) => {
        /// A miscellaneous feature.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Misc { $(#[doc = $doc] $variant,)* }

        impl Misc {
            pub const ALL: &'static [Misc] = &[$(Misc::$variant,)*];
            pub fn name(self) -> &'static str {
                match self { $(Misc::$variant => $name,)* }
            }
            pub fn since(self) -> Since {
                match self { $(Misc::$variant => $since,)* }
            }
            pub fn description(self) -> &'static str {
                match self { $(Misc::$variant => $doc,)* }
            }
        }
    };
}

misc_features! {
    BoundedLoops => "bounded_loops", Since::new(5, 3), "the verifier accepts bounded loops (backward jumps)";
    LargeInsnLimit => "large_insn_limit", Since::new(5, 2), "programs of up to 1M instructions";
    IsaV2 => "isa_v2", Since::new(4, 14), "ISA v2: JLT/JLE/JSLT/JSLE jumps";
    IsaV3 => "isa_v3", Since::new(5, 1), "ISA v3: 32-bit jumps (JMP32)";
    IsaV4 => "isa_v4", Since::new(6, 6), "ISA v4: sign-extending moves and loads, bswap, gotol, sdiv";
    Btf => "btf", Since::new(4, 18), "BTF can be loaded";
    BtfFunc => "btf_func", Since::new(5, 0), "BTF kinds FUNC and FUNC_PROTO";
    BtfDatasec => "btf_datasec", Since::new(5, 2), "BTF kinds VAR and DATASEC";
    BtfFloat => "btf_float", Since::new(5, 13), "BTF kind FLOAT";
    BtfDeclTag => "btf_decl_tag", Since::new(5, 16), "BTF kind DECL_TAG";
    BtfTypeTag => "btf_type_tag", Since::new(5, 17), "BTF kind TYPE_TAG";
    BtfEnum64 => "btf_enum64", Since::new(6, 0), "BTF kind ENUM64";
    GlobalData => "global_data", Since::new(5, 2), "direct map-value access (global variables)";
    RodataFrozen => "rodata_frozen", Since::new(5, 2), "read-only, frozen maps (const volatile .rodata rewritten before load)";
    RingBuffer => "ringbuf", Since::new(5, 8), "BPF ring buffer maps";
    BpfCookie => "bpf_cookie", Since::new(5, 15), "bpf_get_attach_cookie in kprobes";
    LinkCgroup => "link_cgroup", Since::new(5, 7), "bpf_link for cgroup programs";
    LinkPerfEvent => "link_perf_event", Since::new(5, 15), "bpf_link for kprobe/uprobe/tracepoint perf events";
    LinkNetfilter => "link_netfilter", Since::new(6, 4), "bpf_link for netfilter programs";
    LinkTcx => "link_tcx", Since::new(6, 6), "tcx: bpf_link for tc programs";
    KprobeMulti => "kprobe_multi", Since::new(5, 18), "kprobe_multi links (many kprobes in one link)";
    UprobeMulti => "uprobe_multi", Since::new(6, 6), "uprobe_multi links";
    FentryBpfProg => "fentry_bpf_prog", Since::new(5, 5), "fentry/fexit attached to a BPF program (attach_prog_fd)";
}

impl std::str::FromStr for Misc {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.trim().to_ascii_lowercase();
        Misc::ALL
            .iter()
            .copied()
            .find(|m| m.name() == n)
            .ok_or_else(|| UnknownName {
                what: "feature",
                given: s.to_string(),
                suggestion: closest(&n, Misc::ALL.iter().map(|m| m.name())),
            })
    }
}

impl Serialize for Misc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Misc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

fn load_socket_filter(insns: &[aya_obj::generated::bpf_insn], what: &str) -> Support {
    let load = ProgLoad::new(ProgramType::SOCKET_FILTER.0, insns);
    load_and_classify(&load, what, &classify_prog_load).0
}

/// A BTF blob, with the BTF checker's log in the same load.
fn load_btf(b: &BtfBuilder, what: &str) -> Support {
    with_log(|log| match sys::btf_load(&b.build(), Some(log)) {
        Ok(_) => Support::supported(),
        Err(e) => {
            let mut s = classify_errno(Err(e.errno), what);
            if let Support::Unsupported { evidence, .. } = &mut s {
                evidence.verifier_line = crate::support::deciding_line(&e.log, &[]);
            }
            s
        }
    })
}

/// Loads a program, then tries to create a link with a deliberately invalid target:
/// `known` errnos come from past the point where the kernel accepted the link kind.
fn link_probe(
    prog_type: ProgramType,
    expected: Option<bpf_attach_type>,
    what: &str,
    create: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> Result<std::os::fd::OwnedFd, Errno>,
    known: &[i32],
) -> Support {
    let insns = insn::return_zero();
    let mut load = ProgLoad::new(prog_type.0, &insns);
    if let Some(a) = expected {
        load.expected_attach_type = a as u32;
    }
    let prog = match load_and_classify(
        &load,
        &format!("BPF_PROG_LOAD {prog_type}"),
        &classify_prog_load,
    ) {
        (_, Some(fd)) => fd,
        (Support::Unsupported { evidence, .. }, None) => {
            return Support::Unsupported {
                scope: Scope::Kernel,
                evidence: evidence.with_detail(format!(
                    "the {prog_type} program this link needs cannot be loaded"
                )),
            };
        }
        (other, None) => return other,
    };
    match create(prog.as_fd()) {
        Ok(_link) => Support::supported(),
        Err(e) if known.contains(&e.0) => Support::Supported {
            evidence: Some(Evidence::probe(what).with_errno(e).with_detail(
                "refused for the probe's invalid target, after the link kind was accepted",
            )),
        },
        Err(e) => classify_errno(Err(e), what),
    }
}

/// Probes one misc feature.
pub fn probe(p: &Prober<'_>, m: Misc) -> Support {
    use insn::*;
    match m {
        Misc::BoundedLoops => load_socket_filter(
            &[
                mov64_imm(R0, 10),
                alu64_imm(BPF_SUB, R0, 1),
                jmp_imm(BPF_JNE, R0, 0, -2),
                exit(),
            ],
            "socket_filter with a 10-iteration loop",
        ),
        Misc::LargeInsnLimit => {
            // One more than the old 4096-instruction limit.
            let mut insns = vec![mov64_imm(R0, 1); 4096];
            insns.push(exit());
            load_socket_filter(&insns, "socket_filter of 4097 instructions")
        }
        Misc::IsaV2 => load_socket_filter(
            &[
                mov64_imm(R0, 0),
                jmp_imm(BPF_JLT, R0, 0, 0),
                mov64_imm(R0, 1),
                exit(),
            ],
            "socket_filter with JLT",
        ),
        Misc::IsaV3 => load_socket_filter(
            &[
                mov64_imm(R0, 0),
                jmp32_imm(BPF_JLT, R0, 0, 0),
                mov64_imm(R0, 1),
                exit(),
            ],
            "socket_filter with JMP32 JLT",
        ),
        Misc::IsaV4 => load_socket_filter(
            &[mov64_imm(R0, 1), movsx8_reg(R0, R0), exit()],
            "socket_filter with MOVSX (r0 = (s8)r0)",
        ),
        Misc::Btf => {
            let mut b = BtfBuilder::new();
            b.int("int", 4);
            load_btf(&b, "BPF_BTF_LOAD int")
        }
        Misc::BtfFunc => {
            let mut b = BtfBuilder::new();
            let int = b.int("int", 4);
            let proto = b.func_proto(int, &[("x", int)]);
            b.func("f", proto);
            load_btf(&b, "BPF_BTF_LOAD func + func_proto")
        }
        Misc::BtfDatasec => {
            let mut b = BtfBuilder::new();
            let int = b.int("int", 4);
            let var = b.var("x", int);
            b.datasec(".data", 4, &[(var, 0, 4)]);
            load_btf(&b, "BPF_BTF_LOAD var + datasec")
        }
        Misc::BtfFloat => {
            let mut b = BtfBuilder::new();
            b.float("float", 4);
            load_btf(&b, "BPF_BTF_LOAD float")
        }
        Misc::BtfDeclTag => {
            let mut b = BtfBuilder::new();
            let int = b.int("int", 4);
            let var = b.var("x", int);
            b.decl_tag("tag", var);
            load_btf(&b, "BPF_BTF_LOAD decl_tag")
        }
        Misc::BtfTypeTag => {
            let mut b = BtfBuilder::new();
            let int = b.int("int", 4);
            let tag = b.type_tag("tag", int);
            b.ptr(tag);
            load_btf(&b, "BPF_BTF_LOAD type_tag")
        }
        Misc::BtfEnum64 => {
            let mut b = BtfBuilder::new();
            b.enum64("e", "v", 1 << 40);
            load_btf(&b, "BPF_BTF_LOAD enum64")
        }
        Misc::GlobalData | Misc::RodataFrozen => global_data(m == Misc::RodataFrozen),
        Misc::RingBuffer => crate::map_types::probe(MapType::RINGBUF),
        Misc::BpfCookie => helpers::probe(p, AttachContext::KPROBE, Helper::GET_ATTACH_COOKIE),
        Misc::LinkCgroup => link_probe(
            ProgramType(bpf_prog_type::BPF_PROG_TYPE_CGROUP_SKB as u32),
            Some(bpf_attach_type::BPF_CGROUP_INET_INGRESS),
            "BPF_LINK_CREATE cgroup_inet_ingress on cgroup fd -1",
            |prog| {
                sys::link_create(&LinkCreate {
                    prog,
                    target: -1,
                    attach_type: bpf_attach_type::BPF_CGROUP_INET_INGRESS,
                    flags: 0,
                })
            },
            &[libc::EBADF],
        ),
        Misc::LinkPerfEvent => link_probe(
            ProgramType::KPROBE,
            None,
            "BPF_LINK_CREATE perf_event on perf fd -1",
            |prog| {
                sys::link_create(&LinkCreate {
                    prog,
                    target: -1,
                    attach_type: bpf_attach_type::BPF_PERF_EVENT,
                    flags: 0,
                })
            },
            &[libc::EBADF],
        ),
        Misc::LinkNetfilter => link_probe(
            ProgramType(bpf_prog_type::BPF_PROG_TYPE_NETFILTER as u32),
            Some(bpf_attach_type::BPF_NETFILTER),
            "BPF_LINK_CREATE netfilter with protocol family 0",
            |prog| {
                sys::link_create(&LinkCreate {
                    prog,
                    target: 0,
                    attach_type: bpf_attach_type::BPF_NETFILTER,
                    flags: 0,
                })
            },
            &[libc::EAFNOSUPPORT],
        ),
        Misc::LinkTcx => link_probe(
            ProgramType::SCHED_CLS,
            Some(bpf_attach_type::BPF_TCX_INGRESS),
            "BPF_LINK_CREATE tcx_ingress on ifindex 0",
            |prog| {
                sys::link_create(&LinkCreate {
                    prog,
                    target: 0,
                    attach_type: bpf_attach_type::BPF_TCX_INGRESS,
                    flags: 0,
                })
            },
            &[libc::ENODEV],
        ),
        Misc::KprobeMulti => link_probe(
            ProgramType::KPROBE,
            Some(bpf_attach_type::BPF_TRACE_KPROBE_MULTI),
            "BPF_LINK_CREATE kprobe_multi on a symbol that does not exist",
            |prog| sys::link_create_kprobe_multi(prog, &[c"bpf_features_no_such_symbol"]),
            &[libc::ENOENT, libc::ESRCH],
        )
        .explain_eopnotsupp("the kernel is built without CONFIG_FPROBE, which kprobe_multi needs"),
        Misc::UprobeMulti => link_probe(
            ProgramType::KPROBE,
            Some(bpf_attach_type::BPF_TRACE_UPROBE_MULTI),
            "BPF_LINK_CREATE uprobe_multi on path \"/\"",
            |prog| {
                let root: &CStr = c"/";
                sys::link_create_uprobe_multi(prog, root, &[0])
            },
            &[libc::EBADF],
        )
        .explain_eopnotsupp("the kernel is built without CONFIG_UPROBES"),
        Misc::FentryBpfProg => fentry_bpf_prog(p),
    }
}

/// A tracing program loaded against a BPF program (attach_prog_fd).
fn fentry_bpf_prog(p: &Prober<'_>) -> Support {
    let setup: LoadSetup<'_> = match p.setup(AttachContext::FentryBpfProg) {
        Ok(s) => s,
        Err(s) => return s,
    };
    let insns = insn::return_zero();
    let what = format!("BPF_PROG_LOAD {}: r0 = 0; exit", setup.desc);
    // A feature probe: the setup is the question, so the verifier's refusal is the answer.
    load_and_classify(&setup.load(&insns), &what, &classify_prog_load).0
}

/// An array map read by a program through direct value access; for `frozen`, created
/// read-only for programs and frozen after one write — what `const volatile` globals
/// rewritten before load (aya's `override_global`) rely on.
fn global_data(frozen: bool) -> Support {
    let map = MapCreate {
        map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        map_flags: if frozen { BPF_F_RDONLY_PROG } else { 0 },
        ..Default::default()
    };
    let what = if frozen {
        "array map with BPF_F_RDONLY_PROG, written then BPF_MAP_FREEZE, read by a program"
    } else {
        "array map read by a program through BPF_PSEUDO_MAP_VALUE"
    };
    let fd = match sys::map_create(&map) {
        Ok(fd) => fd,
        Err(e) => return classify_errno(Err(e), what),
    };
    if frozen {
        let written =
            sys::map_update_elem(fd.as_fd(), &0u32.to_ne_bytes(), &42u64.to_ne_bytes(), 0)
                .and_then(|()| sys::map_freeze(fd.as_fd()));
        if let Err(e) = written {
            return classify_errno(Err(e), what);
        }
    }
    use std::os::fd::AsRawFd;
    let ld = insn::ld_map_value(insn::R1, fd.as_raw_fd(), 0);
    let insns = [ld[0], ld[1], insn::mov64_imm(insn::R0, 0), insn::exit()];
    load_socket_filter(&insns, what)
}

trait ExplainEopnotsupp {
    fn explain_eopnotsupp(self, why: &str) -> Self;
}

impl ExplainEopnotsupp for Support {
    /// EOPNOTSUPP from a link that the kernel knows means a missing config option.
    fn explain_eopnotsupp(mut self, why: &str) -> Self {
        if let Support::Unsupported { evidence, .. } = &mut self
            && evidence.errno == Some(libc::EOPNOTSUPP)
        {
            evidence.detail = Some(why.to_string());
        }
        self
    }
}
