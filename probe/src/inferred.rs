//! Answers from the version table, for when probing is impossible (no CAP_BPF or
//! CAP_SYS_ADMIN and unprivileged BPF disabled). Every answer here has origin `inferred`
//! and says why; per-type helper availability cannot be inferred from a version, except
//! for the few context-dependent helpers tracers ask about, listed below.
use crate::{
    btf::KernelBtf,
    kernel::KernelRelease,
    names::{AttachContext, Helper, Since},
    support::{Answer, Evidence, Origin, Scope, Support},
};

/// Helpers whose availability in a context has a known first release.
pub const CONTEXT_SINCE: &[(Helper, AttachContext, Since)] = &[
    (Helper::GET_FUNC_IP, AttachContext::KPROBE, Since(5, 15)),
    (
        Helper::GET_FUNC_IP,
        AttachContext::FENTRY_KERNEL_FN,
        Since(5, 15),
    ),
    (
        Helper::GET_FUNC_IP,
        AttachContext::FexitKernelFn,
        Since(5, 15),
    ),
    (
        Helper::GET_FUNC_IP,
        AttachContext::KprobeMulti,
        Since(5, 18),
    ),
    (
        Helper::GET_FUNC_IP,
        AttachContext::FentryBpfProg,
        Since(5, 18),
    ),
    (
        Helper::GET_ATTACH_COOKIE,
        AttachContext::KPROBE,
        Since(5, 15),
    ),
];

/// Compares `since` with the running release.
pub fn by_version(
    since: Option<Since>,
    release: Option<&KernelRelease>,
    why: &str,
    what: &str,
) -> Answer {
    let support = match (since, release) {
        (Some(s), Some(r)) if r.at_least(s.0, s.1) => Support::supported(),
        (Some(s), Some(r)) => Support::Unsupported {
            scope: Scope::Kernel,
            evidence: Evidence::probe(what).with_detail(format!(
                "kernel {} is older than {s}, where it appeared",
                r.version
            )),
        },
        (None, _) => Support::unknown("no release is known for it", None),
        (_, None) => Support::unknown("the kernel release is unknown", None),
    };
    Answer::with_origin(support, Origin::Inferred, why)
}

/// A helper in a context, inferred.
pub fn helper(
    ctx: AttachContext,
    h: Helper,
    release: Option<&KernelRelease>,
    btf: Option<&KernelBtf>,
    why: &str,
) -> Answer {
    if let Some((_, _, since)) = CONTEXT_SINCE
        .iter()
        .find(|(hh, c, _)| *hh == h && *c == ctx)
    {
        return by_version(
            Some(*since),
            release,
            why,
            &format!("{} in {}", h.name(), ctx.name()),
        );
    }
    let known = match btf.and_then(|b| b.enum_members("bpf_func_id")) {
        Some(_) => Some(
            btf.and_then(|b| b.enum_value("bpf_func_id", &format!("BPF_FUNC_{}", h.short_name())))
                .is_some(),
        ),
        None => release.zip(h.since()).map(|(r, s)| r.at_least(s.0, s.1)),
    };
    let support = match known {
        Some(false) => Support::Unsupported {
            scope: Scope::Kernel,
            evidence: Evidence::probe(format!("{} in the kernel's helper list", h.name()))
                .with_detail("this kernel does not have the helper"),
        },
        _ => Support::unknown(
            "whether this program type may call it cannot be known without loading a program",
            None,
        ),
    };
    Answer::with_origin(support, Origin::Inferred, why)
}
