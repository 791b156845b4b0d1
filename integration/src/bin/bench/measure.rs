//! Measuring: medians, child processes, the kernel's floor, and the printed rows.
use std::{
    os::fd::{AsFd, OwnedFd},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use fallback::kallsyms::{self, Target};
use probe::{
    ProgramType, insn,
    sys::{self, ProgLoad},
};

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// One printed figure: what, its value, its target, and whether the target was met.
pub struct Row {
    pub what: String,
    pub value: String,
    pub target: String,
    pub met: Option<bool>,
}

pub fn row(
    rows: &mut Vec<Row>,
    what: impl Into<String>,
    value: impl Into<String>,
    target: impl Into<String>,
    met: Option<bool>,
) {
    let r = Row {
        what: what.into(),
        value: value.into(),
        target: target.into(),
        met,
    };
    println!("  {:<58} {:>16}   {}", r.what, r.value, r.target);
    rows.push(r);
}

pub fn bpftool() -> Option<String> {
    ["bpftool", "/usr/sbin/bpftool", "/sbin/bpftool"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_string)
}

/// Wall time of a command that must succeed.
pub fn time_cmd(cmd: &str, args: &[&str]) -> Duration {
    timed_run(cmd, args, |code| code == Some(0), "failed")
}

/// Wall time of a command that answers by its exit code: 0 (yes) and 1 (no) are answers.
pub fn time_answer(cmd: &str, args: &[&str]) -> Duration {
    timed_run(
        cmd,
        args,
        |code| matches!(code, Some(0 | 1)),
        "gave no answer",
    )
}

/// Runs `cmd` with its output discarded; asserts that `ok` accepts its exit code.
fn timed_run(cmd: &str, args: &[&str], ok: impl Fn(Option<i32>) -> bool, what: &str) -> Duration {
    let t = Instant::now();
    let st = Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let d = t.elapsed();
    assert!(st.is_ok_and(|s| ok(s.code())), "{cmd} {args:?} {what}");
    d
}

/// Peak RSS (KiB) of a command, measured by a fresh child of ours (RUSAGE_CHILDREN is a
/// maximum over all waited children, so each measurement gets its own process).
pub fn peak_rss_kib(cmd: &[&str]) -> u64 {
    let me = std::env::current_exe().expect("own path");
    let out = Command::new(me)
        .arg("rss")
        .args(cmd)
        .output()
        .expect("rss child");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

pub fn rss_child(cmd: &[String]) {
    let st = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !st.is_ok_and(|s| s.success()) {
        eprintln!("bench: {cmd:?} failed");
        std::process::exit(1);
    }
    let ru = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    println!("{}", ru.max_rss());
}

/// `n` distinct loaded classifiers (distinct instructions, so distinct tags, and names).
pub fn load_programs(n: usize) -> Vec<(OwnedFd, Target)> {
    (0..n)
        .map(|i| {
            let insns = [insn::mov64_imm(insn::R0, i as i32), insn::exit()];
            let mut l = ProgLoad::new(ProgramType::SCHED_CLS.0, &insns);
            let name = format!("bench_{i:03}");
            l.name = &name;
            let fd = sys::prog_load(&l, None).expect("load a classifier");
            let info = sys::prog_info(fd.as_fd()).expect("prog info");
            (
                fd,
                Target {
                    tag: info.tag,
                    name: Some(name),
                },
            )
        })
        .collect()
}

pub fn kallsyms_child() {
    let progs = load_programs(100);
    let targets: Vec<Target> = progs.iter().map(|(_, t)| t.clone()).collect();
    let found = kallsyms::resolve_file("/proc/kallsyms", &targets).expect("resolve");
    assert!(
        found.values().all(|v| v.len() == 1),
        "not every program resolved"
    );
}

/// One load's time, averaged over `n`, with a verifier log at `log` or none.
pub fn floor_loads(n: usize, load: &ProgLoad<'_>, log: Option<sys::LogLevel>) -> Duration {
    let mut buf = vec![0u8; 64 * 1024];
    let load = ProgLoad {
        log_level: log.unwrap_or_default(),
        ..*load
    };
    let t = Instant::now();
    for _ in 0..n {
        let _ = sys::prog_load(&load, log.is_some().then_some(&mut buf[..]));
    }
    t.elapsed() / n as u32
}

/// Pairs with any answer (bpftool answers every pair it probes yes or no).
pub fn answered_pairs(r: &probe::Report) -> usize {
    r.helpers.iter().map(|row| row.answers.len()).sum()
}

/// Pairs with a conclusive answer (unknown ones, such as EPERM rows, left out).
pub fn count_pairs(r: &probe::Report) -> usize {
    r.helpers
        .iter()
        .map(|row| {
            row.answers
                .values()
                .filter(|a| a.support.as_bool().is_some())
                .count()
        })
        .sum()
}
