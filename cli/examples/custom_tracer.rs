//! A tracer with its own BPF object on the library's generic path: what a project that
//! depends on `bpf-features` writes. The object is ebpf/src/bpf/example_tracer.bpf.c (its
//! own globals `cfg_want_helper` / `cfg_traced_addr` / `cfg_tag`, an LRU and a per-CPU
//! hash, a global subprogram, skb->len and skb->protocol by CO-RE); a real tracer would
//! `include_bytes!` its own. Every tc program loaded (or the one given) is traced at once,
//! one event stream for all.
//!
//!     cargo run --release --example custom_tracer -- [--id N]... [--strategy helper|rewrite_constant] [--count N]
use std::{os::fd::AsFd, time::Duration};

use bpf_features::{
    aya::maps::RingBuf,
    func_ip::FuncIpStrategy,
    probe::{Features, ProgramType, sys},
    trace::{FuncIpGlobalNames, TraceSpec, trace},
};

/// Trace tc programs with a tracer's own fentry/fexit object.
#[derive(clap::Parser)]
struct Args {
    /// Trace the program with this id (repeat it; default: every tc program).
    #[arg(long)]
    id: Vec<u32>,
    /// Force a func_ip strategy instead of the one the kernel's answers pick.
    #[arg(long, value_name = "helper|rewrite_constant")]
    strategy: Option<FuncIpStrategy>,
    /// Stop after this many events.
    #[arg(long, default_value_t = u64::MAX)]
    count: u64,
}

fn main() {
    let args: Args = clap::Parser::parse();
    let ids = if args.id.is_empty() {
        sys::object_ids(sys::ObjKind::Prog)
            .unwrap_or_else(|e| fail(&format!("cannot list programs: {e}")))
            .into_iter()
            .filter(|id| {
                sys::prog_fd_by_id(*id)
                    .and_then(|fd| sys::prog_info(fd.as_fd()))
                    .is_ok_and(|i| i.prog_type == ProgramType::SCHED_CLS.0)
            })
            .collect()
    } else {
        args.id
    };
    if ids.is_empty() {
        fail("no tc program is loaded (load one, or pass --id)");
    }
    let fds: Vec<_> = ids
        .iter()
        .map(|id| sys::prog_fd_by_id(*id).unwrap_or_else(|e| fail(&format!("program {id}: {e}"))))
        .collect();
    let targets: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();

    // The object's own names for the strategy's globals, and one more global of its own.
    let mut spec = TraceSpec::new(ebpf::EXAMPLE_TRACER, &["on_entry", "on_exit"])
        .global("cfg_tag", &1u32.to_ne_bytes());
    spec.globals = FuncIpGlobalNames {
        use_helper: "cfg_want_helper".into(),
        target_addr: "cfg_traced_addr".into(),
    };
    spec.force = args.strategy;

    let mut tracing = trace(Features::get(), &spec, &targets).unwrap_or_else(|e| {
        // The error names the target and keeps its cause: errno, verifier line, symbol.
        let mut text = e.to_string();
        let mut cur = std::error::Error::source(&e);
        while let Some(s) = cur {
            text.push_str(&format!(": {s}"));
            cur = s.source();
        }
        fail(&text)
    });
    for t in &tracing.targets {
        println!(
            "tracing {} (id {}) with {}; why: {}",
            t.name, t.id, t.choice.strategy, t.choice.why
        );
    }
    let map = tracing
        .maps
        .take("calls")
        .expect("the object has a calls ring buffer");
    let mut calls = RingBuf::try_from(map).unwrap_or_else(|e| fail(&e.to_string()));
    let mut seen = 0;
    while seen < args.count {
        while let Some(item) = calls.next() {
            let Some(c) = ebpf::Call::parse(&item) else {
                continue;
            };
            println!(
                "ip={:#x} skb={:#x} len={} protocol={:#06x} {}",
                c.ip,
                c.skb,
                c.len,
                u16::from_be(c.protocol),
                if c.exit {
                    format!("exit ret={}", c.retval as i64)
                } else {
                    "entry".into()
                }
            );
            seen += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("custom_tracer: {msg}");
    std::process::exit(1);
}
