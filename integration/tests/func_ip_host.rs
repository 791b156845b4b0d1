//! The strategy layer on the running kernel: addresses, constant injection, and the
//! fentry-on-tc tracer end to end (where the kernel loads fentry).
use std::{os::fd::AsFd, path::Path};

use fallback::{
    func_ip::FuncIpPlan,
    prog_addr::{self, AddrSource},
    strategy::choose,
    tracer::{self, ThrowawayTarget, Tracer, TracerOptions},
};
use probe::{FeatureSource, Misc, Support};

const KALLSYMS: &str = "/proc/kallsyms";

/// Every test here loads throwaway targets, all named alike in kallsyms
/// (`bpf_prog_<tag>_<name>`): one at a time, or a test that expects one finds another's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn kallsyms_publishes_bpf() -> Option<String> {
    let sys = probe::SystemInfo::read();
    match (
        sys.sysctl("net.core.bpf_jit_kallsyms"),
        sys.sysctl("kernel.kptr_restrict"),
    ) {
        (Some(1), Some(0)) => None,
        (k, r) => Some(format!(
            "kallsyms hides BPF programs here (bpf_jit_kallsyms={k:?}, kptr_restrict={r:?})"
        )),
    }
}

#[test]
fn jited_ksyms_and_kallsyms_agree() {
    let _alone = one_at_a_time();
    let Some(_) = integration::need_bpf("jited_ksyms_and_kallsyms_agree") else {
        return;
    };
    if let Some(why) = kallsyms_publishes_bpf() {
        integration::skip("jited_ksyms_and_kallsyms_agree", &why);
        return;
    }
    let t = ThrowawayTarget::load().unwrap();
    let (jited, kall) = prog_addr::both_ways(t.fd.as_fd(), Path::new(KALLSYMS)).unwrap();
    let jited = jited.expect("jited_ksyms[0]");
    assert_ne!(jited, 0);
    assert_eq!(kall, vec![jited], "kallsyms and jited_ksyms disagree");
    let a = prog_addr::resolve_fd(t.fd.as_fd(), Path::new(KALLSYMS)).unwrap();
    assert_eq!((a.addr, a.source), (jited, AddrSource::JitedKsyms));
}

#[test]
fn identical_programs_are_told_apart() {
    let _alone = one_at_a_time();
    let Some(_) = integration::need_bpf("identical_programs_are_told_apart") else {
        return;
    };
    if let Some(why) = kallsyms_publishes_bpf() {
        integration::skip("identical_programs_are_told_apart", &why);
        return;
    }
    let a = ThrowawayTarget::load().unwrap();
    let b = ThrowawayTarget::load().unwrap();
    let (ja, ka) = prog_addr::both_ways(a.fd.as_fd(), Path::new(KALLSYMS)).unwrap();
    let (jb, kb) = prog_addr::both_ways(b.fd.as_fd(), Path::new(KALLSYMS)).unwrap();
    // Same tag, same name: kallsyms lists both under one name (and any other copy loaded
    // on the system)...
    assert!(ka.len() >= 2, "{ka:x?}");
    assert_eq!(ka, kb);
    // ...and jited_ksyms picks each one's own.
    let (ja, jb) = (ja.unwrap(), jb.unwrap());
    assert_ne!(ja, jb);
    assert!(ka.contains(&ja) && ka.contains(&jb));
    assert_eq!(
        prog_addr::resolve_fd(a.fd.as_fd(), Path::new(KALLSYMS))
            .unwrap()
            .addr,
        ja
    );
    assert_eq!(
        prog_addr::resolve_fd(b.fd.as_fd(), Path::new(KALLSYMS))
            .unwrap()
            .addr,
        jb
    );
}

#[test]
fn rewritten_constants_reach_the_program() {
    let _alone = one_at_a_time();
    let Some(_) = integration::need_bpf("rewritten_constants_reach_the_program") else {
        return;
    };
    let t = ThrowawayTarget::load().unwrap();
    let a = prog_addr::resolve_fd(t.fd.as_fd(), Path::new(KALLSYMS)).unwrap();
    let e = tracer::self_check(FuncIpPlan::RewriteConstant {
        addr: a.addr,
        source: a.source,
    })
    .unwrap();
    assert_eq!(e.kind, ebpf::EVENT_SELF_CHECK);
    assert_eq!(e.ip, a.addr, "override_global did not reach .rodata");
    assert!(!e.used_helper);
    assert_eq!(e.skb_len, 64, "skb->len of the test packet");
    let e = tracer::self_check(FuncIpPlan::Helper).unwrap();
    assert!(e.used_helper);
    assert_eq!(e.ip, 0);
}

/// The full path: attach fentry+fexit to a tc program, trigger it with BPF_PROG_TEST_RUN,
/// read the ring buffer, compare the reported IP with the resolved address — for every
/// strategy this kernel can run, and check the choice against the kernel version.
#[test]
fn fentry_on_tc_reports_the_target_address() {
    let _alone = one_at_a_time();
    let Some(f) = integration::need_fentry_on_bpf_prog("fentry_on_tc_reports_the_target_address")
    else {
        return;
    };
    let release = f.release().unwrap().clone();
    let chosen = choose::<fallback::func_ip::FuncIp>(&f, None).unwrap();
    let helper_ok = release.at_least(5, 18);
    assert_eq!(
        chosen.strategy,
        if helper_ok {
            fallback::func_ip::FuncIpStrategy::Helper
        } else {
            fallback::func_ip::FuncIpStrategy::RewriteConstant
        },
        "on {}: {}",
        release.raw,
        chosen.why
    );
    let target = ThrowawayTarget::load().unwrap();
    let addr = prog_addr::resolve_fd(target.fd.as_fd(), Path::new(KALLSYMS))
        .unwrap()
        .addr;
    let objects = integration::bpf_objects();
    for strategy in ["rewrite_constant", "helper"] {
        let opts = TracerOptions {
            force: Some(strategy.parse().unwrap()),
            ..Default::default()
        };
        let mut tr = match Tracer::attach(&f, target.fd.as_fd(), &opts) {
            Ok(t) => t,
            Err(e) if strategy == "helper" && !helper_ok => {
                assert!(e.to_string().contains("cannot run on this kernel"), "{e}");
                continue;
            }
            Err(e) => panic!("{strategy} on {}: {e}", release.raw),
        };
        let ret = tracer::run_packet(target.fd.as_fd()).unwrap();
        let events = tr.events();
        assert_eq!(events.len(), 2, "{strategy}: {events:?}");
        for e in &events {
            assert_eq!(
                e.ip, addr,
                "{strategy} reported {:#x}, the target is at {addr:#x}",
                e.ip
            );
            assert_eq!(e.used_helper, strategy == "helper");
            assert_ne!(e.skb, 0);
            // skb->len, read through the offset injected from the kernel's BTF.
            assert_eq!(e.skb_len, 64, "{strategy}: skb->len");
        }
        let exit = events
            .iter()
            .find(|e| e.kind == ebpf::EVENT_EXIT)
            .expect("an fexit event");
        assert_eq!(exit.retval as u32, ret, "fexit saw another return value");
        eprintln!(
            "{strategy}: {} events at {addr:#x} on {}",
            events.len(),
            release.raw
        );
    }
    assert!(matches!(
        f.misc(Misc::FentryBpfProg).support,
        Support::Supported { .. }
    ));
    assert_eq!(
        integration::bpf_objects_left(&objects),
        vec![],
        "the tracers left objects loaded"
    );
}
