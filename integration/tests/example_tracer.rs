//! The example tracer (ebpf/examples/tc_tracer.rs), run as a user would run it: attach to
//! a tc program by id, trigger the program, and read the lines it prints.
use std::{
    io::{BufRead, BufReader},
    os::fd::AsFd,
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use fallback::tracer::{self, ThrowawayTarget};

/// The tracer child, killed however the test ends: it holds the target program open.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example() -> PathBuf {
    // Built by `cargo build --release --examples` (scripts/test.sh, matrix/run.sh).
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/tc_tracer")
}

#[test]
fn the_example_tracer_prints_one_line_per_call() {
    let Some(_) =
        integration::need_fentry_on_bpf_prog("the_example_tracer_prints_one_line_per_call")
    else {
        return;
    };
    let exe = example();
    assert!(
        exe.exists(),
        "{} is not built (cargo build --release --examples)",
        exe.display()
    );
    let target = ThrowawayTarget::load().unwrap();
    let id = probe::sys::prog_info(target.fd.as_fd()).unwrap().id;
    let addr =
        fallback::prog_addr::resolve_fd(target.fd.as_fd(), std::path::Path::new("/proc/kallsyms"))
            .unwrap()
            .addr;
    let mut child = Kill(
        Command::new(&exe)
            .args(["--id", &id.to_string(), "--count", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the tracer said nothing");
    assert!(first.starts_with("tracing tc_target"), "{first}");
    let why = first.split_once("; why: ").map(|(_, w)| w).unwrap_or("");
    // The why carries the probe's evidence for the strategy it names.
    assert!(
        (first.contains("helper") && why.contains("bpf_get_func_ip"))
            || (first.contains("rewrite_constant") && why.contains("rodata_frozen")),
        "the choice comes with its why: {first}"
    );
    tracer::run_packet(target.fd.as_fd()).unwrap();
    let mut lines = Vec::new();
    while lines.len() < 2 {
        lines.push(
            rx.recv_timeout(Duration::from_secs(30))
                .expect("no event line"),
        );
    }
    let status = child.0.wait().unwrap();
    assert!(status.success());
    let want = format!("ip={addr:#x}");
    assert!(
        lines.iter().all(|l| l.contains(&want)),
        "{lines:?} should report {want}"
    );
    assert!(
        lines.iter().any(|l| l.contains("entry")) && lines.iter().any(|l| l.contains("exit")),
        "{lines:?}"
    );
}
