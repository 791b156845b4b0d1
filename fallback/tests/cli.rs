//! The `bpf-features` binary as a shell script sees it: exit codes, errors, JSON.
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpf-features"))
        .args(args)
        .env_remove("BPF_FEATURES_ASSUME")
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
    let out = Command::new(env!("CARGO_BIN_EXE_bpf-features"))
        .args(["has", "helper", "bpf_get_func_ip", "--prog-type", "kprobe"])
        .env("BPF_FEATURES_ASSUME", "helper:bpf_get_func_ip@kprobe=no")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn exit_code_matches_the_answer() {
    if let Some(why) = integration_free_skip() {
        eprintln!("SKIPPED exit_code_matches_the_answer: {why}");
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
    assert!(report.helpers.len() >= 30);
}

#[test]
fn macros_and_text_render() {
    let (code, out, _) = run(&["--macros"]);
    assert_eq!(code, 0);
    assert!(out.contains("HAVE_PROG_TYPE_HELPER"), "{out}");
    let (code, out, _) = run(&["--no-color"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Program types") && !out.contains("\x1b["),
        "{out}"
    );
}

#[test]
fn the_disk_cache_is_written_and_reused() {
    if !nix::unistd::geteuid().is_root() {
        integration::skip(
            "the_disk_cache_is_written_and_reused",
            "the cache must be root-owned: not root",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("answers");
    let p = path.to_str().unwrap();
    let (code1, out1, err1) = run(&["--cache", p, "has", "map-type", "ringbuf"]);
    assert!(path.exists(), "{err1}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().next().unwrap().contains("boot_id"), "{text}");
    let (code2, out2, err2) = run(&["--cache", p, "has", "map-type", "ringbuf"]);
    assert_eq!((code1, out1), (code2, out2), "{err2}");
    assert!(err2.is_empty(), "{err2}");
    // Another user able to write it: refused, with the reason.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (_, _, err3) = run(&["--cache", p, "has", "map-type", "ringbuf"]);
    assert!(err3.contains("writable by nobody else"), "{err3}");
}

#[test]
fn without_privileges_answers_are_inferred_and_say_so() {
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    if !nix::unistd::geteuid().is_root() || !setpriv.exists() {
        integration::skip(
            "without_privileges_answers_are_inferred_and_say_so",
            "needs root and setpriv to drop to an unprivileged user",
        );
        return;
    }
    let out = Command::new(setpriv)
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_bpf-features"))
        .arg("--json")
        .env_remove("BPF_FEATURES_ASSUME")
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
        integration::skip(
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
