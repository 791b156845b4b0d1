//! Miscellaneous features: verifier and ISA capabilities, BTF kinds, global data, links,
//! multi-attach, and the attach contexts tracers need. One entry per feature, each with the
//! release it appeared in; meaning of the answers: see [`crate::support`].
use std::{ffi::CStr, os::fd::AsFd};

use aya_obj::generated::{
    BPF_F_RDONLY_PROG, BPF_JLT, BPF_JNE, BPF_SUB, bpf_attach_type, bpf_map_type, bpf_prog_type,
};

pub use crate::names::Misc;
use crate::{
    btf::BtfBuilder,
    helpers, insn,
    names::{AttachContext, Helper, MapType, ProgramType},
    prober::{LoadSetup, Prober, load_and_classify, with_log},
    support::{Evidence, Scope, Support, classify_errno, classify_prog_load},
    sys::{self, Errno, LinkCreate, MapCreate, ProgLoad},
};

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
        Misc::FentryBpfProg => context_loads(p, AttachContext::FentryBpfProg),
        Misc::FentryKprobeProg => context_loads(p, AttachContext::FentryKprobeProg),
        Misc::FentrySleepable => context_loads(p, AttachContext::FentrySleepable),
        Misc::LsmSleepable => context_loads(p, AttachContext::LsmSleepable),
    }
}

/// `r0 = 0; exit` loaded in an attach context's setup (a tracing program on a BPF
/// program, a sleepable one): the setup is the question.
fn context_loads(p: &Prober<'_>, ctx: AttachContext) -> Support {
    let setup: LoadSetup<'_> = match p.setup(ctx) {
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
