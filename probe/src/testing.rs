//! The one visible-skip mechanism of the workspace's tests: a test that cannot run here says
//! so, and `scripts/test.sh` lists every skip at the end. Shared by the tests of every crate
//! (it lives here, at the bottom of the dependency graph, so no test dependency loops).
#![doc(hidden)]
use std::{fs, io::Write, path::PathBuf};

/// Where skipped tests are recorded; `scripts/test.sh` prints this file at the end, so a
/// skip is never silent.
pub fn skip_log() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("skipped-tests.txt")
}

/// Records and prints that `test` was skipped, and why.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIPPED {test}: {reason}");
    eprintln!("{line}");
    if let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skip_log())
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Why BPF programs cannot be loaded by this test process, if they cannot.
pub fn bpf_unavailable() -> Option<String> {
    let sys = crate::SystemInfo::read();
    if let Some(why) = sys.why_probing_is_impossible() {
        return Some(why);
    }
    let insns = crate::insn::return_zero();
    let load = crate::sys::ProgLoad::new(crate::ProgramType::SOCKET_FILTER.0, &insns);
    match crate::sys::prog_load(&load, None) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "a minimal socket_filter does not load: {}",
            e.errno
        )),
    }
}

/// Skips the calling test (by name) when BPF is unavailable. Use as
/// `let Some(_) = integration::need_bpf("name") else { return };`
pub fn need_bpf(test: &str) -> Option<()> {
    match bpf_unavailable() {
        Some(why) => {
            skip(test, &why);
            None
        }
        None => Some(()),
    }
}

/// The kernel series whose reports the matrix records (`integration/profiles/`).
pub const RECORDED_SERIES: &[&str] = &["5.10", "6.1", "6.12"];

/// The report recorded on one matrix kernel series, replayable as a `FeatureSource`.
pub fn recorded_profile(series: &str) -> Result<crate::Report, String> {
    crate::Report::from_path(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../integration/profiles")
            .join(format!("{series}.json.gz")),
    )
}
