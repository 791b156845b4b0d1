//! The `bpf-features` binary as a shell script sees it: exit codes, errors, JSON.
use std::process::Command;

/// Runs `program` without the caller's BPF_FEATURES_* variables, so a developer's shell
/// cannot change what the tests see.
fn clean(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env_remove("BPF_FEATURES_ASSUME")
        .env_remove("BPF_FEATURES_STRATEGY")
        .env_remove("BPF_FEATURES_TOKEN")
        .env("BIN", env!("CARGO_BIN_EXE_bpf-features"));
    c
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = clean(env!("CARGO_BIN_EXE_bpf-features"))
        .args(args)
        .output()
        .expect("run bpf-features");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_names_exit_2_with_the_closest_name() {
    let (code, _, err) = run(&["has", "helper", "bpf_get_func_iq", "--prog-type", "kprobe"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean 'bpf_get_func_ip'"), "{err}");
    let (code, _, err) = run(&["has", "helper", "bpf_get_func_ip", "--prog-type", "kprob"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean 'kprobe'"), "{err}");
    let (code, _, err) = run(&["has", "misc", "bounded_loop"]);
    assert_eq!(code, 2);
    assert!(err.contains("bounded_loops"), "{err}");
    let (code, _, err) = run(&["--assume", "helper:bpf_get_func_ip", "has", "misc", "btf"]);
    assert_eq!(code, 2);
    assert!(err.contains("KIND:NAME=yes|no"), "{err}");
}

#[test]
fn assumptions_decide_the_exit_code() {
    // An assumption answers without probing, so this holds with or without privileges.
    let (code, out, _) = run(&["--assume", "misc:ringbuf=no", "has", "misc", "ringbuf"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("forced off"), "{out}");
    let (code, out, _) = run(&["--assume", "misc:ringbuf=yes", "has", "misc", "ringbuf"]);
    assert_eq!(code, 0, "{out}");
    let out = clean(env!("CARGO_BIN_EXE_bpf-features"))
        .args(["has", "helper", "bpf_get_func_ip", "--prog-type", "kprobe"])
        .env("BPF_FEATURES_ASSUME", "helper:bpf_get_func_ip@kprobe=no")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn exit_code_matches_the_answer() {
    if let Some(why) = integration_free_skip() {
        probe::testing::skip("exit_code_matches_the_answer", &why);
        return;
    }
    let (code, out, _) = run(&["--json", "has", "prog-type", "socket_filter"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let expected = match v["answer"]["status"].as_str().unwrap() {
        "supported" => 0,
        "unsupported" => 1,
        _ => 2,
    };
    assert_eq!(code, expected, "{out}");
}

fn integration_free_skip() -> Option<String> {
    probe::SystemInfo::read().why_probing_is_impossible()
}

#[test]
fn json_report_has_a_schema_version_and_every_section() {
    let (code, out, err) = run(&["--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema_version"], 1);
    for k in [
        "system",
        "program_types",
        "map_types",
        "kernel_helpers",
        "helpers",
        "misc",
        "strategies",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    let report: probe::Report = serde_json::from_value(v).expect("the JSON replays as a Report");
    assert_eq!(report.helpers.len(), probe::AttachContext::all().count());
}

#[test]
fn macros_and_text_render() {
    let (code, out, _) = run(&["--macros"]);
    assert_eq!(code, 0);
    assert!(out.contains("HAVE_PROG_TYPE_HELPER"), "{out}");
    // Every context's name, `tracing/fentry.s` too, becomes a C identifier.
    for l in out.lines().filter_map(|l| l.strip_prefix("#define ")) {
        let name = l.split([' ', '(']).next().unwrap();
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{l}"
        );
    }
    let (code, out, _) = run(&["--no-color"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Program types") && !out.contains("\x1b["),
        "{out}"
    );
}

#[test]
fn kfunc_macros_are_c_identifiers() {
    let test = "kfunc_macros_are_c_identifiers";
    let (code, out, err) = run(&["--macros", "--kfuncs"]);
    assert_eq!(code, 0, "{err}");
    let kernel: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("#define HAVE_KFUNC_"))
        .collect();
    let per_context: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("#define BPF__PROG_TYPE_"))
        .filter(|l| l.contains("__KFUNC_"))
        .collect();
    if kernel.is_empty() {
        probe::testing::skip(test, "this kernel has no kfuncs in BTF (or no BTF)");
        return;
    }
    let ident = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    for k in &kernel {
        assert!(ident(k), "{k}");
    }
    for l in &per_context {
        let (name, value) = l.rsplit_once(' ').unwrap();
        assert!(ident(name) && (value == "0" || value == "1"), "{l}");
    }
    if !per_context.is_empty() {
        assert!(out.contains("#define HAVE_PROG_TYPE_KFUNC(prog_type, kfunc)"));
    }
}

/// A cache file in a fresh directory and the `--cache=` flag naming it; `None` (skipped,
/// visibly) when not root, since the cache must be root-owned.
fn root_owned_cache(test: &str) -> Option<(tempfile::TempDir, std::path::PathBuf, String)> {
    if !nix::unistd::geteuid().is_root() {
        probe::testing::skip(test, "the cache must be root-owned: not root");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("answers");
    let flag = format!("--cache={}", path.to_str().unwrap());
    Some((dir, path, flag))
}

#[test]
fn the_disk_cache_is_written_and_reused() {
    let Some((_dir, path, flag)) = root_owned_cache("the_disk_cache_is_written_and_reused") else {
        return;
    };
    let (code1, out1, err1) = run(&[&flag, "has", "map-type", "ringbuf"]);
    assert!(path.exists(), "{err1}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().next().unwrap().contains("boot_id"), "{text}");
    let (code2, out2, err2) = run(&[&flag, "has", "map-type", "ringbuf"]);
    assert_eq!((code1, out1), (code2, out2), "{err2}");
    assert!(err2.is_empty(), "{err2}");
    // Another user able to write it: refused, with the reason.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (_, _, err3) = run(&[&flag, "has", "map-type", "ringbuf"]);
    assert!(err3.contains("writable by nobody else"), "{err3}");
}

#[test]
fn without_privileges_answers_are_inferred_and_say_so() {
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    if !nix::unistd::geteuid().is_root() || !setpriv.exists() {
        probe::testing::skip(
            "without_privileges_answers_are_inferred_and_say_so",
            "needs root and setpriv to drop to an unprivileged user",
        );
        return;
    }
    let out = clean(setpriv.to_str().unwrap())
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_bpf-features"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let unpriv = probe::SystemInfo::read()
        .sysctl("kernel.unprivileged_bpf_disabled")
        .unwrap_or(1);
    if unpriv == 0 {
        probe::testing::skip(
            "without_privileges_answers_are_inferred_and_say_so",
            "unprivileged BPF is enabled here",
        );
        return;
    }
    assert!(
        v["inferred"].as_str().unwrap().contains("CAP_BPF"),
        "{}",
        v["inferred"]
    );
    for section in ["program_types", "map_types", "misc"] {
        for e in v[section].as_array().unwrap() {
            assert_eq!(e["answer"]["origin"], "inferred", "{section} {}", e["name"]);
        }
    }
}

/// Regressions from the fuzzing and bad-input pass of issue 8: each failed before its fix.
mod hostile_input {
    use super::{clean, run};
    use std::{os::unix::ffi::OsStrExt, process::Command};

    fn bin() -> Command {
        clean(env!("CARGO_BIN_EXE_bpf-features"))
    }

    #[test]
    fn json_with_macros_is_an_error_not_a_panic() {
        let (code, _, err) = run(&["--json", "--macros"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("pick one"), "{err}");
        // The debug build's clap assertion fired on every `has` (issue 8).
        let (code, out, err) = run(&["--assume", "misc:ringbuf=yes", "has", "misc", "ringbuf"]);
        assert_eq!(code, 0, "{out}{err}");
    }

    #[test]
    fn unwritable_output_exits_2() {
        let Ok(full) = std::fs::File::options().write(true).open("/dev/full") else {
            probe::testing::skip("unwritable_output_exits_2", "no /dev/full");
            return;
        };
        let st = bin()
            .args(["--assume", "misc:ringbuf=yes", "has", "misc", "ringbuf"])
            .stdout(full)
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(2));
    }

    #[test]
    fn cache_takes_its_path_with_an_equals_sign_only() {
        let default = std::path::Path::new(probe::cache::DEFAULT_PATH);
        let existed = default.exists();
        let (code, out, err) = run(&[
            "--cache",
            "--assume",
            "misc:ringbuf=yes",
            "has",
            "misc",
            "ringbuf",
        ]);
        // `--cache` alone names the default path; `has` is a subcommand, not a file name.
        assert!(!std::path::Path::new("has").exists());
        assert!(!err.contains("unrecognized subcommand"), "{err}");
        assert!(code == 0 || err.contains("cache"), "{code} {out} {err}");
        if !existed {
            let _ = std::fs::remove_file(default);
        }
    }

    fn sh(script: &str) -> std::process::Output {
        clean("sh").args(["-c", script]).output().unwrap()
    }

    #[test]
    fn a_transient_error_is_not_cached_for_the_boot() {
        let test = "a_transient_error_is_not_cached_for_the_boot";
        if probe::testing::need_bpf(test).is_none() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("answers");
        let c = cache.display();
        // Six fds: the probes fail with EMFILE, and those answers must not be kept.
        let starved = sh(&format!(
            "ulimit -n 6; \"$BIN\" --cache={c} --json >/dev/null 2>&1; true"
        ));
        assert!(starved.status.success());
        let fresh = sh("\"$BIN\" --json has map-type hash");
        let cached = sh(&format!("\"$BIN\" --cache={c} --json has map-type hash"));
        assert_eq!(
            cached.status.code(),
            fresh.status.code(),
            "{}",
            String::from_utf8_lossy(&cached.stdout)
        );
        let text = std::fs::read_to_string(&cache).unwrap_or_default();
        assert!(!text.contains("EMFILE"), "an EMFILE answer was cached");
    }

    #[test]
    fn a_small_stack_limit_does_not_crash_the_report() {
        let out = sh("ulimit -s 64; exec \"$BIN\" --json >/dev/null");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn a_small_address_space_is_a_clear_error_or_a_whole_report() {
        let out = sh("ulimit -v 60000; exec \"$BIN\" --json >/dev/null");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("ulimit -v"), "{err}");
        // With room for one probing thread, fewer threads are used rather than aborting.
        let out = sh("ulimit -v 262144; exec \"$BIN\" --json >/dev/null");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        ); // The attach-point resolver: the same clear error, and no abort when it fits
        // on one thread (exit 0, 1 or 2 is an answer; 134 would be an abort).
        for cmd in [
            "can-trace tcp_v4_rcv",
            "functions --limit 1",
            "--attach-points --json",
        ] {
            let out = sh(&format!("ulimit -v 60000; exec \"$BIN\" {cmd} >/dev/null"));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
            assert!(err.contains("ulimit -v"), "{cmd}: {err}");
            let out = sh(&format!("ulimit -v 160000; exec \"$BIN\" {cmd} >/dev/null"));
            assert!(
                matches!(out.status.code(), Some(0..=2)),
                "{cmd}: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn verify_without_privileges_names_the_refusal() {
        if !nix::unistd::geteuid().is_root() || !std::path::Path::new("/usr/bin/setpriv").exists() {
            probe::testing::skip(
                "verify_without_privileges_names_the_refusal",
                "needs root and setpriv to drop to an unprivileged user",
            );
            return;
        }
        let out = sh(
            "exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
                      \"$BIN\" --verify",
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("EPERM") && err.contains("CAP_BPF"), "{err}");
        assert!(!err.contains("LoadError {"), "a Debug dump: {err}");
    }

    #[test]
    fn a_fifo_as_cache_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let out = sh(&format!(
            "timeout 20 \"$BIN\" --cache={} --assume misc:ringbuf=yes has misc ringbuf",
            fifo.display()
        ));
        assert_ne!(out.status.code(), Some(124), "hung on the FIFO");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
    }

    #[test]
    fn a_kernel_level_assumption_answers_the_kernel_question() {
        let (code, out, _) = run(&[
            "--assume",
            "helper:bpf_get_func_ip=no",
            "has",
            "helper",
            "bpf_get_func_ip",
        ]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("assumed"), "{out}");
    }

    #[test]
    fn too_many_threads_is_refused_cleanly() {
        let (code, _, err) = run(&["--threads", "100000", "has", "misc", "ringbuf"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("threads"), "{err}");
    }

    #[test]
    fn misspelt_strategy_variable_is_an_error() {
        for bad in ["fucn_ip=helper", "FUNC_IP=helper", "func_ip"] {
            let out = bin()
                .args(["--assume", "misc:ringbuf=yes", "has", "misc", "ringbuf"])
                .env("BPF_FEATURES_STRATEGY", bad)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
            assert!(err.contains("BPF_FEATURES_STRATEGY"), "{bad}: {err}");
        }
        let out = bin()
            .args(["--assume", "misc:ringbuf=yes", "has", "misc", "ringbuf"])
            .env("BPF_FEATURES_STRATEGY", "fucn_ip=helper")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean 'func_ip'"));
    }

    #[test]
    fn non_utf8_assumptions_are_an_error() {
        let out = bin()
            .args(["has", "misc", "ringbuf"])
            .env(
                "BPF_FEATURES_ASSUME",
                std::ffi::OsStr::from_bytes(b"misc:ringbuf=\xffyes"),
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("UTF-8"));
    }

    #[test]
    fn a_huge_name_is_answered_fast_and_not_echoed_whole() {
        let name = "a".repeat(131_000);
        let t = std::time::Instant::now();
        let (code, _, err) = run(&["has", "helper", &name]);
        assert_eq!(code, 2);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
        assert!(err.len() < 1000, "{} bytes of error", err.len());
    }
}

/// `--profile`: a recorded kernel answers, nothing is loaded (issue 14's first step).
#[test]
fn a_recorded_profile_answers_for_its_kernel() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../integration/profiles");
    let p510 = format!("{dir}/5.10.json.gz");
    let p61 = format!("{dir}/6.1.json.gz");
    let args = ["has", "helper", "bpf_get_func_ip", "--prog-type", "kprobe"];
    let (code, out, _) = run(&[&["--profile", &p510][..], &args].concat());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("recorded on 5.10.0"), "{out}");
    let (code, out, _) = run(&[&["--profile", &p61][..], &args].concat());
    assert_eq!(code, 0, "{out}");
    let (code, out, err) = run(&["--profile", &p510, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let func_ip = v["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["need"] == "func_ip")
        .unwrap();
    assert_eq!(func_ip["chosen"], "rewrite_constant", "{func_ip}");
    // Not a report, or a --verify that would need the recorded kernel: clear errors.
    let (code, _, err) = run(&["--profile", "/etc/hostname", "has", "misc", "ringbuf"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a report"), "{err}");
    let (code, _, err) = run(&["--profile", &p510, "--verify"]);
    assert_eq!(code, 2);
    assert!(err.contains("--profile"), "{err}");
}

/// `compare`: the matrix's recorded reports as one table (the matrix builds its own with
/// the same rows, `bpf_features::compare`).
#[test]
fn compare_puts_recorded_kernels_side_by_side() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../integration/profiles");
    let paths: Vec<String> = ["5.10", "6.1", "6.12"]
        .iter()
        .map(|s| format!("{dir}/{s}.json.gz"))
        .collect();
    let mut args = vec!["compare", "--format", "json"];
    args.extend(paths.iter().map(String::as_str));
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = |name: &str| -> Vec<String> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["feature"] == name)
            .unwrap_or_else(|| panic!("no row {name}"))["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        row("strategy func_ip"),
        ["rewrite_constant", "helper", "helper"]
    );
    assert_eq!(row("prog_type syscall"), ["no", "yes", "yes"]);
    assert_eq!(row("misc ringbuf"), ["yes", "yes", "yes"]);
    // Rows that differ come first: the first row differs, the last does not.
    let rows = v["rows"].as_array().unwrap();
    let differ = v["differ"].as_u64().unwrap() as usize;
    assert!(differ > 0 && differ < rows.len());
    let first: Vec<&serde_json::Value> = rows[0]["values"].as_array().unwrap().iter().collect();
    assert!(first.iter().any(|x| *x != first[0]));
    let (code, _, err) = run(&["compare", "/etc/hostname"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a report"), "{err}");
}

/// `can-trace` and `functions` (issue 12): bad names, a function no source has, the
/// answers' JSON shape, and the refusal of a recorded profile.
#[test]
fn can_trace_answers_every_mechanism_and_refuses_bad_input() {
    for bad in ["a b", "x;rm -rf", "", "ä"] {
        let (code, _, err) = run(&["can-trace", bad]);
        assert_eq!(code, 2, "{bad:?}");
        assert!(err.contains("not a kernel function name"), "{bad:?}: {err}");
    }
    let long = "f".repeat(600);
    assert_eq!(run(&["can-trace", &long]).0, 2);
    let profile = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../integration/profiles/6.12.json.gz"
    );
    let (code, _, err) = run(&["--profile", profile, "can-trace", "tcp_v4_rcv"]);
    assert_eq!(code, 2);
    assert!(err.contains("recorded report"), "{err}");
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        probe::testing::skip(
            "can_trace_answers_every_mechanism_and_refuses_bad_input",
            "no kernel BTF: the rest needs it",
        );
        return;
    }
    // No source has it: never "supported"; "not supported" for fentry (not in BTF).
    let (code, out, _) = run(&["--json", "can-trace", "no_such_function_in_any_kernel"]);
    assert_ne!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ms = v["mechanisms"].as_array().unwrap();
    let names: Vec<&str> = ms
        .iter()
        .map(|m| m["mechanism"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["fentry", "fexit", "kprobe", "kretprobe", "kprobe_multi"]
    );
    assert!(ms.iter().all(|m| m["status"] != "supported"), "{out}");
    assert_eq!(ms[0]["status"], "unsupported", "{out}");
    assert!(v["plan"].is_null() && v["plan_error"].is_string(), "{out}");
    // A real function: its parameters from BTF, and an answer for each mechanism.
    let (code, out, _) = run(&["--json", "can-trace", "tcp_v4_rcv"]);
    assert!(code <= 2, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["params"][0], "struct sk_buff *", "{out}");
    let (code, out, err) = run(&["functions", "--param", "struct sk_buff *", "--limit", "3"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("functions selected (a `struct sk_buff *`"),
        "{out}"
    );
}

#[test]
fn a_token_that_cannot_be_made_is_an_error_naming_why() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let (code, _, err) = run(&["--token", missing.to_str().unwrap(), "has", "misc", "btf"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot open the BPF token's bpffs"), "{err}");
    // A plain directory is no bpffs (on a kernel without tokens: no tokens at all).
    let (code, _, err) = run(&[
        "--token",
        dir.path().to_str().unwrap(),
        "has",
        "misc",
        "btf",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("not the root of a bpffs")
            || err.contains("no BPF tokens")
            || err.contains("EPERM"),
        "{err}"
    );
    let out = clean(env!("CARGO_BIN_EXE_bpf-features"))
        .args(["has", "misc", "btf"])
        .env("BPF_FEATURES_TOKEN", &missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (code, _, err) = run(&["--token", "/", "--profile", "x.json", "has", "misc", "btf"]);
    assert_eq!(code, 2);
    assert!(err.contains("pick one"), "{err}");
}

#[test]
fn a_kfunc_can_be_assumed_by_name_and_context() {
    let (code, out, _) = run(&[
        "--assume",
        "kfunc:bpf_task_from_pid@tracepoint=no",
        "has",
        "kfunc",
        "bpf_task_from_pid",
        "--prog-type",
        "tracepoint",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("forced off") && out.contains("assumed"),
        "{out}"
    );
    let (code, _, err) = run(&[
        "--assume",
        "kfunc:bpf_task_from_pid@tracepint=no",
        "has",
        "misc",
        "btf",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean 'tracepoint'"), "{err}");
}

#[test]
fn kfunc_answers_are_kept_in_the_disk_cache() {
    let Some((_dir, path, flag)) = root_owned_cache("kfunc_answers_are_kept_in_the_disk_cache")
    else {
        return;
    };
    let ask = [
        &flag,
        "has",
        "kfunc",
        "bpf_task_from_pid",
        "--prog-type",
        "tracepoint",
    ];
    let (code, out, err) = run(&ask);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let Some(line) = text
        .lines()
        .find(|l| l.starts_with("kfunc:bpf_task_from_pid@tracepoint\t"))
    else {
        // A kernel without the kfunc, or one where it cannot be asked, caches no answer.
        assert_ne!(code, 0, "a conclusive yes must be cached: {out}{err}");
        return;
    };
    assert!(text.contains("\nkfunc:bpf_task_from_pid\t"), "{text}");
    // The second run answers from the file: a recorded answer changed by hand shows.
    // (The recorded detail is renamed away, so the forged one is the only `detail`.)
    let forged = line.replacen(",\"detail\":", ",\"ignored\":", 1).replacen(
        "\"evidence\":{",
        "\"evidence\":{\"detail\":\"from the file\",",
        1,
    );
    std::fs::write(&path, text.replace(line, &forged)).unwrap();
    let (code2, out2, err2) = run(&[
        "--json",
        &flag,
        "has",
        "kfunc",
        "bpf_task_from_pid",
        "--prog-type",
        "tracepoint",
    ]);
    assert_eq!(code2, code, "{err2}");
    assert!(out2.contains("from the file"), "{out2}{err2}");
}

#[test]
fn sleepable_picks_the_sleepable_context_or_says_there_is_none() {
    let (code, _, err) = run(&[
        "has",
        "kfunc",
        "bpf_task_from_pid",
        "--prog-type",
        "kprobe",
        "--sleepable",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no sleepable programs") && err.contains("fentry.s"),
        "{err}"
    );
    let (code, _, err) = run(&["has", "helper", "bpf_copy_from_user", "--sleepable"]);
    assert_eq!(code, 2);
    assert!(err.contains("--sleepable needs --prog-type"), "{err}");
    // The answer names the sleepable context, whatever this machine answers.
    let (code, out, _) = run(&[
        "has",
        "helper",
        "bpf_copy_from_user",
        "--prog-type",
        "tracing",
        "--sleepable",
    ]);
    assert!((0..=2).contains(&code));
    assert!(out.contains("tracing/fentry.s"), "{out}");
}
