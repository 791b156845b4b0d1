//! A pwru `--filter-trace-tc`-style tracer built on the framework: attach to every tc
//! (sched_cls) program loaded on the system, or to one by id, and print one line per call.
//!
//!     cargo run --release --example tc_tracer -- [--id N] [--strategy helper|rewrite_constant] [--count N]
use std::{os::fd::AsFd, time::Duration};

use bpf_features::tracer::{Tracer, TracerOptions};
use probe::{Features, ProgramType};

/// Trace tc (sched_cls) programs with fentry/fexit, one line per call.
#[derive(clap::Parser)]
struct Args {
    /// Trace only the program with this id (default: every tc program).
    #[arg(long)]
    id: Option<u32>,
    /// Force a func_ip strategy instead of the one the kernel's answers pick.
    #[arg(long, value_name = "helper|rewrite_constant")]
    strategy: Option<bpf_features::func_ip::FuncIpStrategy>,
    /// Stop after this many events.
    #[arg(long, default_value_t = u64::MAX)]
    count: u64,
}

fn main() {
    let Args {
        id,
        strategy: force,
        count,
    } = clap::Parser::parse();
    let ids = match id {
        Some(id) => vec![id],
        None => probe::sys::object_ids(probe::sys::ObjKind::Prog)
            .unwrap_or_else(|e| fail(&format!("cannot list programs: {e}")))
            .into_iter()
            .filter(|id| {
                probe::sys::prog_fd_by_id(*id)
                    .and_then(|fd| probe::sys::prog_info(fd.as_fd()))
                    .is_ok_and(|i| i.prog_type == ProgramType::SCHED_CLS.0)
            })
            .collect(),
    };
    if ids.is_empty() {
        fail("no tc program is loaded (load one, or pass --id)");
    }
    let features = Features::get();
    let opts = TracerOptions {
        force,
        ..Default::default()
    };
    let mut tracers = Vec::new();
    for id in ids {
        let fd =
            probe::sys::prog_fd_by_id(id).unwrap_or_else(|e| fail(&format!("program {id}: {e}")));
        match Tracer::attach(features, fd.as_fd(), &opts) {
            Ok(t) => {
                println!(
                    "tracing {} (id {id}) with {}; why: {}",
                    t.target_name, t.choice.strategy, t.choice.why
                );
                tracers.push(t);
            }
            Err(e) => eprintln!("cannot trace program {id}: {e}"),
        }
    }
    if tracers.is_empty() {
        fail("nothing could be traced");
    }
    let mut seen = 0;
    while seen < count {
        for t in &mut tracers {
            for e in t.events() {
                let what = if e.kind == ebpf::EVENT_EXIT {
                    format!("exit  ret={}", e.retval as i64)
                } else {
                    "entry".into()
                };
                println!(
                    "{:<24} ip={:#x} skb={:#x} len={} {what}",
                    t.target_name, e.ip, e.skb, e.skb_len
                );
                seen += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("tc_tracer: {msg}");
    std::process::exit(2);
}
