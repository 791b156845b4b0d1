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
    names::{AttachContext, Helper},
    prober::{LoadSetup, Prober, with_log},
    support::{Evidence, Support, classify_helper_load},
    sys,
};

/// Helpers whose mere load writes to the kernel log (bpf_trace_printk's and
/// bpf_trace_vprintk's "trace_printk() being used" banner, bpf_probe_write_user's warning):
/// skipped unless asked for (`--full`), so a report leaves dmesg alone.
pub const NOISY: &[Helper] = &[
    Helper::TRACE_PRINTK,
    Helper::TRACE_VPRINTK,
    Helper::PROBE_WRITE_USER,
];

/// How the reason of an answer that lockdown decided starts.
pub const REFUSED_BY_LOCKDOWN: &str = "refused by lockdown=";

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
    with_log(|log| match sys::prog_load(&load, Some(log)) {
        Ok(_) => Support::supported(),
        Err(e) if e.errno.0 == libc::EACCES => {
            Support::Supported {
                evidence: Some(Evidence::probe(what).with_errno(e.errno).with_detail(
                    "helper accepted; only the probe's unset arguments were rejected",
                )),
            }
        }
        Err(e) => classify_helper_load(Err(&e), &what),
    })
}

/// Probes one (context, helper) pair.
pub fn probe(p: &Prober<'_>, ctx: AttachContext, h: Helper) -> Support {
    match p.setup(ctx) {
        Ok(setup) => probe_with(&setup, h),
        Err(s) => s,
    }
}
