//! `bpf-features`: what can BPF do on this kernel, and which path does each need take?
//!
//! Exit codes: 0 success (for `has`: supported), 1 not supported (`has` only), 2 unknown or
//! error — so shell scripts can branch on a single feature.
use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
};

use clap::{Parser, Subcommand};

mod trace_cmds;
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
    #[arg(long, global = true)]
    json: bool,
    /// Print a C header of #define HAVE_... lines (bpftool `feature probe macros` style).
    #[arg(long)]
    macros: bool,
    /// Also probe helpers that write to the kernel log when loaded (bpf_trace_printk,
    /// bpf_trace_vprintk, bpf_probe_write_user).
    #[arg(long, global = true)]
    full: bool,
    /// Also ask every kfunc of the kernel in every program type and attach context (a few
    /// hundred milliseconds more; `has kfunc` asks one).
    #[arg(long)]
    kfuncs: bool,
    /// Also count, over every function in the kernel's BTF, what fentry, fexit, kprobe,
    /// kretprobe and kprobe_multi can trace (reads kallsyms and tracefs; `can-trace F`
    /// asks one function).
    #[arg(long)]
    attach_points: bool,
    /// Force an answer: KIND:NAME=yes|no, e.g. helper:bpf_get_func_ip@kprobe=no or
    /// kfunc:bpf_task_from_pid@tracepoint=yes (also from the BPF_FEATURES_ASSUME
    /// environment variable, comma-separated).
    #[arg(long, global = true, value_name = "KEY=yes|no")]
    assume: Vec<String>,
    /// Probing threads (default: two per core; at most 64).
    #[arg(long, global = true, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=64))]
    threads: u16,
    /// Self-check: run every func_ip strategy this kernel allows against a throw-away
    /// program and confirm each reports its true address. Exit 0 agreed, 1 disagreed,
    /// 2 could not run.
    #[arg(long)]
    verify: bool,
    /// Keep answers in an on-disk cache for this kernel boot: `--cache` alone uses
    /// /var/cache/bpf-features/answers, `--cache=PATH` another file. Read at start,
    /// written at the end.
    #[arg(long, global = true, value_name = "PATH", num_args = 0..=1, require_equals = true, default_missing_value = probe::cache::DEFAULT_PATH)]
    cache: Option<std::path::PathBuf>,
    /// Answer from a recorded report (`bpf-features --json` output, plain or .gz) instead of
    /// this kernel: `has` questions and the report itself, every answer with origin
    /// `recorded` (what will my tracer do on 5.10, without 5.10?).
    #[arg(long, global = true, value_name = "REPORT.json")]
    profile: Option<std::path::PathBuf>,
    /// Probe through a BPF token (6.9+) created from the delegated bpffs mounted at PATH,
    /// as a tracer in a container would: what the token allows is probed, the rest is
    /// refused and answered unknown. Also from BPF_FEATURES_TOKEN.
    #[arg(long, global = true, value_name = "PATH", env = probe::token::TOKEN_ENV)]
    token: Option<std::path::PathBuf>,
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
    /// Can this kernel function be traced here, and how? Every mechanism's answer (fentry,
    /// fexit, kprobe, kretprobe, kprobe_multi) with its evidence, and the plan the
    /// `trace_function` need picks. Exit 0 a path runs, 1 not traceable, 2 unknown or error.
    CanTrace {
        /// The function's name as the kernel has it (`tcp_v4_rcv`, `finish_task_switch`,
        /// or a clone such as `finish_task_switch.isra.0`).
        function: String,
        /// Plan for entry only (no fexit/kretprobe needed).
        #[arg(long)]
        enter_only: bool,
        /// Force a strategy: fentry, kprobe, kprobe_clone, kprobe_multi_addr.
        #[arg(long)]
        strategy: Option<String>,
        /// Also attach and detach for real by every mechanism, and print what happened.
        #[arg(long)]
        verify_attach: bool,
    },
    /// The kernel's BTF functions with the strategy chosen for each; with --param, those
    /// taking that type among their first five parameters (pwru's selection).
    Functions {
        /// A parameter type as BTF spells it, e.g. 'struct sk_buff *'.
        #[arg(long)]
        param: Option<String>,
        /// List at most this many (the counts still cover all).
        #[arg(long)]
        limit: Option<usize>,
        /// Plan for entry only.
        #[arg(long)]
        enter_only: bool,
    },
    /// Recorded reports side by side: features × kernels, rows that differ first, and the
    /// strategy each kernel's answers pick. Nothing is probed.
    Compare {
        /// Reports (`bpf-features --json` output, plain or .gz), one per kernel.
        #[arg(required = true, value_name = "REPORT.json")]
        reports: Vec<std::path::PathBuf>,
        /// How to print the table (`--json` also selects json).
        #[arg(long, default_value = "text", value_parser = ["text", "markdown", "json"])]
        format: String,
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
        /// Attach context within the type: kprobe_multi, fentry, fexit, fentry_bpf_prog,
        /// fentry_kprobe_prog, fentry.s, lsm.s.
        #[arg(long)]
        attach: Option<String>,
        /// The sleepable variant of the context (fentry.s, lsm.s; syscall programs are
        /// always sleepable).
        #[arg(long)]
        sleepable: bool,
    },
    /// A kfunc, e.g. `has kfunc bpf_task_from_pid --prog-type tracepoint`. Without
    /// --prog-type: does the kernel have it (its BTF, or the table of known kfuncs)?
    Kfunc {
        name: String,
        /// Program type (libbpf name). Without it: does the kernel have the kfunc at all?
        #[arg(long)]
        prog_type: Option<String>,
        /// Attach context within the type: kprobe_multi, fentry, fexit, fentry_bpf_prog,
        /// fentry_kprobe_prog, fentry.s, lsm.s.
        #[arg(long)]
        attach: Option<String>,
        /// The sleepable variant of the context (fentry.s, lsm.s; syscall programs are
        /// always sleepable).
        #[arg(long)]
        sleepable: bool,
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

/// What BPF_FEATURES_STRATEGY forces (checked by [`options`] first; unset forces nothing).
fn forced() -> bpf_features::strategy::Forced {
    bpf_features::strategy::Forced::from_env().unwrap_or_default()
}

fn options(cli: &Cli) -> Result<Options, String> {
    if cli.json && cli.macros {
        return Err("--json and --macros are two renderings of the report: pick one".into());
    }
    bpf_features::strategy::Forced::from_env().map_err(|e| e.to_string())?;
    let mut assumptions = probe::assume::from_env()?;
    for a in &cli.assume {
        assumptions.extend(parse_assumptions(a, "--assume").map_err(|e| format!("--assume: {e}"))?);
    }
    Ok(Options {
        full: cli.full,
        kfuncs: cli.kfuncs,
        attach_points: cli.attach_points,
        assumptions,
        threads: cli.threads.into(),
        force_inferred: None,
        cache: cli.cache.clone(),
        // Created by `run`, for the commands that probe this kernel.
        token: None,
    })
}

/// The context `--prog-type` and `--attach` name; `None` without a program type (the
/// kernel's layer).
fn context(
    prog_type: &Option<String>,
    attach: &Option<String>,
    sleepable: bool,
) -> Result<Option<AttachContext>, String> {
    match prog_type {
        None if attach.is_some() => Err("--attach needs --prog-type".into()),
        None if sleepable => Err("--sleepable needs --prog-type".into()),
        None => Ok(None),
        Some(t) => {
            let t: ProgramType = t.parse().map_err(|e| format!("{e}"))?;
            let ctx = AttachContext::new(t, attach.as_deref()).map_err(|e| format!("{e}"))?;
            if !sleepable {
                return Ok(Some(ctx));
            }
            ctx.sleepable().map(Some).ok_or_else(|| {
                format!(
                    "{} has no sleepable programs: the sleepable contexts are \
                     tracing/fentry.s, lsm/lsm.s and syscall",
                    ctx.name()
                )
            })
        }
    }
}

fn has(f: &dyn FeatureSource, what: &What) -> Result<(String, probe::Answer), String> {
    Ok(match what {
        What::Helper {
            name,
            prog_type,
            attach,
            sleepable,
        } => {
            let h: Helper = name.parse().map_err(|e| format!("{e}"))?;
            match context(prog_type, attach, *sleepable)? {
                None => (format!("kernel knows {h}"), f.kernel_has_helper(h)),
                Some(ctx) => (format!("{h} in {}", ctx.name()), f.helper(ctx, h)),
            }
        }
        What::Kfunc {
            name,
            prog_type,
            attach,
            sleepable,
        } => {
            // A C identifier, as BTF names functions; anything else is no kfunc's name.
            let valid = !name.is_empty()
                && name.len() <= 128
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit();
            if !valid {
                return Err(format!(
                    "kfunc '{}' is not a function name (letters, digits and '_', at most 128)",
                    name.chars().take(64).collect::<String>()
                ));
            }
            match context(prog_type, attach, *sleepable)? {
                None => (format!("kernel has kfunc {name}"), f.kernel_has_kfunc(name)),
                Some(ctx) => (
                    format!("kfunc {name} in {}", ctx.name()),
                    f.kfunc(ctx, name),
                ),
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

/// Writes to stdout. A closed pipe (`bpf-features | head`) ends quietly, never in a
/// panic; any failure (a full disk, a closed pipe) makes the exit code 2, so a script never
/// takes a truncated report for a whole one.
fn emit(text: &str) -> Result<(), ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ExitCode::from(2)),
        Err(e) => {
            eprintln!("bpf-features: cannot write the output: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// `code` if the output was written, else the failure's code.
pub(crate) fn emitted(text: &str, code: ExitCode) -> ExitCode {
    emit(text).map_or_else(|failed| failed, |()| code)
}

fn verify(features: &Features, json: bool) -> ExitCode {
    let c = match bpf_features::tracer::calibrate(
        features,
        std::path::Path::new(bpf_features::tracer::KALLSYMS),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bpf-features: --verify could not set up its target: {e}");
            return ExitCode::from(2);
        }
    };
    let verdict = c.agrees();
    let code = ExitCode::from(match verdict {
        Some(true) => 0,
        Some(false) => 1,
        None => 2,
    });
    if json {
        let v = serde_json::json!({ "calibration": c, "agrees": verdict });
        emitted(&format!("{v}\n"), code)
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
        emitted(&out, code)
    }
}

/// Answers one `has` question and prints it. Exit 0 supported, 1 not supported, 2 unknown
/// or error (`finish` false: what followed the answer, such as saving the cache, failed).
fn ask(f: &dyn FeatureSource, what: &What, json: bool, finish: impl FnOnce() -> bool) -> ExitCode {
    let (q, a) = match has(f, what) {
        Ok(qa) => qa,
        Err(e) => {
            eprintln!("bpf-features: {e}");
            return ExitCode::from(2);
        }
    };
    let code = ExitCode::from(match (&a.support, finish()) {
        (_, false) => 2,
        (Support::Supported { .. }, _) => 0,
        (Support::Unsupported { .. }, _) => 1,
        (Support::Unknown { .. }, _) => 2,
    });
    if json {
        let v = serde_json::json!({ "question": q, "answer": a });
        emitted(&format!("{v}\n"), code)
    } else {
        emitted(&format!("{q}: {a}\n"), code)
    }
}

/// `compare`: the recorded reports as one table.
fn compare(paths: &[std::path::PathBuf], format: &str) -> ExitCode {
    let mut reports = Vec::new();
    for p in paths {
        match probe::Report::from_path(p) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("bpf-features: compare: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let table = bpf_features::compare::Table::of_reports(&reports);
    let text = match format {
        "json" => table.to_json().to_string() + "\n",
        "markdown" => table.to_markdown(),
        _ => table.to_text(),
    };
    emitted(&text, ExitCode::SUCCESS)
}

/// `--profile`: every answer from a recorded report, nothing loaded.
fn from_profile(cli: &Cli, path: &std::path::Path) -> ExitCode {
    if cli.verify || cli.cache.is_some() {
        eprintln!(
            "bpf-features: --verify and --cache work on this kernel; --profile answers from a \
             recorded one"
        );
        return ExitCode::from(2);
    }
    let report = match probe::Report::from_path(path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bpf-features: --profile {e}");
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        Some(Command::Has { what }) => return ask(&report, what, cli.json, || true),
        Some(Command::CanTrace { .. } | Command::Functions { .. }) => {
            eprintln!(
                "bpf-features: can-trace and functions read this kernel's BTF, kallsyms and \
                 tracefs; a recorded report (--profile) holds none of them"
            );
            return ExitCode::from(2);
        }
        _ => {}
    }
    let full = bpf_features::FullReport::new(report.clone(), &report, &forced());
    match render(cli, &full) {
        Ok(text) => emitted(&text, ExitCode::SUCCESS),
        Err(code) => code,
    }
}

/// The report as the command line asked for it: JSON, C macros, or text.
fn render(cli: &Cli, full: &bpf_features::FullReport) -> Result<String, ExitCode> {
    Ok(if cli.json {
        serde_json::to_string(full).map(|s| s + "\n").map_err(|e| {
            eprintln!("bpf-features: cannot serialise the report: {e}");
            ExitCode::from(2)
        })?
    } else if cli.macros {
        full.report.to_macros()
    } else {
        full.to_text(Style {
            color: !cli.no_color && std::io::stdout().is_terminal(),
        })
    })
}

/// The main thread's stack is whatever `ulimit -s` left it; the report runs on a thread
/// whose stack we choose, so a small limit cannot overflow it.
const STACK: usize = 16 << 20;

fn main() -> ExitCode {
    match std::thread::Builder::new()
        .name("bpf-features".into())
        .stack_size(STACK)
        .spawn(run)
    {
        Ok(t) => t.join().unwrap_or_else(|_| ExitCode::from(2)),
        Err(e) => {
            eprintln!(
                "bpf-features: cannot start ({e}): too little memory for a {} MiB stack; \
                 raise `ulimit -v`",
                STACK >> 20
            );
            ExitCode::from(2)
        }
    }
}

fn run() -> ExitCode {
    let cli = Cli::parse();
    let opts = match options(&cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bpf-features: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Compare { reports, format }) = &cli.command {
        return compare(reports, if cli.json { "json" } else { format });
    }
    if let Some(path) = &cli.profile {
        if cli.token.is_some() {
            eprintln!(
                "bpf-features: --token probes this kernel through a token; --profile answers \
                 from a recorded report: pick one"
            );
            return ExitCode::from(2);
        }
        return from_profile(&cli, path);
    }
    let mut opts = opts;
    if let Some(path) = &cli.token {
        let release = probe::KernelRelease::current().ok();
        match probe::token::Token::create(path, release.as_ref()) {
            Ok(t) => opts.token = Some(std::sync::Arc::new(t)),
            Err(e) => {
                eprintln!("bpf-features: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let features = Features::new(opts);
    if let Some(p) = features.cache_problem() {
        eprintln!("bpf-features: {p}");
    }
    // A cache that was asked for and cannot be written (a full disk, a read-only
    // directory) is an error: exit 2 after the output, whatever the answer.
    let save_cache = |f: &Features| match f.save_cache() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("bpf-features: cannot write the cache: {e}");
            false
        }
    };
    match &cli.command {
        Some(Command::Has { what }) => {
            return ask(&features, what, cli.json, || save_cache(&features));
        }
        Some(Command::CanTrace {
            function,
            enter_only,
            strategy,
            verify_attach,
        }) => {
            return trace_cmds::can_trace(
                &features,
                function,
                *enter_only,
                strategy.as_deref(),
                *verify_attach,
                cli.json,
            );
        }
        Some(Command::Functions {
            param,
            limit,
            enter_only,
        }) => {
            return trace_cmds::functions(
                &features,
                param.as_deref(),
                *limit,
                *enter_only,
                cli.json,
            );
        }
        _ => {}
    }
    if cli.verify {
        return verify(&features, cli.json);
    }
    if let Some(limit) = probe::kernel::address_space_limit()
        && limit < probe::kernel::REPORT_ADDRESS_SPACE
    {
        eprintln!(
            "bpf-features: the address-space limit (`ulimit -v`) is {} MiB; the full report \
             needs at least {} MiB: raise it (`ulimit -v unlimited`), or ask single \
             questions with `bpf-features has …`",
            limit >> 20,
            probe::kernel::REPORT_ADDRESS_SPACE >> 20
        );
        return ExitCode::from(2);
    }
    let report = features.probe_all();
    let saved = save_cache(&features);
    // A report some of whose answers a resource limit decided is no report of the kernel:
    // print it (it says which), and fail with the cause and the fix.
    let starved = report.starved();
    for (errno, count, fix) in &starved {
        eprintln!("bpf-features: {count} answers are unknown because of {errno}: {fix}");
    }
    let full = bpf_features::FullReport::new(report, &features, &forced());
    let text = match render(&cli, &full) {
        Ok(t) => t,
        Err(code) => return code,
    };
    emitted(
        &text,
        ExitCode::from(if saved && starved.is_empty() { 0 } else { 2 }),
    )
}
