//! Strategy choices against kernels described by their probe answers (no root needed).
use bpf_features::{
    func_ip::{FuncIp, FuncIpStrategy},
    needs::{EventOutput, EventOutputStrategy, ManyKprobes, ManyKprobesStrategy},
    strategy::{StrategyError, choose},
};
use probe::{
    Answer, AttachContext, Evidence, FeatureSource, Helper, MapType, Misc, ProgramType, Scope,
    Support, SystemInfo,
};

/// A kernel described by the answers that differ from "supported".
struct Kernel {
    system: SystemInfo,
    func_ip_in_bpf_prog: Support,
    kprobe_multi: bool,
    ringbuf: bool,
}

fn unsupported(scope: Scope, line: &str) -> Support {
    Support::Unsupported {
        scope,
        evidence: Evidence::probe("test").with_line(Some(line.to_string())),
    }
}

/// A root process on a kernel that shows it addresses (kptr_restrict 0, CAP_SYSLOG).
fn root_system(kptr_restrict: u8) -> SystemInfo {
    let mut s = SystemInfo::default();
    s.sysctls
        .insert("kernel.kptr_restrict".into(), kptr_restrict.to_string());
    s.sysctls
        .insert("kernel.perf_event_paranoid".into(), "2".into());
    s.privileges = probe::kernel::Privileges::from_cap_eff(0, u64::MAX);
    s
}

impl Kernel {
    fn v5_10() -> Self {
        Kernel {
            system: root_system(0),
            func_ip_in_bpf_prog: unsupported(Scope::Kernel, "invalid func unknown#173"),
            kprobe_multi: false,
            ringbuf: true,
        }
    }
    fn v5_15() -> Self {
        Kernel {
            func_ip_in_bpf_prog: unsupported(
                Scope::Context,
                "func bpf_get_func_ip#173 not supported for program type 3",
            ),
            ..Self::v5_10()
        }
    }
    fn v6_1() -> Self {
        Kernel {
            func_ip_in_bpf_prog: Support::supported(),
            kprobe_multi: true,
            ..Self::v5_10()
        }
    }
    fn eperm() -> Self {
        Kernel {
            func_ip_in_bpf_prog: Support::unknown("EPERM", None),
            ..Self::v5_10()
        }
    }
}

fn yes_no(b: bool) -> Answer {
    Answer::probed(if b {
        Support::supported()
    } else {
        unsupported(Scope::Kernel, "no")
    })
}

impl FeatureSource for Kernel {
    fn system(&self) -> &SystemInfo {
        &self.system
    }
    fn program_type(&self, _: ProgramType) -> Answer {
        yes_no(true)
    }
    fn map_type(&self, t: MapType) -> Answer {
        yes_no(t != MapType::RINGBUF || self.ringbuf)
    }
    fn helper(&self, ctx: AttachContext, h: Helper) -> Answer {
        if ctx == AttachContext::FentryBpfProg && h == Helper::GET_FUNC_IP {
            return Answer::probed(self.func_ip_in_bpf_prog.clone());
        }
        yes_no(true)
    }
    fn kernel_has_helper(&self, _: Helper) -> Answer {
        yes_no(true)
    }
    fn misc(&self, m: Misc) -> Answer {
        yes_no(m != Misc::KprobeMulti || self.kprobe_multi)
    }
}

#[test]
fn func_ip_follows_the_target_type() {
    // 5.15-5.17: fentry on a kprobe program is verified as the kprobe, which may call
    // bpf_get_func_ip; on a tc program it is refused (the modelled refusal).
    use bpf_features::func_ip::choose_for;
    let k = Kernel::v5_15();
    let kprobe = choose_for(&k, ProgramType::KPROBE, None).unwrap();
    assert_eq!(kprobe.strategy, FuncIpStrategy::Helper, "{}", kprobe.why);
    assert!(kprobe.why.contains("kprobe BPF program"), "{}", kprobe.why);
    let tc = choose_for(&k, ProgramType::SCHED_CLS, None).unwrap();
    assert_eq!(tc.strategy, FuncIpStrategy::RewriteConstant, "{}", tc.why);
    assert!(choose_for(&k, ProgramType::SCHED_CLS, Some("helper")).is_err());
}

#[test]
fn hidden_addresses_make_the_constant_rewrite_unrunnable() {
    // kptr_restrict=2 hides addresses from root too: on 5.10 nothing can run, and the
    // reason names the sysctl (issue 8); where the helper runs, it is chosen.
    let hidden = Kernel {
        system: root_system(2),
        ..Kernel::v5_10()
    };
    let e = choose::<FuncIp>(&hidden, None).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, StrategyError::NoPath { .. }), "{text}");
    // The helper was refused by an answer; hidden addresses are no answer, only words.
    let StrategyError::NoPath { answers, .. } = &e else {
        unreachable!()
    };
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(text.contains("kernel.kptr_restrict = 2"), "{text}");
    assert!(!text.contains("Run as root"), "{text}");
    let e = choose::<FuncIp>(&hidden, Some("rewrite_constant")).unwrap_err();
    assert!(matches!(e, StrategyError::ForcedNotRunnable { .. }), "{e}");
    let c = choose::<FuncIp>(
        &Kernel {
            system: root_system(2),
            ..Kernel::v6_1()
        },
        None,
    )
    .unwrap();
    assert_eq!(c.strategy, FuncIpStrategy::Helper);
    // kptr_restrict=1 without CAP_SYSLOG: hidden too, and the fix is the capability.
    let mut nobody = root_system(1);
    nobody.privileges = probe::kernel::Privileges::from_cap_eff(65534, 0);
    let e = choose::<FuncIp>(
        &Kernel {
            system: nobody,
            ..Kernel::v5_10()
        },
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("CAP_SYSLOG"), "{e}");
}

#[test]
fn func_ip_follows_the_attach_context_not_the_helpers_existence() {
    let c = choose::<FuncIp>(&Kernel::v5_10(), None).unwrap();
    assert_eq!(c.strategy, FuncIpStrategy::RewriteConstant);
    assert!(c.why.contains("invalid func unknown#173"), "{}", c.why);

    // pwru's bug: the kernel knows the helper, yet this context refuses it.
    let k = Kernel::v5_15();
    assert!(k.kernel_has_helper(Helper::GET_FUNC_IP).is_supported());
    let c = choose::<FuncIp>(&k, None).unwrap();
    assert_eq!(c.strategy, FuncIpStrategy::RewriteConstant);
    assert!(
        c.why.contains("not supported for program type 3"),
        "{}",
        c.why
    );

    let c = choose::<FuncIp>(&Kernel::v6_1(), None).unwrap();
    assert_eq!(c.strategy, FuncIpStrategy::Helper);
    assert!(!c.forced);

    // Unknown (EPERM) is not a reason to use the helper.
    assert_eq!(
        choose::<FuncIp>(&Kernel::eperm(), None).unwrap().strategy,
        FuncIpStrategy::RewriteConstant
    );
}

#[test]
fn forcing_a_strategy() {
    let c = choose::<FuncIp>(&Kernel::v6_1(), Some("rewrite_constant")).unwrap();
    assert_eq!(c.strategy, FuncIpStrategy::RewriteConstant);
    assert!(c.forced && c.why.starts_with("forced (API)"));
    match choose::<FuncIp>(&Kernel::v5_10(), Some("helper")) {
        Err(StrategyError::ForcedNotRunnable {
            strategy,
            why,
            answers,
            ..
        }) => {
            assert_eq!(strategy, "helper");
            assert!(why.contains("invalid func unknown#173"), "{why}");
            // The refusal carries the answer itself: a caller reads its status, not prose.
            assert_eq!(answers.len(), 1, "{answers:?}");
            assert!(!answers[0].is_supported());
            assert!(
                answers[0].to_string().starts_with("not supported"),
                "{}",
                answers[0]
            );
        }
        other => panic!("{other:?}"),
    }
    match choose::<FuncIp>(&Kernel::v6_1(), Some("magic")) {
        Err(e @ StrategyError::UnknownStrategy { .. }) => {
            assert!(
                e.to_string().contains("valid: helper, rewrite_constant"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_needs_share_the_mechanism() {
    assert_eq!(
        choose::<ManyKprobes>(&Kernel::v5_10(), None)
            .unwrap()
            .strategy,
        ManyKprobesStrategy::KprobeLoop
    );
    assert_eq!(
        choose::<ManyKprobes>(&Kernel::v6_1(), None)
            .unwrap()
            .strategy,
        ManyKprobesStrategy::KprobeMulti
    );
    let old = Kernel {
        ringbuf: false,
        ..Kernel::v5_10()
    };
    let c = choose::<EventOutput>(&old, None).unwrap();
    assert_eq!(c.strategy, EventOutputStrategy::PerfBuffer);
    assert!(c.why.contains("not ringbuf"), "{}", c.why);
}

#[test]
fn a_recorded_report_replays_as_a_kernel() {
    // Profiles recorded on real kernels by the VM matrix, when present.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../integration/profiles");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        probe::testing::skip(
            "a_recorded_report_replays_as_a_kernel",
            &format!(
                "no recorded profiles in {} (the VM matrix writes them)",
                dir.display()
            ),
        );
        return;
    };
    let mut replayed = std::collections::BTreeSet::new();
    for e in entries.flatten() {
        let report = probe::Report::from_path(&e.path()).unwrap_or_else(|err| panic!("{err}"));
        let r = report.release().expect("release").clone();
        let c = choose::<FuncIp>(&report, None);
        let fentry = report.misc(Misc::FentryBpfProg);
        if fentry.is_supported() {
            let want = if r.at_least(5, 18) {
                FuncIpStrategy::Helper
            } else {
                FuncIpStrategy::RewriteConstant
            };
            assert_eq!(c.unwrap().strategy, want, "{}", r.raw);
        }
        replayed.insert(format!("{}.{}", r.version.major, r.version.minor));
    }
    let want: std::collections::BTreeSet<String> = ["5.10", "6.1", "6.12"].map(String::from).into();
    assert_eq!(replayed, want, "profiles in {}", dir.display());
}
