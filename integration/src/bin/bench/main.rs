//! bench: how fast probing and address resolution are, measured side by side in one run
//! against bpftool and the kernel's own floor. Prints every figure; `scripts/bench.sh`
//! runs it. Needs root. `BENCH_RUNS` sets the repetitions of the big measurements (10).
mod measure;

use std::{
    fs,
    io::{self, BufReader, Read},
    os::fd::AsFd,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use fallback::kallsyms::{self, Target};
use probe::{
    AttachContext, FeatureSource, Features, Helper, MapType, Misc, Options, ProgramType, insn,
    sys::{self, ProgLoad},
};

use measure::*;

/// Prints every speed and memory figure beside its target.
#[derive(clap::Parser)]
struct Args {
    /// Repetitions per figure.
    #[arg(long, env = "BENCH_RUNS", default_value_t = 10)]
    runs: usize,
    /// Only the attach-point figure (section 6), e.g. in a VM with tracefs.
    #[arg(long)]
    only_attach_points: bool,
    #[command(subcommand)]
    child: Option<Child>,
}

/// The bench's own children (measured in a fresh process each).
#[derive(clap::Subcommand)]
enum Child {
    /// Run a command and report its peak RSS.
    #[command(hide = true)]
    Rss {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
    /// Load and resolve programs through kallsyms, for the memory figure.
    #[command(hide = true, name = "kallsyms-child")]
    KallsymsChild,
}

fn main() {
    let args: Args = clap::Parser::parse();
    match args.child {
        Some(Child::Rss { cmd }) => return rss_child(&cmd),
        Some(Child::KallsymsChild) => return kallsyms_child(),
        None => {}
    }
    if let Some(why) = integration::bpf_unavailable() {
        eprintln!("bench: BPF is not available here: {why}");
        std::process::exit(2);
    }
    let runs = args.runs;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let ours_bin = root.join("target/release/bpf-features");
    let ours = ours_bin.to_str().expect("path");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let release = probe::KernelRelease::current()
        .map(|r| r.raw)
        .unwrap_or_default();
    println!("bench on kernel {release}, {cpus} cores, {runs} runs per figure\n");
    let mut rows = Vec::new();
    if args.only_attach_points {
        attach_points(&mut rows, runs);
        return;
    }

    // 5 first: RUSAGE_CHILDREN must see only the measured command.
    println!("Memory");
    let rss = peak_rss_kib(&[ours, "--json"]);
    row(
        &mut rows,
        "peak RSS of bpf-features --json",
        format!("{:.1} MiB", rss as f64 / 1024.0),
        "< 20 MiB",
        Some(rss < 20 * 1024),
    );
    let me = std::env::current_exe().expect("own path");
    let rss_k = peak_rss_kib(&[me.to_str().expect("path"), "kallsyms-child"]);
    row(
        &mut rows,
        "peak RSS of loading and resolving 100 programs by kallsyms",
        format!("{:.1} MiB", rss_k as f64 / 1024.0),
        "",
        None,
    );

    println!("\n1. Full probe against bpftool (subprocesses, alternating, median)");
    let report: probe::Report = {
        let out = Command::new(ours)
            .arg("--json")
            .output()
            .expect("run bpf-features");
        serde_json::from_slice(&out.stdout).expect("report JSON")
    };
    let our_pairs = answered_pairs(&report);
    let our_conclusive = count_pairs(&report);
    let kfunc_answers: usize = Command::new(ours)
        .args(["--json", "--kfuncs"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<probe::Report>(&o.stdout).ok())
        .map_or(0, |r| r.kfuncs.iter().map(|k| k.answers.len()).sum());
    let (mut a, mut b, mut k) = (Vec::new(), Vec::new(), Vec::new());
    let tool = bpftool();
    for _ in 0..runs {
        a.push(time_cmd(ours, &["--json"]));
        k.push(time_cmd(ours, &["--json", "--kfuncs"]));
        if let Some(t) = &tool {
            b.push(time_cmd(t, &["feature", "probe", "kernel", "-j"]));
        }
    }
    let ours_t = median(a);
    let kfuncs_t = median(k);
    row(
        &mut rows,
        format!("bpf-features --json ({our_pairs} pairs answered, {our_conclusive} conclusive)"),
        ms(ours_t),
        "",
        None,
    );
    row(
        &mut rows,
        format!("bpf-features --json --kfuncs (and {kfunc_answers} kfunc answers)"),
        ms(kfuncs_t),
        "",
        None,
    );
    match &tool {
        Some(t) => {
            let out = Command::new(t)
                .args(["feature", "probe", "kernel", "-j"])
                .output()
                .expect("bpftool");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let lists = v["helpers"].as_object().cloned().unwrap_or_default();
            // bpftool probes every helper id its libbpf knows, for every program type it lists.
            let max_id = lists
                .values()
                .flat_map(|l| l.as_array().cloned().unwrap_or_default())
                .filter_map(|h| h.as_str().and_then(|n| n.parse::<Helper>().ok()))
                .map(|h| h.id())
                .max()
                .unwrap_or(0) as usize;
            let bt_pairs = lists.len() * max_id;
            let bt_t = median(b);
            row(
                &mut rows,
                format!(
                    "bpftool feature probe kernel ({bt_pairs} pairs: {} types × {max_id} ids)",
                    lists.len()
                ),
                ms(bt_t),
                "",
                None,
            );
            let ratio = ours_t.as_secs_f64() / bt_t.as_secs_f64();
            row(
                &mut rows,
                "ratio ours / bpftool",
                format!("{ratio:.2}"),
                "<= 0.5, with >= the pairs",
                Some(ratio <= 0.5 && our_pairs >= bt_pairs),
            );
            let ratio = kfuncs_t.as_secs_f64() / bt_t.as_secs_f64();
            row(
                &mut rows,
                "ratio ours with every kfunc in every context / bpftool",
                format!("{ratio:.2}"),
                "<= 1.0",
                Some(ratio <= 1.0),
            );
        }
        None => println!("  bpftool not found: scripts/setup.sh installs it"),
    }

    println!("\n2. The floor: minimal loads, one thread");
    let n = 2000;
    let ret0 = insn::return_zero();
    let call = insn::call_helper(Helper::GET_CURRENT_PID_TGID.id());
    let neg = insn::call_helper(Helper::GET_FUNC_IP.id());
    let f_ret0 = floor_loads(n, &ProgLoad::new(ProgramType::SOCKET_FILTER.0, &ret0), None);
    let f_call = floor_loads(n, &ProgLoad::new(ProgramType::KPROBE.0, &call), None);
    let neg_load = ProgLoad::new(ProgramType::SOCKET_FILTER.0, &neg);
    let f_neg = floor_loads(n, &neg_load, None);
    let f_neg_trace = floor_loads(n, &neg_load, Some(sys::LogLevel::Instructions));
    let f_neg_log = floor_loads(n, &neg_load, Some(sys::LogLevel::Stats));
    row(
        &mut rows,
        "load `r0 = 0; exit` (socket_filter)",
        us(f_ret0),
        "",
        None,
    );
    row(
        &mut rows,
        "load `call bpf_get_current_pid_tgid; exit` (kprobe)",
        us(f_call),
        "",
        None,
    );
    row(
        &mut rows,
        "load a refused helper, no log",
        us(f_neg),
        "",
        None,
    );
    row(
        &mut rows,
        "load a refused helper, with the instruction trace (log level 1)",
        us(f_neg_trace),
        "",
        None,
    );
    row(
        &mut rows,
        "load a refused helper, with refusal and statistics (level 4, as probes)",
        us(f_neg_log),
        "",
        None,
    );
    let single = |threads| {
        let mut t = Vec::new();
        let mut report = None;
        for _ in 0..runs {
            let f = Features::new(Options {
                threads,
                ..Default::default()
            });
            let s = Instant::now();
            let r = f.probe_all();
            t.push(s.elapsed());
            report = Some(r);
        }
        (median(t), report.expect("a report"))
    };
    let (t1, r1) = single(1);
    let (tn, rn) = single(0);
    let floor = f_call.as_secs_f64() * r1.bpf_syscalls as f64;
    row(
        &mut rows,
        format!("our full probe, 1 thread ({} bpf() calls)", r1.bpf_syscalls),
        ms(t1),
        "",
        None,
    );
    let ratio = t1.as_secs_f64() / floor;
    row(
        &mut rows,
        "  ratio to calls × floor-per-load",
        format!("{ratio:.2}"),
        "<= 1.3",
        Some(ratio <= 1.3),
    );
    row(
        &mut rows,
        format!(
            "our full probe, default threads ({} on {cpus} cores)",
            rn.threads
        ),
        ms(tn),
        "",
        None,
    );
    let speedup = t1.as_secs_f64() / tn.as_secs_f64();
    row(
        &mut rows,
        "  parallel speed-up",
        format!("{speedup:.2}×"),
        ">= 1.6 on 2 cores",
        Some(speedup >= 1.6),
    );

    println!("\n3. One question (bpf_get_func_ip in kprobe)");
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let s = Instant::now();
        let f = Features::new(Options::default());
        let _ = f.helper(AttachContext::KPROBE, Helper::GET_FUNC_IP);
        cold.push(s.elapsed());
        let s = Instant::now();
        let _ = f.helper(AttachContext::KPROBE, Helper::GET_FUNC_IP);
        warm.push(s.elapsed());
    }
    row(
        &mut rows,
        "cold (new Features, first question)",
        us(median(cold)),
        "",
        None,
    );
    row(&mut rows, "warm (cached)", us(median(warm)), "", None);
    // A kfunc question from process start, as a tracer's build script asks it (exit 0 or 1).
    for args in [
        &["has", "kfunc", "bpf_task_from_pid"][..],
        &[
            "has",
            "kfunc",
            "bpf_task_from_pid",
            "--prog-type",
            "tracepoint",
        ][..],
    ] {
        let t = median((0..runs.max(5)).map(|_| time_answer(ours, args)).collect());
        row(
            &mut rows,
            format!("cold `bpf-features {}` (process)", args.join(" ")),
            ms(t),
            "<= 15 ms",
            Some(t <= Duration::from_millis(15)),
        );
    }

    println!("\n4. Address resolution");
    let progs = load_programs(100);
    let targets: Vec<Target> = progs.iter().map(|(_, t)| t.clone()).collect();
    let mut read = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    for _ in 0..runs {
        let s = Instant::now();
        let mut f =
            BufReader::with_capacity(1 << 16, fs::File::open("/proc/kallsyms").expect("kallsyms"));
        while f.read(&mut buf).expect("read") > 0 {}
        read.push(s.elapsed());
    }
    let floor = median(read);
    row(
        &mut rows,
        "read /proc/kallsyms to the end (floor)",
        ms(floor),
        "",
        None,
    );
    let mut one = Duration::ZERO;
    for k in [1usize, 10, 100] {
        let mut t = Vec::new();
        for _ in 0..runs {
            let s = Instant::now();
            let found = kallsyms::resolve_file("/proc/kallsyms", &targets[..k]).expect("resolve");
            t.push(s.elapsed());
            assert!(found.values().all(|v| v.len() == 1));
        }
        let m = median(t);
        if k == 1 {
            one = m;
        }
        let ratio = m.as_secs_f64() / floor.as_secs_f64();
        row(
            &mut rows,
            format!("resolve {k} programs through kallsyms (one pass)"),
            ms(m),
            "<= 1.2× the floor",
            Some(ratio <= 1.2),
        );
        row(
            &mut rows,
            "  ratio to the floor",
            format!("{ratio:.2}"),
            "",
            None,
        );
    }
    let s = Instant::now();
    for (fd, _) in &progs {
        let i = sys::prog_info(fd.as_fd()).expect("info");
        assert!(i.jited_ksyms.first().is_some_and(|a| *a != 0));
    }
    let per = s.elapsed() / progs.len() as u32;
    row(
        &mut rows,
        "resolve 1 program through jited_ksyms",
        us(per),
        "",
        None,
    );
    let speed = one.as_secs_f64() / per.as_secs_f64();
    row(
        &mut rows,
        "  kallsyms scan / jited_ksyms",
        format!("{speed:.0}×"),
        ">= 100×",
        Some(speed >= 100.0),
    );
    drop(progs);

    println!("\n5b. Persisted cache: a tracer's 10 questions at start");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("answers");
    let f = Features::new(Options {
        cache: Some(path.clone()),
        ..Default::default()
    });
    let _ = f.probe_all();
    f.save_cache().expect("save the cache");
    let questions = |f: &Features| {
        let _ = f.helper(AttachContext::KPROBE, Helper::GET_FUNC_IP);
        let _ = f.helper(AttachContext::FentryBpfProg, Helper::GET_FUNC_IP);
        let _ = f.helper(AttachContext::KPROBE, Helper::PROBE_READ_KERNEL);
        let _ = f.helper(AttachContext::KPROBE, Helper::GET_ATTACH_COOKIE);
        let _ = f.map_type(MapType::RINGBUF);
        let _ = f.map_type(MapType::PERF_EVENT_ARRAY);
        let _ = f.program_type(ProgramType::KPROBE);
        let _ = f.misc(Misc::KprobeMulti);
        let _ = f.misc(Misc::RodataFrozen);
        let _ = f.misc(Misc::BpfCookie);
    };
    let mut t = Vec::new();
    for _ in 0..runs.max(10) {
        let before = sys::syscall_count();
        let s = Instant::now();
        let f = Features::new(Options {
            cache: Some(path.clone()),
            ..Default::default()
        });
        questions(&f);
        t.push(s.elapsed());
        assert!(f.cache_problem().is_none(), "{:?}", f.cache_problem());
        // Conclusive answers come from the file; unknown ones (EPERM here) are asked again.
        let _ = before;
    }
    let warm = median(t);
    row(
        &mut rows,
        "warm start from the cache file + 10 questions",
        us(warm),
        "< 2 ms",
        Some(warm < Duration::from_millis(2)),
    );
    let mut t = Vec::new();
    for _ in 0..runs.min(5) {
        let s = Instant::now();
        let f = Features::new(Options::default());
        questions(&f);
        t.push(s.elapsed());
    }
    row(
        &mut rows,
        "the same without a cache",
        us(median(t)),
        "",
        None,
    );

    println!("\n6. Attach points: every function of the running kernel resolved");
    attach_points(&mut rows, runs.min(5));

    let failed: Vec<&Row> = rows.iter().filter(|r| r.met == Some(false)).collect();
    println!(
        "\n{} targets met, {} missed{}",
        rows.iter().filter(|r| r.met == Some(true)).count(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                failed
                    .iter()
                    .map(|r| format!("{} ({} vs {})", r.what, r.value, r.target))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
    );
    let _ = io::Write::flush(&mut io::stdout());
}

/// Resolving every BTF function (all five mechanisms) against reading the three sources it
/// needs (vmlinux and module BTF, available_filter_functions, /proc/kallsyms) into memory,
/// one after the other: the floor any resolver pays.
fn attach_points(rows: &mut Vec<Row>, runs: usize) {
    use probe::attach_points::{AttachPoints, KernelMechanisms, SourcePaths, Sources};
    let f = Features::new(Options::default());
    let paths = SourcePaths::system(f.system());
    let Some(ftrace) = paths.ftrace.clone().filter(|p| fs::read(p).is_ok()) else {
        println!("  available_filter_functions is not readable here: no figure");
        return;
    };
    // Each source's raw read: BTF (vmlinux and modules), ftrace, kallsyms.
    let read_all = || {
        let mut t = [Duration::ZERO; 3];
        let s = Instant::now();
        std::hint::black_box(fs::read(paths.btf_dir.join("vmlinux")).map_or(0, |b| b.len()));
        if let Ok(d) = fs::read_dir(&paths.btf_dir) {
            for e in d.flatten() {
                if e.file_name() != "vmlinux" {
                    std::hint::black_box(fs::read(e.path()).map_or(0, |b| b.len()));
                }
            }
        }
        t[0] = s.elapsed();
        for (i, p) in [(1, &ftrace), (2, &paths.kallsyms)] {
            let s = Instant::now();
            std::hint::black_box(fs::read(p).map_or(0, |b| b.len()));
            t[i] = s.elapsed();
        }
        t
    };
    let kernel = KernelMechanisms::from_source(&f);
    let (mut read, mut resolve) = (Vec::new(), Vec::new());
    let mut functions = 0;
    let mut parts = Vec::new();
    let mut reads = Vec::new();
    for _ in 0..runs.max(1) {
        let s = Instant::now();
        let each = read_all();
        read.push(s.elapsed());
        reads.push(each);
        let s = Instant::now();
        let sources = Sources::read(&paths);
        let t_sources = s.elapsed();
        let timings = sources.timings;
        let ap = AttachPoints::new(sources, kernel.clone());
        let t_index = s.elapsed();
        functions = ap.summary().btf_functions;
        resolve.push(s.elapsed());
        parts.push((
            timings,
            t_sources,
            t_index - t_sources,
            s.elapsed() - t_index,
        ));
    }
    if let Some(r) = reads.last() {
        println!(
            "  (last read: BTF {}, ftrace {}, kallsyms {})",
            ms(r[0]),
            ms(r[1]),
            ms(r[2])
        );
    }
    if let Some((t, src, index, summary)) = parts.last() {
        println!(
            "  (last run: sources {} — BTF {}, ftrace {}, kallsyms {}; index {}; answers {})",
            ms(*src),
            ms(t[0]),
            ms(t[1]),
            ms(t[2]),
            ms(*index),
            ms(*summary)
        );
    }
    let each: Vec<String> = read
        .iter()
        .zip(&resolve)
        .map(|(a, b)| format!("{:.2}", b.as_secs_f64() / a.as_secs_f64()))
        .collect();
    println!("  (each run's ratio: {})", each.join(", "));
    let (read, resolve) = (median(read), median(resolve));
    row(
        rows,
        "reading BTF, available_filter_functions, kallsyms",
        ms(read),
        "",
        None,
    );
    let ratio = resolve.as_secs_f64() / read.as_secs_f64();
    row(
        rows,
        format!("resolving all {functions} functions × 5 mechanisms"),
        format!("{} ({ratio:.2}×)", ms(resolve)),
        "≤ 1.2× the read",
        Some(ratio <= 1.2),
    );
}
