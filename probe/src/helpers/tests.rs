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
        "7.2",
        libc::EINVAL,
        "0: (85) call bpf_copy_from_user#148\nsleepable helper bpf_copy_from_user#148 in non-sleepable prog\n",
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
        Support::Unsupported {
            scope: Scope::Target,
            ..
        } => "target",
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

fn system(lockdown: LockdownMode) -> SystemInfo {
    SystemInfo {
        release: crate::KernelRelease::parse("6.12.0").ok(),
        privileges: Privileges::from_cap_eff(0, u64::MAX),
        lockdown: Some(lockdown),
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
    let f = Features::on(system(LockdownMode::None), Some(btf()), Options::default());
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
    let f = Features::on(system(LockdownMode::None), Some(btf()), Options::default());
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
    let f = Features::on(system(LockdownMode::None), Some(btf()), Options::default());
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
    let f = Features::on(
        system(LockdownMode::Confidentiality),
        Some(btf()),
        Options::default(),
    );
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
    let f = Features::on(
        system(LockdownMode::Integrity),
        Some(btf()),
        Options::default(),
    );
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

/// kernel.unprivileged_bpf_disabled = 0 (issue 14): an unprivileged caller's socket_filter
/// loads are probed for real; other types, and what it is refused (EPERM), are inferred;
/// a helper refused to it is unknown (it may be the caller's missing CAP_BPF), never
/// "not supported".
#[test]
fn an_unprivileged_caller_probes_what_it_may_load() {
    let mut sys = system(LockdownMode::None);
    sys.privileges = Privileges::from_cap_eff(1000, 0);
    sys.sysctls
        .insert("kernel.unprivileged_bpf_disabled".into(), "0".into());
    assert!(sys.unprivileged_bpf_allowed());
    let _door = fake::replace(move |call| {
        if call.cmd != aya_obj::generated::bpf_cmd::BPF_PROG_LOAD
            || call.prog_type() != ProgramType::SOCKET_FILTER.0
        {
            return Err(Errno(libc::EPERM));
        }
        let insns = call.insns();
        if insns.len() == 3 && insns[0].imm == Helper::GET_CURRENT_PID_TGID.id() as i32 {
            call.write_log("0: (85) call bpf_get_current_pid_tgid#14\nunknown func bpf_get_current_pid_tgid#14\n");
            return Err(Errno(libc::EINVAL));
        }
        fake::fd()
    });
    let f = Features::on(sys, Some(btf()), Options::default());
    let a = f.program_type(ProgramType::SOCKET_FILTER);
    assert!(a.is_supported() && a.origin == Origin::Probed, "{a}");
    let a = f.program_type(ProgramType::KPROBE);
    assert_eq!(a.origin, Origin::Inferred, "{a}");
    let a = f.map_type(crate::MapType::RINGBUF);
    assert_eq!(a.origin, Origin::Inferred, "EPERM: inferred: {a}");
    let ctx = AttachContext::Default(ProgramType::SOCKET_FILTER);
    let a = f.helper(ctx, Helper::RINGBUF_OUTPUT);
    assert!(a.is_supported() && a.origin == Origin::Probed, "{a}");
    let a = f.helper(ctx, Helper::GET_CURRENT_PID_TGID);
    assert!(
        a.support.is_unknown() && a.to_string().contains("unprivileged"),
        "{a}"
    );
    // Other contexts are not loaded at all.
    let a = f.helper(AttachContext::KPROBE, Helper::RINGBUF_OUTPUT);
    assert_eq!(a.origin, Origin::Inferred, "{a}");
}
