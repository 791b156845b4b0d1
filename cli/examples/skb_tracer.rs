//! A pwru-style skb tracer on the `trace_function` need: it traces the kernel functions
//! that take a `struct sk_buff *` among their first five parameters (as `bpf-features
//! functions --param 'struct sk_buff *'` lists them), each by the mechanism planned for it
//! on this kernel (fentry, kprobe, kprobe on its clone, kprobe_multi by address), sends
//! UDP packets over loopback with a socket mark, and prints which functions saw them.
//! One function that cannot be traced is reported and skipped, never fails the rest.
//!
//!     cargo run --release --example skb_tracer -- [--max N] [--prefix ip_,udp_] [--strategy S]
//!
//! Exit 0 when some function saw a packet, 1 when none did, 2 on an error.
use std::{net::UdpSocket, os::fd::AsRawFd, process::ExitCode};

use bpf_features::{
    attach_kernel::attach_plan,
    aya::maps::Array,
    object::{Maps, PreparedObject},
    probe::{
        Features, Options,
        attach_points::{AttachPoints, Mechanism},
    },
    strategy::Need,
    trace_function::{self, TraceFunction, Want},
};

const SKB: &str = "struct sk_buff *";

/// Trace the functions that take an skb, each by its planned mechanism.
#[derive(clap::Parser)]
struct Args {
    /// Trace at most this many functions (each is one program load).
    #[arg(long, default_value_t = 32)]
    max: usize,
    /// Keep only functions whose names start with one of these (comma-separated), as
    /// pwru's --filter-func narrows its set.
    #[arg(long, value_delimiter = ',')]
    prefix: Vec<String>,
    /// Force a strategy: fentry, kprobe, kprobe_clone, kprobe_multi_addr.
    #[arg(long)]
    strategy: Option<String>,
    /// The socket mark the traced packets carry (SO_MARK; needs CAP_NET_ADMIN).
    #[arg(long, default_value_t = 0x5eed)]
    mark: u32,
}

fn main() -> ExitCode {
    let args: Args = clap::Parser::parse();
    let features = Features::new(Options::default());
    let ap = AttachPoints::read_for(&features);
    for p in ap.sources.problems() {
        eprintln!("note: {p}");
    }
    // With --prefix, the functions of the first prefix come first: the cap keeps them.
    let rank = |n: &str| args.prefix.iter().position(|p| n.starts_with(p.as_str()));
    let mut names: Vec<&str> = trace_function::functions_with_param(&ap, SKB)
        .into_iter()
        .filter(|n| args.prefix.is_empty() || rank(n).is_some())
        .collect();
    names.sort_by_key(|n| rank(n));
    let selected = names.len();
    names.truncate(args.max);
    let set = trace_function::plan_set(
        &ap,
        names.iter().copied(),
        Want::ENTER,
        args.strategy.as_deref(),
    );
    for (f, why) in &set.refused {
        println!("skip  {f}: {why}");
    }

    let mut shared = Maps::default();
    let mut traced = Vec::new();
    let mut attachments = Vec::new();
    for plan in set.groups.values().flatten() {
        let index = traced.len() as u32;
        // The skb's position among the first five parameters picks the program.
        let Some(pos) = ap
            .params(&plan.function)
            .and_then(|p| p.iter().take(5).position(|t| t == SKB))
        else {
            continue;
        };
        let globals = vec![
            ("func_index".to_string(), index.to_ne_bytes().to_vec()),
            ("want_mark".to_string(), args.mark.to_ne_bytes().to_vec()),
        ];
        let obj = match PreparedObject::prepare(ebpf::SKB_TRACER, &globals, &mut shared, &|m| {
            m == ".rodata"
        }) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("bpf-features skb_tracer: cannot prepare the object: {e}");
                return ExitCode::from(2);
            }
        };
        let fentry = format!("skb_fentry_{}", pos + 1);
        let kprobe = format!("skb_kprobe_{}", pos + 1);
        let programs = |m: Mechanism, _on_return: bool| match m {
            Mechanism::Fentry => Some(fentry.as_str()),
            Mechanism::Kprobe | Mechanism::KprobeMulti => Some(kprobe.as_str()),
            Mechanism::Fexit | Mechanism::Kretprobe => None,
        };
        match attach_plan(&obj, &ap, plan, programs) {
            Ok(a) => {
                traced.push(plan);
                attachments.push((obj, a));
            }
            Err(e) => println!("fail  {}: {e}", plan.function),
        }
    }
    if traced.is_empty() {
        eprintln!("bpf-features skb_tracer: no function could be traced ({selected} selected)");
        return ExitCode::from(2);
    }

    if let Err(e) = send_marked(args.mark) {
        eprintln!("bpf-features skb_tracer: cannot send the packets: {e}");
        return ExitCode::from(2);
    }
    let Some(hits) = shared.take("hits") else {
        eprintln!("bpf-features skb_tracer: the object has no `hits` map");
        return ExitCode::from(2);
    };
    let hits: Array<_, u64> = match Array::try_from(hits) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("bpf-features skb_tracer: `hits`: {e}");
            return ExitCode::from(2);
        }
    };
    let mut saw = 0;
    for (i, plan) in traced.iter().enumerate() {
        let n = hits.get(&(i as u32), 0).unwrap_or(0);
        saw += usize::from(n > 0);
        println!(
            "{:<5} {:<36} {:<18} {:<14} on {}",
            if n > 0 { "HIT" } else { "-" },
            plan.function,
            TraceFunction::name(plan.choice.strategy),
            plan.mechanisms
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join("+"),
            if plan.addrs.is_empty() {
                plan.symbols.join(",")
            } else {
                format!("{} addresses", plan.addrs.len())
            }
        );
    }
    println!(
        "{saw} of {} traced functions saw the marked packets ({selected} selected, {} with no path)",
        traced.len(),
        set.refused.len()
    );
    drop(attachments);
    if saw > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Sends a few UDP datagrams to a local socket, marked with `mark`.
fn send_marked(mark: u32) -> std::io::Result<()> {
    let rx = UdpSocket::bind("127.0.0.1:0")?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    // SAFETY: setsockopt on a socket we own, with a u32 option value.
    let r = unsafe {
        libc::setsockopt(
            tx.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&mark as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    let mut buf = [0u8; 64];
    for _ in 0..4 {
        tx.send_to(b"bpf-features skb_tracer", rx.local_addr()?)?;
        rx.recv(&mut buf)?;
    }
    Ok(())
}
