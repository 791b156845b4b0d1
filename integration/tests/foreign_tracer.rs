//! The library as another project's dependency (issue 10): a tracer object that is not
//! ours (ebpf/src/bpf/example_tracer.bpf.c: its own global names, an LRU and a per-CPU
//! hash, a global subprogram, BPF_CORE_READ of skb->len and skb->protocol) through the
//! generic `trace::trace`, on two tc programs at once, under every func_ip strategy the
//! kernel can run; and the refusals that must come before anything is loaded.
use std::{
    fs::File,
    os::fd::{AsFd, BorrowedFd},
    path::Path,
};

use aya::{EbpfLoader, maps::Map, programs::SchedClassifier};
use ebpf::Call;
use fallback::{
    func_ip::{FuncIp, FuncIpStrategy},
    object::{Maps, ObjectError, PreparedObject},
    prog_addr,
    trace::{FuncIpGlobalNames, TraceError, TraceSpec, trace},
};
use probe::AttachContext;

const KALLSYMS: &str = "/proc/kallsyms";

fn spec(tag: u32) -> TraceSpec<'static> {
    let mut spec = TraceSpec::new(ebpf::EXAMPLE_TRACER, &["on_entry", "on_exit"])
        .global("cfg_tag", &tag.to_ne_bytes());
    spec.globals = FuncIpGlobalNames {
        use_helper: "cfg_want_helper".into(),
        target_addr: "cfg_traced_addr".into(),
    };
    spec
}

/// A 64-byte Ethernet frame of `ethertype` with a plausible IP version nibble.
fn frame(ethertype: u16) -> [u8; 64] {
    let mut f = [0u8; 64];
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f[14] = if ethertype == 0x86DD { 0x60 } else { 0x45 };
    f
}

/// `skb->protocol` as the tracer reads it: network byte order, read natively.
fn wire(ethertype: u16) -> u16 {
    u16::from_ne_bytes(ethertype.to_be_bytes())
}

fn not_a_program() -> File {
    File::open("/dev/null").unwrap()
}

#[test]
fn externs_are_refused_by_name_before_anything_loads() {
    let before = integration::bpf_objects();
    let mut maps = Maps::default();
    let e = PreparedObject::prepare(ebpf::EXTERN_USER, &[], &mut maps, &|_| true).err();
    assert!(
        matches!(&e, Some(ObjectError::Extern { symbol, .. }) if symbol == "bpf_prog_active"),
        "{e:?}"
    );
    let text = e.unwrap().to_string();
    assert!(
        text.contains("bpf_prog_active") && text.contains("would read 0"),
        "{text}"
    );
    assert_eq!(maps.names().count(), 0);
    assert!(integration::bpf_objects_left(&before).is_empty());
}

#[test]
fn globals_are_checked_before_load() {
    let null = not_a_program();
    let targets = [null.as_fd()];
    let f = probe::Features::new(probe::Options::default());
    // Our default names are not this object's.
    let default_names = TraceSpec::new(ebpf::EXAMPLE_TRACER, &["on_entry"]);
    match trace(&f, &default_names, &targets) {
        Err(TraceError::Globals(ObjectError::Global { name, problem })) => {
            assert_eq!(name, "use_helper");
            assert!(
                problem.contains("const volatile __u8 use_helper"),
                "{problem}"
            );
        }
        other => panic!("{:?}", other.err()),
    }
    // A 4-byte global cannot hold an address.
    let mut small = spec(0);
    small.globals.target_addr = "cfg_tag".into();
    match trace(&f, &small, &targets) {
        Err(TraceError::Globals(ObjectError::Global { name, problem })) => {
            assert_eq!(name, "cfg_tag");
            assert!(problem.contains("4 bytes"), "{problem}");
        }
        other => panic!("{:?}", other.err()),
    }
    // No target, no program: said, not ignored.
    assert!(matches!(
        trace(&f, &spec(0), &[]),
        Err(TraceError::Empty(_))
    ));
}

#[test]
fn every_map_kind_is_created_and_core_relocated() {
    let test = "every_map_kind_is_created_and_core_relocated";
    if integration::need_bpf(test).is_none() {
        return;
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        integration::skip(
            test,
            "no kernel BTF (/sys/kernel/btf/vmlinux): CO-RE cannot run",
        );
        return;
    }
    let before = integration::bpf_objects();
    {
        let mut shared = Maps::default();
        let globals = vec![("cfg_tag".to_string(), 7u32.to_ne_bytes().to_vec())];
        let mut first =
            PreparedObject::prepare(ebpf::EXAMPLE_TRACER, &globals, &mut shared, &|n| {
                n == ".rodata"
            })
            .unwrap();
        let mut names: Vec<&str> = shared.names().collect();
        names.sort_unstable();
        assert_eq!(names, ["call_counts", "calls", "skbs_seen"]);
        assert!(first.own_maps.get(".rodata").is_some());
        // A second load shares every map but its own .rodata.
        let second = PreparedObject::prepare(ebpf::EXAMPLE_TRACER, &globals, &mut shared, &|n| {
            n == ".rodata"
        })
        .unwrap();
        assert_eq!(shared.names().count(), 3);
        assert_ne!(
            first
                .own_maps
                .get(".rodata")
                .map(|m| format!("{:?}", m.fd())),
            second
                .own_maps
                .get(".rodata")
                .map(|m| format!("{:?}", m.fd()))
        );
        assert!(matches!(shared.take("skbs_seen"), Some(Map::LruHashMap(_))));
        assert!(matches!(
            shared.take("call_counts"),
            Some(Map::PerCpuHashMap(_))
        ));
        assert!(matches!(shared.take("calls"), Some(Map::RingBuf(_))));
        assert!(matches!(
            first.own_maps.take(".rodata"),
            Some(Map::Array(_))
        ));
        // The programs are fentry/fexit.
        assert!(first.trace_kind("on_entry").is_ok());
        assert!(matches!(
            first.trace_kind("no_such_program"),
            Err(ObjectError::NoProgram { .. })
        ));
    }
    assert!(
        integration::bpf_objects_left(&before).is_empty(),
        "maps or BTF left loaded"
    );
}

struct Targets {
    _ebpf: aya::Ebpf,
    fds: Vec<std::os::fd::OwnedFd>,
}

fn load_targets() -> Targets {
    let btf = aya::Btf::from_sys_fs().ok();
    let mut ebpf = EbpfLoader::new()
        .btf(btf.as_ref())
        .load(ebpf::TC_TARGET)
        .unwrap();
    let mut fds = Vec::new();
    for name in ["tc_target", "tc_other"] {
        let p: &mut SchedClassifier = ebpf.program_mut(name).unwrap().try_into().unwrap();
        p.load().unwrap();
        fds.push(p.fd().unwrap().as_fd().try_clone_to_owned().unwrap());
    }
    Targets { _ebpf: ebpf, fds }
}

#[test]
fn a_foreign_tracer_on_two_tc_programs_reads_the_right_values() {
    let test = "a_foreign_tracer_on_two_tc_programs_reads_the_right_values";
    let Some(f) = integration::need_fentry_on_bpf_prog(test) else {
        return;
    };
    let before = integration::bpf_objects();
    let targets = load_targets();
    let fds: Vec<BorrowedFd<'_>> = targets.fds.iter().map(|fd| fd.as_fd()).collect();
    let addrs: Vec<u64> = fds
        .iter()
        .map(|fd| {
            prog_addr::resolve_fd(*fd, Path::new(KALLSYMS))
                .unwrap()
                .addr
        })
        .collect();
    assert_ne!(addrs[0], addrs[1]);
    let mut ran = Vec::new();
    for s in [FuncIpStrategy::Helper, FuncIpStrategy::RewriteConstant] {
        if let Err(why) = FuncIp::runnable_in(&f, s, AttachContext::FentryBpfProg) {
            eprintln!("{test}: {s:?} cannot run here: {why}");
            continue;
        }
        let mut spec = spec(0x7a9);
        spec.force = Some(s);
        let mut tracing = trace(&f, &spec, &fds).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(tracing.targets.len(), 2);
        let mut calls = aya::maps::RingBuf::try_from(tracing.maps.take("calls").unwrap()).unwrap();
        for (i, fd) in fds.iter().enumerate() {
            for ethertype in [0x0800u16, 0x86DD] {
                let ret = probe::sys::prog_test_run(*fd, &frame(ethertype)).unwrap();
                let mut got = Vec::new();
                while let Some(item) = calls.next() {
                    got.push(Call::parse(&item).unwrap());
                }
                let entry = got.iter().find(|c| !c.exit);
                let exit = got.iter().find(|c| c.exit);
                let (Some(entry), Some(exit)) = (entry, exit) else {
                    panic!("{s:?}, target {i}, {ethertype:#x}: no entry and exit: {got:?}");
                };
                for c in [entry, exit] {
                    assert_eq!(c.ip, addrs[i], "{s:?}: the IP is not target {i}'s");
                    assert_eq!(c.len, 64, "{s:?}: skb->len by CO-RE");
                    assert_eq!(c.protocol, wire(ethertype), "{s:?}: skb->protocol by CO-RE");
                    assert_eq!(c.tag, 0x7a9, "{s:?}: the extra global");
                    assert_eq!(c.skb, entry.skb);
                }
                assert_eq!(exit.retval, u64::from(ret), "{s:?}: fexit's return value");
                assert_eq!(
                    got.len(),
                    2,
                    "{s:?}: one entry and one exit per run: {got:?}"
                );
            }
        }
        // The LRU hash holds what CO-RE read; the global subprogram counted every call.
        let seen: aya::maps::HashMap<_, u64, [u8; 8]> =
            aya::maps::HashMap::try_from(tracing.maps.take("skbs_seen").unwrap()).unwrap();
        let values: Vec<[u8; 8]> = seen.iter().map(|kv| kv.unwrap().1).collect();
        assert!(!values.is_empty());
        for v in &values {
            assert_eq!(u32::from_ne_bytes(v[..4].try_into().unwrap()), 64);
        }
        let counts: aya::maps::PerCpuHashMap<_, u32, u64> =
            aya::maps::PerCpuHashMap::try_from(tracing.maps.take("call_counts").unwrap()).unwrap();
        for exit in [0u32, 1] {
            let total: u64 = counts.get(&exit, 0).unwrap().iter().sum();
            assert_eq!(total, 4, "{s:?}: calls counted by the global subprogram");
        }
        for t in &tracing.targets {
            eprintln!("{test}: {} (id {}): {}", t.name, t.id, t.choice.why);
        }
        ran.push(s);
    }
    assert!(!ran.is_empty(), "no func_ip strategy could run");
    drop(targets);
    assert!(
        integration::bpf_objects_left(&before).is_empty(),
        "programs, maps or links left loaded"
    );
}
