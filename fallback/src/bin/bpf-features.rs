//! `bpf-features`: what can BPF do on this kernel, and which path does each need take?
//!
//! Exit codes: 0 success (for `has`: supported), 1 not supported (`has` only), 2 unknown or
//! error — so shell scripts can branch on a single feature.
use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use probe::{
    AttachContext, FeatureSource, Features, Helper, MapType, Misc, Options, ProgramType, Support,
    parse_assumptions, report::Style,
};

#[derive(Parser)]
#[command(
    name = "bpf-features",
    version,
    about = "What can BPF do on this kernel?"
)]
struct Cli {
    /// Print the full report as JSON (schema_version'd; every answer with its evidence).
    #[arg(long, global = true, conflicts_with = "macros")]
    json: bool,
    /// Print a C header of #define HAVE_... lines (bpftool `feature probe macros` style).
    #[arg(long)]
    macros: bool,
    /// Also probe helpers that write to the kernel log when loaded (bpf_trace_printk,
    /// bpf_trace_vprintk, bpf_probe_write_user).
    #[arg(long, global = true)]
    full: bool,
    /// Force an answer: KIND:NAME=yes|no, e.g. helper:bpf_get_func_ip@kprobe=no
    /// (also from the BPF_FEATURES_ASSUME environment variable, comma-separated).
    #[arg(long, global = true, value_name = "KEY=yes|no")]
    assume: Vec<String>,
    /// Probing threads (default: two per core).
    #[arg(long, global = true, default_value_t = 0)]
    threads: usize,
    /// Self-check: run every func_ip strategy this kernel allows against a throw-away
    /// program and confirm each reports its true address. Exit 0 agreed, 1 disagreed,
    /// 2 could not run.
    #[arg(long)]
    verify: bool,
    /// Keep answers in an on-disk cache for this kernel boot (default
    /// /var/cache/bpf-features/answers): read at start, written at the end.
    #[arg(long, global = true, value_name = "PATH", num_args = 0..=1, default_missing_value = probe::cache::DEFAULT_PATH)]
    cache: Option<std::path::PathBuf>,
    /// Never colour the text report.
    #[arg(long, global = true)]
    no_color: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Ask about one feature. Exit 0 supported, 1 not supported, 2 unknown or error.
    Has {
        #[command(subcommand)]
        what: What,
    },
}

#[derive(Subcommand)]
enum What {
    /// A helper, e.g. `has helper bpf_get_func_ip --prog-type kprobe`.
    Helper {
        name: String,
        /// Program type (libbpf name: kprobe, sched_cls, tracing, …). Without it: does the
        /// kernel know the helper at all?
        #[arg(long)]
        prog_type: Option<String>,
        /// Attach context within the type: kprobe_multi, fentry, fexit, fentry_bpf_prog.
        #[arg(long)]
        attach: Option<String>,
    },
    /// A program type, e.g. `has prog-type tracing`.
    #[command(alias = "prog_type")]
    ProgType { name: String },
    /// A map type, e.g. `has map-type ringbuf`.
    #[command(alias = "map_type")]
    MapType { name: String },
    /// A misc feature, e.g. `has misc bounded_loops`.
    Misc { name: String },
}

fn options(cli: &Cli) -> Result<Options, String> {
    let mut assumptions = Vec::new();
    if let Ok(env) = std::env::var(probe::features::ASSUME_ENV) {
        assumptions.extend(
            parse_assumptions(&env, probe::features::ASSUME_ENV)
                .map_err(|e| format!("{}: {e}", probe::features::ASSUME_ENV))?,
        );
    }
    for a in &cli.assume {
        assumptions.extend(parse_assumptions(a, "--assume").map_err(|e| format!("--assume: {e}"))?);
    }
    Ok(Options {
        full: cli.full,
        assumptions,
        threads: cli.threads,
        force_inferred: None,
        cache: cli.cache.clone(),
    })
}

fn has(f: &Features, what: &What) -> Result<(String, probe::Answer), String> {
    Ok(match what {
        What::Helper {
            name,
            prog_type,
            attach,
        } => {
            let h: Helper = name.parse().map_err(|e| format!("{e}"))?;
            match prog_type {
                None if attach.is_some() => {
                    return Err("--attach needs --prog-type".into());
                }
                None => (format!("kernel knows {h}"), f.kernel_has_helper(h)),
                Some(t) => {
                    let t: ProgramType = t.parse().map_err(|e| format!("{e}"))?;
                    let ctx =
                        AttachContext::new(t, attach.as_deref()).map_err(|e| format!("{e}"))?;
                    (format!("{h} in {}", ctx.name()), f.helper(ctx, h))
                }
            }
        }
        What::ProgType { name } => {
            let t: ProgramType = name.parse().map_err(|e| format!("{e}"))?;
            (format!("program type {t}"), f.program_type(t))
        }
        What::MapType { name } => {
            let t: MapType = name.parse().map_err(|e| format!("{e}"))?;
            (format!("map type {t}"), f.map_type(t))
        }
        What::Misc { name } => {
            let m: Misc = name.parse().map_err(|e| format!("{e}"))?;
            (m.name().to_string(), f.misc(m))
        }
    })
}

/// Writes to stdout; a closed pipe (`bpf-features | head`) ends quietly, never in a panic.
fn emit(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            eprintln!("bpf-features: cannot write the output: {e}");
            false
        }
    }
}

fn verify(features: &Features, json: bool) -> ExitCode {
    let c = match fallback::tracer::calibrate(
        features,
        std::path::Path::new(fallback::tracer::KALLSYMS),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bpf-features: --verify could not set up its target: {e}");
            return ExitCode::from(2);
        }
    };
    let verdict = c.agrees();
    if json {
        let v = serde_json::json!({ "calibration": c, "agrees": verdict });
        emit(&format!("{v}\n"));
    } else {
        let mut out = format!(
            "target address {:#x} (from {:?})\n",
            c.target_addr, c.target_addr_source
        );
        for r in &c.runs {
            match &r.error {
                None => out.push_str(&format!(
                    "  {:<17} reported {}\n",
                    r.strategy,
                    r.reported
                        .iter()
                        .map(|ip| format!("{ip:#x}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Some(e) => out.push_str(&format!("  {:<17} could not run: {e}\n", r.strategy)),
            }
        }
        out.push_str(match verdict {
            Some(true) => "every strategy that ran reported the target's address\n",
            Some(false) => "MISMATCH: a strategy reported another address\n",
            None => "no strategy could run here\n",
        });
        emit(&out);
    }
    ExitCode::from(match verdict {
        Some(true) => 0,
        Some(false) => 1,
        None => 2,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = match options(&cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bpf-features: {e}");
            return ExitCode::from(2);
        }
    };
    let features = Features::new(opts);
    if let Some(p) = features.cache_problem() {
        eprintln!("bpf-features: {p}");
    }
    let save_cache = |f: &Features| {
        if let Err(e) = f.save_cache() {
            eprintln!("bpf-features: cannot write the cache: {e}");
        }
    };
    if let Some(Command::Has { what }) = &cli.command {
        return match has(&features, what) {
            Ok((q, a)) => {
                save_cache(&features);
                if cli.json {
                    let v = serde_json::json!({ "question": q, "answer": a });
                    emit(&format!("{v}\n"));
                } else {
                    emit(&format!("{q}: {a}\n"));
                }
                ExitCode::from(match a.support {
                    Support::Supported { .. } => 0,
                    Support::Unsupported { .. } => 1,
                    Support::Unknown { .. } => 2,
                })
            }
            Err(e) => {
                eprintln!("bpf-features: {e}");
                ExitCode::from(2)
            }
        };
    }
    if cli.verify {
        return verify(&features, cli.json);
    }
    let report = features.probe_all();
    save_cache(&features);
    let full = fallback::FullReport::new(report, &features);
    if cli.json {
        match serde_json::to_string(&full) {
            Ok(s) => {
                emit(&(s + "\n"));
            }
            Err(e) => {
                eprintln!("bpf-features: cannot serialise the report: {e}");
                return ExitCode::from(2);
            }
        }
    } else if cli.macros {
        emit(&full.report.to_macros());
    } else {
        let color = !cli.no_color && std::io::stdout().is_terminal();
        emit(&full.to_text(Style { color }));
    }
    ExitCode::SUCCESS
}
