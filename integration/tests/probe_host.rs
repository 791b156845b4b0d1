//! The probe layer on the running kernel. Needs root (or CAP_BPF+CAP_PERFMON); skips
//! visibly otherwise. Runs on the host and inside every kernel of the VM matrix.
use probe::{
    AttachContext, FeatureSource, Features, Helper, MapType, Misc, Options, Origin, ProgramType,
    Scope, Support,
};

/// The leak check counts the process's descriptors and BPF objects: no other test of this
/// file may open or load anything meanwhile, so they all run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn features() -> Features {
    Features::new(Options::default())
}

fn release(f: &Features) -> probe::KernelRelease {
    f.release().expect("kernel release").clone()
}

#[test]
fn known_facts_hold() {
    let _alone = one_at_a_time();
    let Some(_) = integration::need_bpf("known_facts_hold") else {
        return;
    };
    let f = features();
    let r = release(&f);

    let a = f.helper(AttachContext::KPROBE, Helper::GET_FUNC_IP);
    if r.at_least(5, 15) {
        assert!(
            a.is_supported(),
            "kprobe + bpf_get_func_ip on {}: {a}",
            r.raw
        );
    } else {
        match &a.support {
            Support::Unsupported { evidence, .. } => {
                let line = evidence.verifier_line.clone().unwrap_or_default();
                assert!(line.contains("invalid func unknown#173"), "{a}");
            }
            other => panic!("kprobe + bpf_get_func_ip on {}: {other}", r.raw),
        }
    }

    // bpf_get_current_pid_tgid became a base helper of every program type in 6.10;
    // before, socket filters were refused with "unknown func bpf_get_current_pid_tgid#14".
    let a = f.helper(
        AttachContext::Default(ProgramType::SOCKET_FILTER),
        Helper::GET_CURRENT_PID_TGID,
    );
    if r.at_least(6, 10) {
        assert!(a.is_supported(), "{a}");
    } else {
        assert!(
            matches!(
                &a.support,
                Support::Unsupported {
                    scope: Scope::ProgramType,
                    ..
                }
            ),
            "socket_filter + bpf_get_current_pid_tgid on {}: {a}",
            r.raw
        );
        assert!(a.to_string().contains("bpf_get_current_pid_tgid#14"), "{a}");
    }

    // fentry: supported where the kernel allows it; where it refuses with EPERM (this
    // project's development machine), unknown — never "not supported".
    let t = f.program_type(ProgramType::TRACING);
    assert!(
        !t.support.is_unsupported() || !r.at_least(5, 5),
        "tracing on {}: {t}",
        r.raw
    );
    if let Support::Unknown { reason, .. } = &t.support {
        assert!(reason.contains("EPERM"), "{t}");
        let h = f.helper(AttachContext::FentryBpfProg, Helper::GET_FUNC_IP);
        assert!(
            h.support.is_unknown(),
            "a context that could not be probed: {h}"
        );
    }
}

#[test]
fn get_func_ip_by_attach_context() {
    let _alone = one_at_a_time();
    let Some(_) = integration::need_bpf("get_func_ip_by_attach_context") else {
        return;
    };
    let f = features();
    let r = release(&f);
    let bpf_prog = f.helper(AttachContext::FentryBpfProg, Helper::GET_FUNC_IP);
    let fentry = f.helper(AttachContext::FENTRY_KERNEL_FN, Helper::GET_FUNC_IP);
    if f.misc(Misc::FentryBpfProg).support.is_unknown() {
        integration::skip(
            "get_func_ip_by_attach_context",
            &format!(
                "fentry cannot be loaded here: {}",
                f.misc(Misc::FentryBpfProg)
            ),
        );
        return;
    }
    match (r.at_least(5, 15), r.at_least(5, 18)) {
        (_, true) => {
            assert!(bpf_prog.is_supported(), "{bpf_prog}");
            assert!(fentry.is_supported(), "{fentry}");
        }
        (true, false) => {
            // pwru's bug: the helper exists, fentry on a kernel function may call it, but
            // fentry on a BPF program is verified as the target's type.
            assert!(fentry.is_supported(), "{fentry}");
            assert!(
                matches!(
                    &bpf_prog.support,
                    Support::Unsupported {
                        scope: Scope::Context,
                        ..
                    }
                ),
                "{bpf_prog}"
            );
        }
        (false, _) => {
            assert!(bpf_prog.support.is_unsupported(), "{bpf_prog}");
            assert!(fentry.support.is_unsupported(), "{fentry}");
        }
    }
}

/// The target's type is part of the question (issue 13): fentry on a kprobe program may
/// call bpf_get_func_ip from 5.15 (verified as its kprobe target until 5.18, which may call
/// it), on a tc program only from 5.18. On every kernel the two contexts load alike.
#[test]
fn get_func_ip_by_target_type() {
    let _alone = one_at_a_time();
    let test = "get_func_ip_by_target_type";
    let Some(_) = integration::need_bpf(test) else {
        return;
    };
    let f = features();
    let r = release(&f);
    let (tc, kprobe) = (f.misc(Misc::FentryBpfProg), f.misc(Misc::FentryKprobeProg));
    if tc.support.is_unknown() || kprobe.support.is_unknown() {
        integration::skip(
            test,
            &format!("fentry cannot be loaded here: {tc}; {kprobe}"),
        );
        return;
    }
    assert_eq!(
        tc.support.as_bool(),
        kprobe.support.as_bool(),
        "{tc} / {kprobe}"
    );
    let on_kprobe = f.helper(AttachContext::FentryKprobeProg, Helper::GET_FUNC_IP);
    let on_tc = f.helper(AttachContext::FentryBpfProg, Helper::GET_FUNC_IP);
    assert_eq!(on_kprobe.is_supported(), r.at_least(5, 15), "{on_kprobe}");
    if r.at_least(5, 18) || !r.at_least(5, 15) {
        assert_eq!(
            on_kprobe.is_supported(),
            on_tc.is_supported(),
            "{on_kprobe} / {on_tc}"
        );
    } else {
        assert!(!on_tc.is_supported(), "{on_tc}");
    }
}

#[test]
fn helpers_past_the_kernels_btf_are_unsupported_everywhere() {
    let _alone = one_at_a_time();
    let Some(_) = integration::need_bpf("helpers_past_the_kernels_btf") else {
        return;
    };
    let f = features();
    let Some(btf) = f.btf() else {
        integration::skip("helpers_past_the_kernels_btf", "the kernel has no BTF");
        return;
    };
    let members = btf
        .enum_members("bpf_func_id")
        .expect("enum bpf_func_id in BTF");
    let max = members
        .iter()
        .filter(|m| m.name.starts_with("BPF_FUNC_") && m.name != "BPF_FUNC_unspec")
        .map(|m| m.value)
        .max()
        .unwrap() as u32;
    let r = release(&f);
    for h in Helper::all() {
        let known = f.kernel_has_helper(h);
        // The id-range table of releases agrees with this kernel's BTF.
        let since = h.since().unwrap();
        assert_eq!(
            h.id() <= max,
            r.reached(since),
            "{h} (id {}, since {since}) vs BTF max id {max} on {}",
            h.id(),
            r.raw
        );
        if h.id() > max {
            assert!(known.support.is_unsupported(), "{h}: {known}");
            for ctx in [
                AttachContext::KPROBE,
                AttachContext::Default(ProgramType::SCHED_CLS),
            ] {
                let a = f.helper(ctx, h);
                assert!(
                    matches!(
                        a.support,
                        Support::Unsupported {
                            scope: Scope::Kernel,
                            ..
                        }
                    ),
                    "{h} in {}: {a}",
                    ctx.name()
                );
            }
        } else {
            assert!(known.is_supported(), "{h}: {known}");
        }
    }
}

#[test]
fn a_cached_answer_costs_no_syscall() {
    let _alone = one_at_a_time();
    let Some(_) = integration::need_bpf("a_cached_answer_costs_no_syscall") else {
        return;
    };
    let f = features();
    let ctx = AttachContext::Default(ProgramType::SCHED_CLS);
    let before = probe::sys::syscall_count();
    let first = f.helper(ctx, Helper::RINGBUF_OUTPUT);
    let loads = probe::sys::syscall_count() - before;
    assert!(loads >= 1, "the first question must load something");
    let before = probe::sys::syscall_count();
    let second = f.helper(ctx, Helper::RINGBUF_OUTPUT);
    assert_eq!(
        probe::sys::syscall_count() - before,
        0,
        "cached answer cost a syscall"
    );
    assert_eq!(first, second);
}

/// Kernel-config-dependent features that may be missing on a kernel newer than their
/// `since`: the version oracle does not hold them to it.
const CONFIG_DEPENDENT: &[&str] = &[
    "lirc_mode2",   // CONFIG_BPF_LIRC_MODE2
    "kprobe_multi", // CONFIG_FPROBE
    "uprobe_multi", // CONFIG_UPROBES
    "lsm",          // CONFIG_BPF_LSM
    "netfilter",    // CONFIG_NETFILTER_BPF_LINK
    "link_netfilter",
    "isa_v4", // needs LLVM-era ISA support in the JIT
    // Before 6.2 a sleepable fentry needs a target in the error-injection list
    // (CONFIG_FUNCTION_ERROR_INJECTION, which Debian's kernels lack).
    "fentry_sleepable",
    "lsm_sleepable", // CONFIG_BPF_LSM
];

#[test]
fn version_oracle() {
    let _alone = one_at_a_time();
    let Some(_) = integration::need_bpf("version_oracle") else {
        return;
    };
    let f = features();
    let r = release(&f);
    let mut checked = 0;
    let mut check = |name: String, since: probe::Since, a: probe::Answer| {
        let new_enough = r.reached(since);
        if new_enough && a.support.is_unsupported() && !CONFIG_DEPENDENT.contains(&name.as_str()) {
            panic!("{name} appeared in {since}, but kernel {} says: {a}", r.raw);
        }
        if !new_enough {
            assert!(
                !a.is_supported(),
                "{name} appeared in {since}, but kernel {} has it",
                r.raw
            );
        }
        checked += 1;
    };
    for t in ProgramType::all() {
        check(t.name().to_string(), t.since().unwrap(), f.program_type(t));
    }
    for t in MapType::all() {
        check(t.name().to_string(), t.since().unwrap(), f.map_type(t));
    }
    for m in Misc::ALL {
        check(m.name().to_string(), m.since(), f.misc(*m));
    }
    assert_eq!(
        checked,
        ProgramType::all().count() + MapType::all().count() + Misc::ALL.len()
    );
}

fn answers_only(r: &probe::Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    for k in ["seconds", "bpf_syscalls", "threads", "system"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

/// Where two JSON values differ, one line per path (the first 20).
fn differences(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    fn walk(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
        match (a, b) {
            _ if out.len() >= 20 => {}
            (Value::Object(x), Value::Object(y)) => {
                for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    let (p, q) = (
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                    );
                    walk(p, q, &format!("{path}/{k}"), out);
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(p, q, &format!("{path}/{i}"), out);
                }
            }
            _ if a != b => out.push(format!("{path}: {a} | {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(a, b, "", &mut out);
    out
}

#[test]
fn a_full_report_leaks_nothing_and_repeats_itself() {
    let _alone = one_at_a_time();
    let Some(_) = integration::need_bpf("a_full_report_leaks_nothing") else {
        return;
    };
    let dmesg_before = std::process::Command::new("dmesg")
        .output()
        .ok()
        .filter(|o| o.status.success());
    let fds = integration::open_fds();
    let objects = integration::bpf_objects();
    let first = features().probe_all();
    let second = features().probe_all();
    assert_eq!(integration::open_fds(), fds, "file descriptors leaked");
    assert_eq!(
        integration::bpf_objects_left(&objects),
        vec![],
        "BPF objects left loaded"
    );
    let differences = differences(&answers_only(&first), &answers_only(&second));
    assert!(
        differences.is_empty(),
        "two runs disagree:\n{}",
        differences.join("\n")
    );
    match (
        dmesg_before,
        std::process::Command::new("dmesg").output().ok(),
    ) {
        (Some(before), Some(after)) => {
            let before = String::from_utf8_lossy(&before.stdout).lines().count();
            let new: Vec<String> = String::from_utf8_lossy(&after.stdout)
                .lines()
                .skip(before)
                .map(str::to_string)
                .collect();
            assert!(
                new.is_empty(),
                "the report wrote to the kernel log: {new:?}"
            );
        }
        _ => integration::skip(
            "a_full_report_leaks_nothing (kernel log part)",
            "dmesg is not readable",
        ),
    }
}

#[test]
fn inferred_answers_are_marked_and_agree_where_conclusive() {
    let _alone = one_at_a_time();
    let Some(_) = integration::need_bpf("inferred_answers_are_marked") else {
        return;
    };
    let probed = features();
    let inferred = Features::new(Options {
        force_inferred: Some("test: pretend probing is impossible".into()),
        ..Default::default()
    });
    for t in ProgramType::all() {
        let i = inferred.program_type(t);
        assert_eq!(i.origin, Origin::Inferred, "{t}: {i}");
        assert!(i.origin_reason.as_deref().unwrap().contains("pretend"));
        let p = probed.program_type(t);
        assert_eq!(p.origin, Origin::Probed);
        if i.support.is_unsupported() {
            assert!(!p.is_supported(), "{t}: inferred {i}, probed {p}");
        }
    }
    let i = inferred.helper(AttachContext::FentryBpfProg, Helper::GET_FUNC_IP);
    assert_eq!(i.origin, Origin::Inferred);
    assert_eq!(i.is_supported(), release(&probed).at_least(5, 18), "{i}");
}

#[test]
fn agrees_with_aya() {
    let _alone = one_at_a_time();
    let Some(_) = integration::need_bpf("agrees_with_aya") else {
        return;
    };
    use aya::programs::ProgramType as AyaType;
    let f = features();
    for (aya_t, ours) in [
        (AyaType::SocketFilter, ProgramType::SOCKET_FILTER),
        (AyaType::KProbe, ProgramType::KPROBE),
        (AyaType::SchedClassifier, ProgramType::SCHED_CLS),
        (AyaType::Xdp, "xdp".parse().unwrap()),
        (AyaType::CgroupSkb, "cgroup_skb".parse().unwrap()),
        (AyaType::RawTracePoint, "raw_tracepoint".parse().unwrap()),
    ] {
        let a = f.program_type(ours);
        // Both must answer: these types load with root on every kernel we run.
        let theirs = aya::sys::is_program_supported(aya_t)
            .unwrap_or_else(|e| panic!("aya could not answer {ours}: {e}"));
        assert_eq!(
            Some(theirs),
            a.support.as_bool(),
            "{ours}: aya {theirs}, ours {a}"
        );
    }
    for (aya_t, ours) in [
        (AyaType::KProbe, AttachContext::KPROBE),
        (
            AyaType::SchedClassifier,
            AttachContext::Default(ProgramType::SCHED_CLS),
        ),
        (
            AyaType::SocketFilter,
            AttachContext::Default(ProgramType::SOCKET_FILTER),
        ),
    ] {
        for (aya_h, h) in [
            (
                aya::sys::BpfHelper::BPF_FUNC_get_func_ip,
                Helper::GET_FUNC_IP,
            ),
            (
                aya::sys::BpfHelper::BPF_FUNC_ringbuf_output,
                Helper::RINGBUF_OUTPUT,
            ),
            (
                aya::sys::BpfHelper::BPF_FUNC_get_current_pid_tgid,
                Helper::GET_CURRENT_PID_TGID,
            ),
        ] {
            let a = f.helper(ours, h);
            let theirs = aya::sys::is_helper_supported(aya_t, aya_h)
                .unwrap_or_else(|e| panic!("aya could not answer {h} in {}: {e}", ours.name()));
            let Some(mine) = a.support.as_bool() else {
                panic!("{h} in {}: ours is inconclusive: {a}", ours.name());
            };
            assert_eq!(
                theirs,
                mine,
                "{h} in {}: aya {theirs}, ours {a}",
                ours.name()
            );
        }
    }
}
