//! Program types: can this kernel load a program of each type?
//!
//! The probe is `r0 = 0; exit` with the setup each type needs ([`Prober::setup`]): an
//! expected attach type for the cgroup_sock_addr/cgroup_sockopt/sk_lookup/netfilter
//! families, a vmlinux function for tracing and lsm, a BPF program to extend for ext.
//! Meaning of the answers: see [`crate::support`].
use crate::{
    insn,
    names::{AttachContext, ProgramType},
    prober::{Prober, load_and_classify},
    support::{Evidence, Scope, Support, classify_prog_load, classify_type_load},
    sys::{ENOTSUPP, Errno, LoadError},
};

/// Probes one program type (since: see [`crate::names::PROG_TYPES`]).
pub fn probe(p: &Prober<'_>, t: ProgramType) -> Support {
    if t == ProgramType::STRUCT_OPS {
        return probe_struct_ops();
    }
    let setup = match p.setup(AttachContext::Default(t)) {
        Ok(s) => s,
        Err(s) => return s,
    };
    let insns = insn::return_zero();
    let what = format!("BPF_PROG_LOAD {}: r0 = 0; exit", setup.desc);
    load_and_classify(&setup.load(&insns), &what, &classify_type_load).0
}

/// struct_ops programs need a kernel struct and a map to run; like libbpf, we load one with
/// no struct (attach_btf_id 0): a kernel that knows the type answers ENOTSUPP ("attach_btf_id
/// 0 is not a supported struct"), one that does not answers EINVAL (5.6).
fn probe_struct_ops() -> Support {
    let insns = insn::return_zero();
    let load = crate::sys::ProgLoad::new(ProgramType::STRUCT_OPS.0, &insns);
    let what = "BPF_PROG_LOAD struct_ops with attach_btf_id 0";
    load_and_classify(&load, what, &classify_struct_ops).0
}

fn classify_struct_ops(r: Result<(), &LoadError>, what: &str) -> Support {
    match r {
        Err(e) if e.errno == Errno(ENOTSUPP) => Support::Supported {
            evidence: Some(Evidence::probe(what).with_errno(e.errno).with_detail(
                "the kernel looked for a struct_ops type, so it knows struct_ops programs",
            )),
        },
        Err(e) if e.errno.0 == libc::EINVAL => Support::Unsupported {
            scope: Scope::Kernel,
            evidence: Evidence::probe(what).with_errno(e.errno),
        },
        r => classify_prog_load(r, what),
    }
}
