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
    misc::Misc,
    names::{AttachContext, Helper, ProgramType},
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
    }
}

/// What a (context, helper) answer depends on, answered before: whether the kernel has the
/// helper at all, and the context's base answer ([`base_key`]).
pub struct Deps {
    pub kernel: Answer,
    pub base: Answer,
}

/// The caller's choices and conditions that decide whether a probe is loaded at all.
pub struct Rules<'a> {
    /// Probe the [`NOISY`] helpers too.
    pub full: bool,
    pub lockdown: Option<LockdownMode>,
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
mod tests {
    use std::{cell::Cell, rc::Rc};

    use super::*;
    use crate::{
        Features, Options,
        btf::KernelBtf,
        kernel::{Privileges, SystemInfo},
        source::FeatureSource,
        support::Origin,
        sys::{ENOTSUPP, Errno, fake},
    };

    /// Verifier lines recorded from the matrix kernels (Debian 5.10, 6.1, 6.12), each with
    /// the errno it came with, the helper probed and the answer it must give.
    const RECORDED: &[(&str, i32, &str, u32, &str)] = &[
        (
            "5.10",
            libc::EINVAL,
            "0: (85) call bpf_bind#64\nunknown func bpf_bind#64\n",
            64,
            "program_type",
        ),
        (
            "5.10",
            libc::EINVAL,
            "0: (85) call unknown#173\ninvalid func unknown#173\n",
            173,
            "kernel",
        ),
        (
            "5.10",
            libc::EINVAL,
            "0: (85) call bpf_d_path#147\nhelper call is not allowed in probe\n",
            147,
            "context",
        ),
        (
            "6.1",
            libc::EINVAL,
            "0: (85) call bpf_copy_from_user#148\nhelper call might sleep in a non-sleepable prog\n",
            148,
            "context",
        ),
        (
            "6.1",
            ENOTSUPP,
            "0: (85) call bpf_get_func_ip#173\nfunc bpf_get_func_ip#173 not supported for program type 5\n",
            173,
            "context",
        ),
        (
            "6.12",
            libc::EINVAL,
            "0: R1=ctx() R10=fp0\n0: (85) call bpf_probe_read_kernel#113\nprogram of this type cannot use helper bpf_probe_read_kernel#113\n",
            113,
            "program_type",
        ),
        (
            "6.12",
            libc::EACCES,
            "0: (85) call bpf_map_lookup_elem#1\nR1 type=ctx expected=map_ptr\n",
            1,
            "supported",
        ),
        // A line about another helper decides nothing about ours.
        (
            "any",
            libc::EINVAL,
            "unknown func bpf_bind#64\n",
            6,
            "unknown",
        ),
        (
            "any",
            libc::EINVAL,
            "unknown func bpf_bind#640\n",
            64,
            "unknown",
        ),
        ("any", libc::EINVAL, "R0 !read_ok\n", 1, "unknown"),
        ("host", libc::EPERM, "", 173, "unknown"),
    ];

    fn verdict(s: &Support) -> &'static str {
        match s {
            Support::Supported { .. } => "supported",
            Support::Unsupported {
                scope: Scope::Kernel,
                ..
            } => "kernel",
            Support::Unsupported {
                scope: Scope::ProgramType,
                ..
            } => "program_type",
            Support::Unsupported {
                scope: Scope::Context,
                ..
            } => "context",
            Support::Unknown { .. } => "unknown",
        }
    }

    #[test]
    fn recorded_verifier_lines_through_the_door() {
        for (kernel, errno, log, id, want) in RECORDED {
            let (errno, log) = (*errno, *log);
            let _door = fake::replace(move |call| {
                assert_eq!(call.insns().len(), 3, "call; r0 = 0; exit");
                call.write_log(log);
                Err(Errno(errno))
            });
            let s = probe_with(&LoadSetup::plain(ProgramType::KPROBE), Helper(*id));
            assert_eq!(verdict(&s), *want, "{kernel}: {log:?} → {s}");
            if *want != "unknown" && *want != "supported" {
                let Support::Unsupported { evidence, .. } = &s else {
                    unreachable!()
                };
                let line = evidence.verifier_line.as_deref().unwrap_or_default();
                assert!(
                    line.contains(&format!("#{id}")) || !line.contains('#'),
                    "{line}"
                );
            }
        }
    }

    fn system(lockdown: &str) -> SystemInfo {
        SystemInfo {
            release: crate::KernelRelease::parse("6.12.0").ok(),
            privileges: Privileges::from_cap_eff(0, u64::MAX),
            lockdown: Some(lockdown.into()),
            lockdown_source: Some("test".into()),
            ..Default::default()
        }
    }

    fn btf() -> KernelBtf {
        let helpers: Vec<(String, i64)> = (1..=211).map(|i| (format!("BPF_FUNC_{i}"), i)).collect();
        let helpers: Vec<(&str, i64)> = helpers.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        KernelBtf::synthetic(&[("bpf_func_id", &helpers)], &[])
    }

    /// Counts the helper-calling loads (three instructions) the door sees.
    fn counting_door(type_errno: Option<i32>) -> (fake::Guard, Rc<Cell<usize>>) {
        let helper_loads = Rc::new(Cell::new(0));
        let seen = helper_loads.clone();
        let g = fake::replace(move |call| {
            assert_eq!(call.cmd, aya_obj::generated::bpf_cmd::BPF_PROG_LOAD);
            assert_eq!(call.prog_type(), ProgramType::KPROBE.0);
            if call.insns().len() == 3 {
                seen.set(seen.get() + 1);
                return fake::fd();
            }
            match type_errno {
                Some(e) => Err(Errno(e)),
                None => fake::fd(),
            }
        });
        (g, helper_loads)
    }

    #[test]
    fn a_refused_type_answers_for_its_helpers_without_a_load() {
        let (_door, loads) = counting_door(Some(libc::EINVAL));
        let f = Features::on(system("none"), Some(btf()), Options::default());
        let a = f.helper(AttachContext::KPROBE, Helper::GET_CURRENT_PID_TGID);
        match &a.support {
            Support::Unsupported { scope, evidence } => {
                assert_eq!(*scope, Scope::ProgramType);
                assert!(
                    evidence
                        .detail
                        .as_deref()
                        .unwrap_or_default()
                        .contains("itself")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(loads.get(), 0, "no helper load for a refused type");
    }

    #[test]
    fn an_unknown_type_makes_its_helpers_unknown_with_the_errno() {
        let (_door, loads) = counting_door(Some(libc::EPERM));
        let f = Features::on(system("none"), Some(btf()), Options::default());
        let a = f.helper(AttachContext::KPROBE, Helper::GET_CURRENT_PID_TGID);
        assert!(a.support.is_unknown(), "{a}");
        assert!(
            a.to_string().contains("could not be probed") && a.is_policy_refusal(),
            "{a}"
        );
        assert_eq!(loads.get(), 0);
    }

    #[test]
    fn a_supported_type_loads_the_helper_once_and_caches_it() {
        let (_door, loads) = counting_door(None);
        let f = Features::on(system("none"), Some(btf()), Options::default());
        for _ in 0..3 {
            let a = f.helper(AttachContext::KPROBE, Helper::GET_CURRENT_PID_TGID);
            assert!(a.is_supported(), "{a}");
            assert_eq!(a.origin, Origin::Probed);
        }
        assert_eq!(loads.get(), 1);
    }

    #[test]
    fn lockdown_and_noisy_helpers_are_answered_without_a_load() {
        let (_door, loads) = counting_door(None);
        let f = Features::on(system("confidentiality"), Some(btf()), Options::default());
        let a = f.helper(AttachContext::KPROBE, Helper::PROBE_READ_KERNEL);
        assert!(a.support.is_unknown(), "{a}");
        assert!(
            a.to_string()
                .contains("refused by lockdown=confidentiality"),
            "{a}"
        );
        assert!(a.is_policy_refusal());
        let a = f.helper(AttachContext::KPROBE, Helper::TRACE_PRINTK);
        assert!(a.to_string().contains(SKIPPED_NOISY), "{a}");
        assert_eq!(loads.get(), 0);
        // Integrity does not refuse reading kernel memory: that one is loaded.
        let f = Features::on(system("integrity"), Some(btf()), Options::default());
        assert!(
            f.helper(AttachContext::KPROBE, Helper::PROBE_READ_KERNEL)
                .is_supported()
        );
        assert_eq!(loads.get(), 1);
    }

    #[test]
    fn an_unreadable_lockdown_mode_makes_a_guarded_refusal_unknown() {
        let line = "program of this type cannot use helper bpf_probe_read_kernel#113";
        let refused = Support::Unsupported {
            scope: Scope::ProgramType,
            evidence: Evidence::probe("p").with_line(Some(line.into())),
        };
        let s = maybe_lockdown(None, Helper::PROBE_READ_KERNEL, refused.clone());
        assert!(
            s.is_unknown() && s.to_string().contains("possibly by lockdown"),
            "{s}"
        );
        assert_eq!(
            maybe_lockdown(
                Some(LockdownMode::None),
                Helper::PROBE_READ_KERNEL,
                refused.clone()
            ),
            refused
        );
        assert_eq!(
            maybe_lockdown(None, Helper::GET_FUNC_IP, refused.clone()),
            refused
        );
    }
}
