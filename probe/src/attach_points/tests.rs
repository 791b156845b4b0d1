use super::*;
use crate::{btf::BtfBuilder, kernel::KernelRelease, support::Support};

fn supported() -> Answer {
    Answer::probed(Support::supported())
}

fn kernel(release: &str) -> KernelMechanisms {
    KernelMechanisms {
        release: Some(KernelRelease::parse(release).unwrap()),
        arch: "x86_64".into(),
        tracing: supported(),
        kprobe: supported(),
        kprobe_multi: supported(),
        kprobe_needs_ftrace: true,
    }
}

/// A small kernel: BTF, kallsyms, ftrace and blacklist that disagree in the ways real
/// kernels do.
fn fixture(release: &str) -> AttachPoints {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4);
    let skb = b.struct_("sk_buff", 232, &[("len", int, 0)]);
    let skb_ptr = b.ptr(skb);
    let big = b.struct_("big", 32, &[("x", int, 0)]);
    let one = b.func_proto(int, &[("skb", skb_ptr)]);
    let seven = b.func_proto(
        int,
        &[
            ("a", int),
            ("b", int),
            ("c", int),
            ("d", int),
            ("e", int),
            ("f", int),
            ("g", int),
        ],
    );
    let by_value = b.func_proto(int, &[("v", big)]);
    for name in [
        "tcp_v4_rcv",
        "finish_task_switch",
        "notrace_fn",
        "dup",
        "do_exit",
        "migrate_disable",
        "exc_int3",
        "btf_only",
    ] {
        b.func(name, one);
    }
    b.func("seven_args", seven);
    // A FUNC repeated within vmlinux's blob (6.1-era pahole): still one function.
    b.func("tcp_v4_rcv", one);
    b.func("struct_arg", by_value);
    let btf = BtfProtos::from_blobs(b.build(), Vec::new()).unwrap().0;
    let kallsyms = "ffffffff81000000 T _text\n\
        ffffffff81100000 T tcp_v4_rcv\n\
        ffffffff81110000 t finish_task_switch.isra.0\n\
        ffffffff81120000 t notrace_fn\n\
        ffffffff81130000 t dup\n\
        ffffffff81140000 t dup\n\
        ffffffff81150000 T do_exit\n\
        ffffffff81160000 T migrate_disable\n\
        ffffffff81170000 T seven_args\n\
        ffffffff81180000 T struct_arg\n\
        ffffffff81a00000 T exc_int3\n\
        ffffffff81190000 t only_clone.constprop.0\n\
        ffffffff811a0000 t two_clones.isra.0\n\
        ffffffff811b0000 t two_clones.constprop.0\n\
        ffffffffc0000000 t mod_fn\t[nf_tables]\n";
    let ftrace = "tcp_v4_rcv\nfinish_task_switch.isra.0\ndup\ndup\ndo_exit\nmigrate_disable\n\
        seven_args\nstruct_arg\nexc_int3\nonly_clone.constprop.0\ntwo_clones.isra.0\n\
        two_clones.constprop.0\nmod_fn [nf_tables]\n";
    // 6.2+: one range for the whole entry area, named by its first symbol.
    let blacklist = "0xffffffff81a00000-0xffffffff81b00000\t__entry_text_start\n";
    let sources = Sources {
        btf: Ok(btf),
        btf_skipped: Vec::new(),
        ftrace: FtraceFunctions::parse(ftrace.as_bytes()),
        kallsyms: TextSymbols::parse(kallsyms.as_bytes()).map_err(|e| e.to_string()),
        blacklist: KprobeBlacklist::parse(blacklist.as_bytes()),
        timings: Default::default(),
        prepared: None,
    };
    AttachPoints::new(sources, kernel(release))
}

fn status(ap: &AttachPoints, name: &str, m: Mechanism) -> (&'static str, String) {
    let a = ap.can_trace(name).unwrap().get(m).clone();
    let s = match a.answer.support {
        Support::Supported { .. } => "yes",
        Support::Unsupported { .. } => "no",
        Support::Unknown { .. } => "unknown",
    };
    (s, format!("{} {}", a.answer, a.symbol.unwrap_or_default()))
}

#[test]
fn a_plain_function_is_traceable_every_way() {
    let ap = fixture("6.12.0");
    let t = ap.can_trace("tcp_v4_rcv").unwrap();
    assert!(
        t.mechanisms.iter().all(|m| m.answer.is_supported()),
        "{t:#?}"
    );
    assert_eq!(
        t.params.as_deref(),
        Some(&["struct sk_buff *".to_string()][..])
    );
    assert_eq!(
        t.get(Mechanism::Kprobe).symbol.as_deref(),
        Some("tcp_v4_rcv")
    );
}

#[test]
fn a_cloned_function_is_kprobed_on_its_only_clone() {
    let ap = fixture("6.12.0");
    let (s, why) = status(&ap, "finish_task_switch", Mechanism::Fentry);
    assert_eq!(s, "no", "{why}");
    assert!(
        why.contains("not in kallsyms") || why.contains("verifier cannot find"),
        "{why}"
    );
    let (s, why) = status(&ap, "finish_task_switch", Mechanism::Kprobe);
    assert_eq!(s, "yes", "{why}");
    assert!(why.ends_with("finish_task_switch.isra.0"), "{why}");
    let (s, _) = status(&ap, "finish_task_switch", Mechanism::KprobeMulti);
    assert_eq!(s, "yes");
    // A name that is only a clone: no BTF, but kprobes work on it.
    let (s, why) = status(&ap, "only_clone.constprop.0", Mechanism::Fentry);
    assert!(
        s == "no" && why.contains("compiler clone of `only_clone`"),
        "{why}"
    );
    assert_eq!(
        status(&ap, "only_clone.constprop.0", Mechanism::Kprobe).0,
        "yes"
    );
    // Two clones: no single answer.
    let (s, why) = status(&ap, "two_clones", Mechanism::Kprobe);
    assert!(s == "unknown" && why.contains("2 compiler clones"), "{why}");
}

#[test]
fn notrace_duplicates_and_the_blacklist() {
    let ap = fixture("6.12.0");
    for m in [Mechanism::Fentry, Mechanism::Kprobe, Mechanism::KprobeMulti] {
        let (s, why) = status(&ap, "notrace_fn", m);
        assert!(
            s == "no" && why.contains("available_filter_functions"),
            "{m}: {why}"
        );
    }
    for m in Mechanism::ALL {
        let (s, why) = status(&ap, "dup", m);
        assert!(s == "unknown" && why.contains("ambiguous"), "{m}: {why}");
    }
    let (s, why) = status(&ap, "exc_int3", Mechanism::Kprobe);
    assert!(s == "no" && why.contains("blacklist"), "{why}");
    assert_eq!(status(&ap, "exc_int3", Mechanism::Fentry).0, "yes");
}

#[test]
fn trampoline_limits_follow_the_release() {
    let old = fixture("6.1.0");
    let new = fixture("6.12.0");
    let (s, why) = status(&old, "seven_args", Mechanism::Fentry);
    assert!(s == "no" && why.contains("at most 6"), "{why}");
    assert_eq!(status(&new, "seven_args", Mechanism::Fentry).0, "yes");
    // A 32-byte struct by value: refused everywhere.
    let (s, why) = status(&new, "struct_arg", Mechanism::Fentry);
    assert!(s == "no" && why.contains("32-byte struct"), "{why}");
    // btf_id_deny, from 5.13.
    assert_eq!(status(&new, "migrate_disable", Mechanism::Fentry).0, "no");
    assert_eq!(
        status(&fixture("5.10.0"), "migrate_disable", Mechanism::Fentry).0,
        "yes"
    );
    // __noreturn: fentry yes, fexit no.
    assert_eq!(status(&new, "do_exit", Mechanism::Fentry).0, "yes");
    let (s, why) = status(&new, "do_exit", Mechanism::Fexit);
    assert!(s == "no" && why.contains("never returns"), "{why}");
}

#[test]
fn missing_functions_and_bad_names() {
    let ap = fixture("6.12.0");
    let (s, why) = status(&ap, "no_such_function", Mechanism::Fentry);
    assert!(
        s == "no" && why.contains("module that is not loaded"),
        "{why}"
    );
    let (s, why) = status(&ap, "btf_only", Mechanism::Fentry);
    assert!(s == "no" && why.contains("cannot be found"), "{why}");
    for bad in ["", "foo bar", "x;rm", "ä", &"a".repeat(600)] {
        assert!(ap.can_trace(bad).is_err(), "{bad:?}");
    }
    // A module function without BTF for its module: kprobe yes, fentry no.
    assert_eq!(status(&ap, "mod_fn", Mechanism::Kprobe).0, "yes");
    let t = ap.can_trace("mod_fn").unwrap();
    assert_eq!(
        t.get(Mechanism::Kprobe).module.as_deref(),
        Some("nf_tables")
    );
}

#[test]
fn unreadable_sources_and_refused_mechanisms_are_unknown_not_unsupported() {
    let mut ap = fixture("6.12.0");
    ap.sources.ftrace = Err("tracefs is not mounted".into());
    ap.sources.blacklist = Err("debugfs is not mounted".into());
    for m in Mechanism::ALL {
        let (s, why) = status(&ap, "tcp_v4_rcv", m);
        assert_eq!(s, "unknown", "{m}: {why}");
    }
    // Still a "no" where another source decides.
    assert_eq!(status(&ap, "no_such_function", Mechanism::Kprobe).0, "no");
    let mut ap = fixture("6.12.0");
    ap.kernel.tracing = Answer::probed(Support::unknown("EPERM: not permitted", None));
    let (s, why) = status(&ap, "tcp_v4_rcv", Mechanism::Fentry);
    assert!(s == "unknown" && why.contains("EPERM"), "{why}");
    assert_eq!(status(&ap, "no_such_function", Mechanism::Fentry).0, "no");
}

#[test]
fn the_summary_counts_every_btf_function_once() {
    let ap = fixture("6.12.0");
    let s = ap.summary();
    assert_eq!(s.btf_functions, 10);
    assert_eq!(s.only_clones, 1); // finish_task_switch
    assert_eq!(s.ambiguous, 1); // dup
    for c in &s.by_mechanism {
        assert_eq!(c.supported + c.unsupported + c.unknown, 10, "{c:?}");
    }
    assert!(s.source_problems.is_empty());
}

#[test]
fn a_summary_from_prepared_counts_is_the_same() {
    let plain = fixture("6.12.0");
    let mut ap = fixture("6.12.0");
    let (Ok(btf), Ok(ftrace)) = (&ap.sources.btf, &ap.sources.ftrace) else {
        panic!("the fixture reads every source")
    };
    ap.sources.prepared = Some(Prepared::new(btf, ftrace));
    assert_eq!(ap.summary(), plain.summary());
    // A preparation for other BTF (fewer names) is not trusted past its end.
    ap.sources
        .prepared
        .as_mut()
        .unwrap()
        .ftrace_counts
        .truncate(3);
    assert_eq!(ap.summary(), plain.summary());
}

#[test]
fn sources_are_read_from_their_paths_and_failures_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let btf_dir = dir.path().join("btf");
    std::fs::create_dir(&btf_dir).unwrap();
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4);
    let proto = b.func_proto(int, &[("x", int)]);
    b.func("f", proto);
    std::fs::write(btf_dir.join("vmlinux"), b.build()).unwrap();
    // A module blob that does not parse is skipped and named.
    std::fs::write(btf_dir.join("broken_mod"), b"not btf").unwrap();
    let kallsyms = dir.path().join("kallsyms");
    std::fs::write(&kallsyms, "ffffffff81000000 T f\n").unwrap();
    let paths = SourcePaths {
        btf_dir,
        ftrace: Some(dir.path().join("missing/available_filter_functions")),
        kallsyms,
        blacklist: None,
    };
    let s = Sources::read(&paths);
    assert_eq!(s.btf.as_ref().unwrap().functions.len(), 1);
    assert!(
        s.btf_skipped[0].starts_with("broken_mod"),
        "{:?}",
        s.btf_skipped
    );
    assert_eq!(s.kallsyms.as_ref().unwrap().get("f").len(), 1);
    assert!(
        s.ftrace
            .as_ref()
            .unwrap_err()
            .contains("missing/available_filter_functions")
    );
    assert!(
        s.blacklist
            .as_ref()
            .unwrap_err()
            .contains("debugfs is not mounted")
    );
    let problems = s.problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
    // A malformed kallsyms is an error naming the file and the line.
    std::fs::write(&paths.kallsyms, "ffffffff81000000 T f\nnot kallsyms\n").unwrap();
    let s = Sources::read(&paths);
    let e = s.kallsyms.unwrap_err();
    assert!(e.contains("kallsyms line 2"), "{e}");
}

/// The summary counts by the words-free class; it must be the class of the full answer,
/// for every function and mechanism, whatever the sources and the kernel say.
#[test]
fn the_counted_class_is_the_answers_class() {
    let mut variants = vec![fixture("6.12.0"), fixture("5.10.0")];
    let mut refused = fixture("6.12.0");
    refused.kernel.tracing = Answer::probed(Support::unknown("EPERM", None));
    refused.kernel.kprobe_multi = Answer::probed(Support::Unsupported {
        scope: crate::Scope::Kernel,
        evidence: crate::Evidence::probe("p"),
    });
    refused.sources.ftrace = Err("no tracefs".into());
    variants.push(refused);
    for ap in &variants {
        let names: Vec<&str> = ap
            .function_names()
            .chain(["only_clone.constprop.0", "two_clones", "no_such", "mod_fn"])
            .collect();
        for name in names {
            let quiet = verdict::Facts::gather(ap, name, true);
            let loud = verdict::Facts::gather(ap, name, false);
            let all = verdict::classes(&quiet, &ap.kernel);
            for (i, m) in Mechanism::ALL.into_iter().enumerate() {
                let a = verdict::answer(&loud, &ap.kernel, m);
                let want = match a.answer.support {
                    Support::Supported { .. } => verdict::Class::Yes,
                    Support::Unsupported { .. } => verdict::Class::No,
                    Support::Unknown { .. } => verdict::Class::Unknown,
                };
                assert_eq!(verdict::class(&quiet, &ap.kernel, m), want, "{name} {m}");
                assert_eq!(all[i], want, "{name} {m}, all at once");
            }
        }
    }
}

#[test]
fn a_kernel_without_kprobe_events_outranks_lockdown() {
    use crate::conditions::LockdownMode;
    let no = |s: Option<Support>| matches!(s, Some(Support::Unsupported { .. }));
    let unknown = |s: Option<Support>| matches!(s, Some(Support::Unknown { .. }));
    let locked = Some(LockdownMode::Integrity);
    assert!(no(verdict::kprobes_refused_by(Some(false), locked)));
    assert!(no(verdict::kprobes_refused_by(Some(false), None)));
    assert!(unknown(verdict::kprobes_refused_by(Some(true), locked)));
    assert!(unknown(verdict::kprobes_refused_by(None, locked)));
    assert!(verdict::kprobes_refused_by(Some(true), None).is_none());
    // Unknown PMUs (no sysfs) claim nothing.
    assert!(verdict::kprobes_refused_by(None, None).is_none());
    assert!(verdict::kprobes_refused_by(Some(true), Some(LockdownMode::None)).is_none());
}
