//! The strategy section of the report for each recorded matrix kernel, replayed: it must
//! stay what it was when the goldens were written (before the restructuring of issue 9).
//! `UPDATE_GOLDEN=1` rewrites them after a deliberate change.
use std::path::PathBuf;

fn dir(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn recorded_reports_choose_as_before() {
    for series in probe::testing::RECORDED_SERIES {
        let report = probe::testing::recorded_profile(series).unwrap();
        let full = bpf_features::FullReport::new(report.clone(), &report, &Default::default());
        let v = serde_json::to_value(&full).unwrap();
        let actual = serde_json::to_string_pretty(&v["strategies"]).unwrap() + "\n";
        let golden = dir("tests/golden").join(format!("{series}.strategies.json"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &actual).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", golden.display()));
        assert_eq!(want, actual, "{series}: the strategies changed");
    }
}
