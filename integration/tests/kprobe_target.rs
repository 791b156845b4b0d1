//! fentry/fexit on a kprobe program, end to end (issue 13): a kprobe on tcp_connect that
//! tail-calls a handler through a prog array, traced with fentry and fexit under every
//! func_ip strategy the kernel can run. A loopback TCP connect triggers it; the tracer must
//! see the connection's `struct sock *` (as the kprobe itself saw it), the return value
//! after the tail call, and the traced program's true address.
use std::{
    net::{TcpListener, TcpStream},
    os::fd::{AsFd, BorrowedFd},
    path::Path,
};

use aya::{
    EbpfLoader,
    maps::{Array, MapData, ProgramArray, RingBuf},
    programs::KProbe,
};
use ebpf::RegsEvent;
use fallback::{
    func_ip::{FuncIp, FuncIpGlobals, FuncIpPlan, FuncIpStrategy},
    object::{Maps, ObjectError, PreparedObject, TracingLink},
    prog_addr,
};
use probe::{AttachContext, FeatureSource, Misc};

const KALLSYMS: &str = "/proc/kallsyms";

/// The tracer object with its globals rewritten for `plan` and the argument's read, made
/// ready through the library's own loader, and its ring buffer.
struct TracerObject {
    object: PreparedObject,
    events: RingBuf<MapData>,
}

fn tracer_object(plan: FuncIpPlan, di_off: u32, read_directly: u8) -> TracerObject {
    let g = FuncIpGlobals::new(plan).unwrap();
    let globals = vec![
        ("use_helper".to_string(), vec![g.use_helper]),
        ("target_addr".into(), g.target_addr.to_ne_bytes().to_vec()),
        ("regs_di_off".into(), di_off.to_ne_bytes().to_vec()),
        ("read_directly".into(), vec![read_directly]),
    ];
    let mut object =
        PreparedObject::prepare(ebpf::KPROBE_TRACER, &globals, &mut Maps::default(), &|_| {
            true
        })
        .unwrap();
    let events = RingBuf::try_from(object.own_maps.take("events").unwrap()).unwrap();
    TracerObject { object, events }
}

/// Loads fentry (and fexit) against `target`'s main function. Reads the argument directly
/// where the verifier types it, else through bpf_probe_read_kernel (before 6.3/6.1.16 the
/// argument is a plain number).
fn trace(
    plan: FuncIpPlan,
    di_off: u32,
    target: BorrowedFd<'_>,
    fexit: bool,
) -> (TracerObject, Vec<TracingLink>, bool) {
    for read_directly in [1u8, 0] {
        let tracer = tracer_object(plan, di_off, read_directly);
        match tracer.object.attach_to_prog("regs_entry", target, None) {
            Ok(entry) => {
                let mut links = vec![entry];
                if fexit {
                    links.push(
                        tracer
                            .object
                            .attach_to_prog("regs_exit", target, None)
                            .unwrap(),
                    );
                }
                return (tracer, links, read_directly == 1);
            }
            // The argument is not typed as struct pt_regs on this kernel: read it through
            // the helper instead.
            Err(ObjectError::Load { log, .. })
                if read_directly == 1 && log.contains("invalid mem access") => {}
            Err(e) => panic!("{plan}: {e}"),
        }
    }
    unreachable!("the helper path loads or panics")
}

fn events(tracer: &mut TracerObject) -> Vec<RegsEvent> {
    let mut out = Vec::new();
    while let Some(item) = tracer.events.next() {
        out.push(RegsEvent::parse(&item).unwrap());
    }
    out
}

fn connect_over_loopback() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1 (is lo up?)");
    let _c = TcpStream::connect(l.local_addr().unwrap()).expect("connect over loopback");
}

#[test]
fn fentry_and_fexit_on_a_kprobe_program_that_tail_calls() {
    let test = "fentry_and_fexit_on_a_kprobe_program_that_tail_calls";
    let Some(f) = integration::need_fentry_on_bpf_prog(test) else {
        return;
    };
    let on_kprobe = f.misc(Misc::FentryKprobeProg);
    if !on_kprobe.is_supported() {
        integration::skip(test, &format!("fentry on a kprobe program: {on_kprobe}"));
        return;
    }
    let Some(di_off) = f.btf().and_then(|b| b.member_offset("pt_regs", "di")) else {
        integration::skip(
            test,
            "the kernel's BTF has no struct pt_regs.di (not x86-64?)",
        );
        return;
    };
    let btf = aya::Btf::from_sys_fs().ok();
    let mut target = EbpfLoader::new()
        .btf(btf.as_ref())
        .load(ebpf::KPROBE_TARGET)
        .unwrap();
    let handler: &mut KProbe = target.program_mut("k_handler").unwrap().try_into().unwrap();
    handler.load().unwrap();
    let handler_fd = handler.fd().unwrap().try_clone().unwrap();
    let main: &mut KProbe = target
        .program_mut("k_tcp_connect")
        .unwrap()
        .try_into()
        .unwrap();
    main.load().unwrap();
    if let Err(e) = main.attach("tcp_connect", 0) {
        integration::skip(
            test,
            &format!("a kprobe on tcp_connect cannot attach here: {e}"),
        );
        return;
    }
    let main_fd = main.fd().unwrap().try_clone().unwrap();
    let mut jumps = ProgramArray::try_from(target.map_mut("jumps").unwrap()).unwrap();
    jumps.set(0, &handler_fd, 0).unwrap();
    let main_fd = main_fd.as_fd();
    let true_addr = prog_addr::resolve_fd(main_fd, Path::new(KALLSYMS))
        .unwrap()
        .addr;

    let mut ran = Vec::new();
    for s in [FuncIpStrategy::Helper, FuncIpStrategy::RewriteConstant] {
        if let Err(why) = FuncIp::runnable_in(&f, s, AttachContext::FentryKprobeProg) {
            eprintln!("{test}: {s:?} cannot run here: {why}");
            continue;
        }
        let plan = match s {
            FuncIpStrategy::Helper => FuncIpPlan::Helper,
            FuncIpStrategy::RewriteConstant => {
                let a = prog_addr::resolve_fd(main_fd, Path::new(KALLSYMS)).unwrap();
                FuncIpPlan::RewriteConstant {
                    addr: a.addr,
                    source: a.source,
                }
            }
        };
        let (mut tracer, links, direct) = trace(plan, di_off, main_fd, true);
        connect_over_loopback();
        let seen = Array::<_, u64>::try_from(target.map("seen").unwrap()).unwrap();
        let (sock, handler_sock) = (seen.get(&0, 0).unwrap(), seen.get(&1, 0).unwrap());
        assert_ne!(sock, 0, "the kprobe did not run");
        assert_eq!(
            handler_sock, sock,
            "the tail call did not reach the handler"
        );
        let ev = events(&mut tracer);
        let ours: Vec<&RegsEvent> = ev.iter().filter(|e| e.arg == sock).collect();
        let entry = ours.iter().find(|e| e.kind == 0);
        let exit = ours.iter().find(|e| e.kind == 1);
        let (Some(entry), Some(exit)) = (entry, exit) else {
            panic!("{plan}: no entry and exit event for sock {sock:#x}: {ev:?}");
        };
        for e in [entry, exit] {
            assert_eq!(
                e.ip, true_addr,
                "{plan}: the function IP is not the target's"
            );
            assert_eq!(e.used_helper, s == FuncIpStrategy::Helper);
            assert_ne!(e.regs, 0);
        }
        assert_eq!(
            exit.retval, 0,
            "{plan}: fexit saw no tail call (1 = the call failed)"
        );
        eprintln!(
            "{test}: {plan}: sock {sock:#x}, ip {true_addr:#x}, argument read {}",
            if direct {
                "directly"
            } else {
                "through bpf_probe_read_kernel"
            }
        );
        drop(links);
        ran.push(s);
    }
    assert!(
        !ran.is_empty(),
        "no func_ip strategy could run on a kprobe target"
    );

    // A named function inside the target (cilium/ebpf's AttachTo): its global subprogram
    // record_sock, whose argument is the sock; a name the target's BTF lacks is refused.
    {
        let runnable = |s| FuncIp::runnable_in(&f, s, AttachContext::FentryKprobeProg).is_ok();
        let plan = if runnable(FuncIpStrategy::Helper) {
            FuncIpPlan::Helper
        } else {
            FuncIpPlan::RewriteConstant {
                addr: true_addr,
                source: prog_addr::AddrSource::JitedKsyms,
            }
        };
        // arg_entry reads its argument as a number: the pt_regs globals play no part.
        let mut tracer = tracer_object(plan, di_off, 1);
        let missing = tracer
            .object
            .attach_to_prog("arg_entry", main_fd, Some("no_such_function"));
        assert!(
            matches!(missing, Err(ObjectError::NoTargetFunc(ref n)) if n == "no_such_function"),
            "{:?}",
            missing.err()
        );
        let _link = tracer
            .object
            .attach_to_prog("arg_entry", main_fd, Some("record_sock"))
            .unwrap();
        connect_over_loopback();
        let seen = Array::<_, u64>::try_from(target.map("seen").unwrap()).unwrap();
        let sock = seen.get(&2, 0).unwrap();
        let ev = events(&mut tracer);
        assert!(
            ev.iter().any(|e| e.kind == 2 && e.arg == sock && sock != 0),
            "fentry on record_sock did not see sock {sock:#x}: {ev:?}"
        );
    }

    // The tail-call target too: fentry attaches to it; on x86-64 a tail call jumps past the
    // trampoline's patch site, so entries by tail call are not seen (kernel behaviour, not
    // ours): whatever is seen must be correct.
    let handler_addr = prog_addr::resolve_fd(handler_fd.as_fd(), Path::new(KALLSYMS))
        .unwrap()
        .addr;
    let plan = FuncIpPlan::RewriteConstant {
        addr: handler_addr,
        source: prog_addr::AddrSource::JitedKsyms,
    };
    let (mut tracer, _links, _) = trace(plan, di_off, handler_fd.as_fd(), false);
    connect_over_loopback();
    let ev = events(&mut tracer);
    for e in &ev {
        assert_eq!(e.ip, handler_addr);
    }
    eprintln!(
        "{test}: fentry on the tail-call target saw {} entries by tail call",
        ev.len()
    );
}
