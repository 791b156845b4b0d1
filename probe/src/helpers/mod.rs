//! Helpers per program type and attach context: may this program, set up this way, call
//! this helper?
//!
//! The probe is `call <id>; r0 = 0; exit` (see [`insn::call_helper`]) loaded with the
//! context's setup. Errno first: success or EACCES (arguments rejected after the helper was
//! accepted) mean callable; EINVAL/ENOTSUPP are explained by the verifier's line, from
//! the log of the same load. Meaning of the answers: see [`crate::support`].
use crate::{
    conditions::{LockdownMode, lockdown_refuses},
    insn,
    key::FeatureKey,
    names::{AttachContext, Helper, Misc, ProgramType},
    prober::{LoadSetup, Prober, load_and_classify},
    support::{Answer, Evidence, Scope, Support, classify_helper_load},
};

/// How a skipped noisy helper's answer starts; such answers are never cached.
pub const SKIPPED_NOISY: &str = "not probed by default";

/// The question whose answer a context's helper probes depend on: its program type, or
/// the attach context's own feature.
pub fn base_key(ctx: AttachContext) -> FeatureKey {
    match ctx {
        AttachContext::Default(t) => FeatureKey::ProgType(t),
        AttachContext::FexitKernelFn => FeatureKey::ProgType(ProgramType::TRACING),
        AttachContext::KprobeMulti => FeatureKey::Misc(Misc::KprobeMulti),
        AttachContext::FentryBpfProg => FeatureKey::Misc(Misc::FentryBpfProg),
        AttachContext::FentryKprobeProg => FeatureKey::Misc(Misc::FentryKprobeProg),
        AttachContext::FentrySleepable => FeatureKey::Misc(Misc::FentrySleepable),
        AttachContext::LsmSleepable => FeatureKey::Misc(Misc::LsmSleepable),
    }
}

/// What a (context, helper) answer depends on, answered before: whether the kernel has the
/// helper at all, and the context's base answer ([`base_key`]).
pub struct Deps {
    /// `helper:NAME` without a context: does the kernel have the helper at all.
    pub kernel: Answer,
    /// The program type's or attach context's own answer: a refused context refuses its helpers.
    pub base: Answer,
}

/// The caller's choices and conditions that decide whether a probe is loaded at all.
pub struct Rules<'a> {
    /// Probe the [`NOISY`] helpers too.
    pub full: bool,
    /// The lockdown mode, `None` when unknown; refused helpers are answered without a load.
    pub lockdown: Option<LockdownMode>,
    /// How the lockdown mode was learned, quoted in the answers it decides.
    pub lockdown_source: &'a str,
}

/// May a program in `ctx` call `h`? Every helper rule, in order: a helper the kernel's BTF
/// lacks is loaded once for the verifier's words; struct_ops calls are not probed; lockdown
/// refusals and noisy helpers are answered without loading; a refused or unknown context
/// carries its answer over; else one load.
pub fn answer(
    p: &Prober<'_>,
    ctx: AttachContext,
    h: Helper,
    deps: &Deps,
    rules: &Rules<'_>,
) -> Answer {
    // A helper the kernel's BTF does not list: one load for the verifier's own words
    // (`invalid func unknown#173`); the BTF answer stands where nothing can be loaded.
    if deps.kernel.support.is_unsupported() {
        if let Ok(setup) = p.setup(ctx) {
            match probe_with(&setup, h) {
                Support::Unsupported { scope, evidence } => {
                    let evidence = match &deps.kernel.support {
                        Support::Unsupported {
                            evidence:
                                Evidence {
                                    detail: Some(d), ..
                                },
                            ..
                        } => evidence.with_detail(d.clone()),
                        _ => evidence,
                    };
                    return Answer::probed(Support::Unsupported { scope, evidence });
                }
                s @ Support::Supported { .. } => return Answer::probed(s),
                Support::Unknown { .. } => {}
            }
        }
        return deps.kernel.clone();
    }
    if ctx == AttachContext::Default(ProgramType::STRUCT_OPS) {
        return Answer::probed(Support::unknown(
            "struct_ops programs only load against a kernel struct_ops type and its map; \
             helper calls in them are not probed",
            None,
        ));
    }
    if let Some(s) = refused_by_lockdown(rules.lockdown, rules.lockdown_source, h) {
        return Answer::probed(s);
    }
    if !rules.full && NOISY.contains(&h) {
        return Answer::probed(Support::unknown(
            format!(
                "{SKIPPED_NOISY}: loading a program that calls it writes to the kernel log \
                 (use --full, or Options::full)"
            ),
            None,
        ));
    }
    if let Some(a) = carried_over(ctx, &deps.base) {
        return a;
    }
    Answer::probed(maybe_lockdown(rules.lockdown, h, probe(p, ctx, h)))
}

/// A context that is itself refused or unknown answers for each of its helpers.
fn carried_over(ctx: AttachContext, base: &Answer) -> Option<Answer> {
    let is_extra = !matches!(ctx, AttachContext::Default(_));
    let what = if is_extra {
        "attach context"
    } else {
        "program type"
    };
    match &base.support {
        Support::Supported { .. } => None,
        Support::Unsupported { evidence, .. } => Some(Answer {
            support: Support::Unsupported {
                scope: if is_extra {
                    Scope::Context
                } else {
                    Scope::ProgramType
                },
                evidence: evidence
                    .clone()
                    .with_detail(format!("the {what} {} itself is not supported", ctx.name())),
            },
            ..base.clone()
        }),
        Support::Unknown { reason, evidence } => Some(Answer {
            support: Support::Unknown {
                reason: format!("the {what} {} could not be probed: {reason}", ctx.name()),
                evidence: evidence.clone(),
            },
            ..base.clone()
        }),
    }
}

/// Helpers whose mere load writes to the kernel log (bpf_trace_printk's and
/// bpf_trace_vprintk's "trace_printk() being used" banner, bpf_probe_write_user's warning):
/// skipped unless asked for (`--full`), so a report leaves dmesg alone.
pub const NOISY: &[Helper] = &[
    Helper::TRACE_PRINTK,
    Helper::TRACE_VPRINTK,
    Helper::PROBE_WRITE_USER,
];

pub use crate::conditions::REFUSED_BY_LOCKDOWN;

/// The answer for a helper that the active lockdown level refuses, without loading it: the
/// load would only write a `Lockdown: …` line to the kernel log and earn a verifier line
/// that reads like "not supported" (from 5.14 the prototype is withheld at load time;
/// before, the helper fails at run time with -EPERM).
pub fn refused_by_lockdown(mode: Option<LockdownMode>, source: &str, h: Helper) -> Option<Support> {
    let (level, what) = lockdown_refuses(h)?;
    let mode = mode?;
    (mode >= level).then(|| {
        Support::unknown(
            format!(
                "{REFUSED_BY_LOCKDOWN}{mode}: the kernel has {h}, and its lockdown policy \
                 refuses it ({what} is restricted; lockdown from {source}); not probed, so \
                 the kernel log stays unchanged"
            ),
            None,
        )
    })
}

/// A refusal of a lockdown-guarded helper while the lockdown mode could not be read: the
/// verifier's "unknown func" may be lockdown's doing, so it is not "not supported".
pub fn maybe_lockdown(mode: Option<LockdownMode>, h: Helper, s: Support) -> Support {
    match (mode, lockdown_refuses(h), s) {
        (None, Some((level, what)), Support::Unsupported { scope, evidence })
            if scope != crate::support::Scope::Kernel =>
        {
            Support::unknown(
                format!(
                    "refused, possibly by lockdown (it restricts {what} from \
                     lockdown={level}), whose mode could not be read"
                ),
                Some(evidence),
            )
        }
        (_, _, s) => s,
    }
}

/// Probes one (context, helper) pair with a ready setup.
pub fn probe_with(setup: &LoadSetup<'_>, h: Helper) -> Support {
    let insns = insn::call_helper(h.id());
    let what = format!(
        "BPF_PROG_LOAD {}: call {}#{}; r0 = 0; exit",
        setup.desc,
        h.name(),
        h.id()
    );
    let load = setup.load(&insns);
    // One load, with the log: a log costs the verifier almost nothing next to the load
    // itself (see the bench), while a second load for a negative's evidence costs a
    // whole load. EACCES and success need no log and are decided by the errno alone.
    load_and_classify(&load, &what, &|r, w| classify_helper_load(r, w, h.id())).0
}

/// Probes one (context, helper) pair.
pub fn probe(p: &Prober<'_>, ctx: AttachContext, h: Helper) -> Support {
    match p.setup(ctx) {
        Ok(setup) => probe_with(&setup, h),
        Err(s) => s,
    }
}

#[cfg(test)]
mod tests;
