//! BPF tokens on the running kernel (issue 14): from an unprivileged user namespace, with a
//! bpffs the initial namespace delegated to it (`token-sandbox`), a report probed through
//! the token agrees with root's on everything the token allows, and names the token for
//! the program types it does not.
use std::{collections::HashMap, os::unix::fs::PermissionsExt, process::Command, sync::Arc};

use probe::{Features, KernelRelease, Options, Report, token::Token};

const TEST: &str = "a_report_through_a_delegated_token_agrees_with_root";
/// Set in the sandboxed run of this same test: where it writes its report.
const CHILD_OUT: &str = "TOKEN_TEST_REPORT";

#[test]
fn a_report_through_a_delegated_token_agrees_with_root() {
    if let Ok(out) = std::env::var(CHILD_OUT) {
        return sandboxed(&out);
    }
    let Some(_) = integration::need_bpf(TEST) else {
        return;
    };
    let release = KernelRelease::current().unwrap();
    if !release.at_least(6, 9) {
        integration::skip(
            TEST,
            &format!("BPF tokens are 6.9; this kernel is {}", release.raw),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The sandboxed run is user 65534: it writes its report here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = dir.path().join("report.json");
    let run = Command::new(env!("CARGO_BIN_EXE_token-sandbox"))
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_OUT, &out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the sandboxed run failed ({}): {stderr}",
        run.status
    );
    let through: Report = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let root = Features::new(Options::default()).probe_all();
    let base: HashMap<String, &probe::Answer> = root.answers().collect();
    let bad = integration::conditions::check_token_probes("this kernel", &base, &through);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let progs = &through.token.as_ref().unwrap().progs;
    eprintln!("through the token ({progs:?}): every allowed answer agrees with root's");
}

/// The run inside the sandbox: a token from the delegated bpffs, a full report through it.
fn sandboxed(out: &str) {
    let path = std::env::var(probe::token::TOKEN_ENV).expect("token-sandbox sets the path");
    let release = KernelRelease::current().ok();
    let token = Token::create(path.as_ref(), release.as_ref()).unwrap();
    let report = Features::new(Options {
        token: Some(Arc::new(token)),
        ..Default::default()
    })
    .probe_all();
    std::fs::write(out, serde_json::to_vec(&report).unwrap()).unwrap();
}
