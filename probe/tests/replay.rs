//! The report as recorded on the matrix kernels, replayed and rendered: the text and the
//! C macros must stay byte for byte what they were when the goldens were written (before
//! the probe layer's restructuring, issue 9). `UPDATE_GOLDEN=1` rewrites them after a
//! deliberate change.
use std::path::PathBuf;

use bpf_features_probe::{Report, report::Style};

fn dir(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The recorded reports, by series.
pub fn profiles() -> Vec<(String, Report)> {
    bpf_features_probe::testing::RECORDED_SERIES
        .iter()
        .map(|s| {
            (
                s.to_string(),
                bpf_features_probe::testing::recorded_profile(s).unwrap(),
            )
        })
        .collect()
}

fn golden(name: &str, actual: &str) {
    let path = dir("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if want != actual {
        let line = want
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from its golden at line {}:\n  golden: {:?}\n  now:    {:?}",
            line + 1,
            want.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

#[test]
fn recorded_reports_render_as_before() {
    for (series, r) in profiles() {
        golden(&format!("{series}.txt"), &r.to_text(Style { color: false }));
        golden(&format!("{series}.h"), &r.to_macros());
    }
}
