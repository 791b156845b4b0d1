//! matrix-report <results-dir> <out-dir>: reads what each kernel of the matrix produced,
//! checks the per-kernel facts, and writes <out-dir>/matrix.json and matrix.md (features ×
//! kernels, rows that differ first). Exit 1 when a check fails.
use std::{fs, path::Path, process::ExitCode};

use integration::conditions::{self, ConditionRun};
use probe::{FeatureSource, Helper, Misc, Report};
use serde_json::{Value, json};

struct Kernel {
    column: String,
    release: probe::KernelRelease,
    report: Report,
    strategies: Value,
    verify: Option<Value>,
    tests_ok: Option<bool>,
    attach_verify: Option<Value>,
    skb_tracer: Option<(i32, String)>,
    wall: Option<f64>,
    conditions: Vec<ConditionRun>,
}

fn read(dir: &Path, name: &str) -> Option<String> {
    fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

fn load(dir: &Path, column: &str) -> Result<Kernel, String> {
    let text = read(dir, "report.json").ok_or_else(|| format!("{column}: no report.json"))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{column}: report.json: {e}"))?;
    let strategies = v["strategies"].clone();
    let report: Report = serde_json::from_value(v).map_err(|e| format!("{column}: report: {e}"))?;
    let release = report
        .system
        .release
        .clone()
        .ok_or_else(|| format!("{column}: no release"))?;
    Ok(Kernel {
        column: column.to_string(),
        release,
        report,
        strategies,
        verify: read(dir, "verify.json").and_then(|t| serde_json::from_str(&t).ok()),
        tests_ok: read(dir, "tests.status").map(|s| s == "0"),
        attach_verify: read(dir, "attach_verify.json").and_then(|t| serde_json::from_str(&t).ok()),
        skb_tracer: read(dir, "skb_tracer.status")
            .and_then(|s| s.parse().ok())
            .map(|s| (s, read(dir, "skb_tracer.txt").unwrap_or_default())),
        wall: read(dir, "wall_seconds").and_then(|s| s.parse().ok()),
        conditions: conditions::load_runs(dir),
    })
}

fn strategy(k: &Kernel, need: &str) -> String {
    conditions::chosen(&k.strategies, need)
        .0
        .unwrap_or_else(|| "none".into())
}

/// The rows `bpf-features compare` prints for the kernel's report, then the matrix's own.
fn rows(k: &Kernel) -> Vec<(String, String)> {
    let mut out = fallback::compare::rows(&k.report);
    let verify = match k.verify.as_ref().map(|v| v["agrees"].clone()) {
        Some(Value::Bool(true)) => "agrees",
        Some(Value::Bool(false)) => "MISMATCH",
        Some(_) => "could not run",
        None => "-",
    };
    out.push((
        "--verify (func_ip strategies vs true address)".into(),
        verify.into(),
    ));
    if let Some(v) = &k.attach_verify {
        out.push((
            "attach points: sampled yes answers that attached".into(),
            format!("{}/{}", v["yes_attached"], v["yes"]),
        ));
        out.push((
            "attach points: sampled no answers refused".into(),
            format!("{}/{}", v["no_refused"], v["no"]),
        ));
    }
    if let Some((status, text)) = &k.skb_tracer {
        // One summary line per run (planned, then kprobes forced): the counts.
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("traced functions saw"))
            .filter_map(|l| l.split(" traced").next())
            .collect();
        out.push((
            "skb_tracer example: functions that saw the packet (planned / kprobe)".into(),
            format!("exit {status}: {}", summary.join(" / ")),
        ));
    }
    out.push((
        "integration tests in the VM".into(),
        match k.tests_ok {
            Some(true) => "pass".into(),
            Some(false) => "FAIL".into(),
            None => "-".into(),
        },
    ));
    out
}

/// The facts each kernel must show; the tests inside the VM check more.
fn check(k: &Kernel) -> Vec<String> {
    let mut bad = Vec::new();
    let r = &k.report;
    let rel = &k.release;
    let name = &k.column;
    let func_ip = strategy(k, "func_ip");
    let fentry_ok = r.misc(Misc::FentryBpfProg).is_supported();
    if k.tests_ok == Some(false) {
        bad.push(format!("{name}: integration tests failed in the VM"));
    }
    if !rel.at_least(5, 15) {
        if r.kernel_has_helper(Helper::GET_FUNC_IP).is_supported() {
            bad.push(format!(
                "{name}: bpf_get_func_ip should be unknown to {}",
                rel.raw
            ));
        }
        if func_ip != "rewrite_constant" {
            bad.push(format!(
                "{name}: func_ip chose {func_ip}, expected rewrite_constant"
            ));
        }
    }
    if rel.at_least(5, 18) && fentry_ok && func_ip != "helper" {
        bad.push(format!("{name}: func_ip chose {func_ip}, expected helper"));
    }
    if fentry_ok {
        match k.verify.as_ref() {
            Some(v) if v["agrees"] == json!(true) => {
                let ran = v["calibration"]["runs"].as_array().map_or(0, |runs| {
                    runs.iter().filter(|r| r["error"].is_null()).count()
                });
                let want = if rel.at_least(5, 18) { 2 } else { 1 };
                if ran < want {
                    bad.push(format!(
                        "{name}: --verify ran {ran} strategies, expected {want}"
                    ));
                }
            }
            other => bad.push(format!("{name}: --verify did not agree: {other:?}")),
        }
    }
    if k.column != "host" {
        match &k.skb_tracer {
            Some((0, _)) => {}
            Some((status, text)) => bad.push(format!(
                "{name}: the skb_tracer example did not see the loopback packet (exit \
                 {status}):\n{text}"
            )),
            None => bad.push(format!("{name}: the skb_tracer example did not run")),
        }
        if k.attach_verify.is_none() {
            bad.push(format!("{name}: the attach-point sample was not checked"));
        }
    }
    if k.column != "host" && k.conditions.is_empty() {
        bad.push(format!("{name}: no hostile-condition runs"));
    }
    bad.extend(conditions::check(name, rel, r, fentry_ok, &k.conditions));
    for (misc, since) in [
        (Misc::RingBuffer, (5, 8)),
        (Misc::BpfCookie, (5, 15)),
        (Misc::KprobeMulti, (5, 18)),
    ] {
        let a = r.misc(misc);
        let want = rel.at_least(since.0, since.1);
        let ok = if want {
            !a.support.is_unsupported() || misc == Misc::KprobeMulti
        } else {
            !a.is_supported()
        };
        if !ok {
            bad.push(format!(
                "{name}: landmark {} (since {}.{}) is {a}",
                misc.name(),
                since.0,
                since.1
            ));
        }
    }
    bad
}

/// Checks the matrix's per-kernel results and writes matrix.json and matrix.md.
#[derive(clap::Parser)]
struct Args {
    /// The directory with one subdirectory per kernel (matrix/run.sh's results).
    results: std::path::PathBuf,
    /// Where matrix.json and matrix.md go.
    out: std::path::PathBuf,
}

fn main() -> ExitCode {
    let args: Args = clap::Parser::parse();
    let results = args.results.as_path();
    let mut kernels = Vec::new();
    let mut problems = Vec::new();
    let mut dirs: Vec<_> = fs::read_dir(results)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    for dir in dirs {
        let column = dir.file_name().unwrap().to_string_lossy().to_string();
        match load(&dir, &column) {
            Ok(k) => kernels.push(k),
            Err(e) => problems.push(e),
        }
    }
    // Host last; kernels by version.
    kernels.sort_by_key(|k| (k.column == "host", k.release.version.clone()));
    for k in &kernels {
        problems.extend(check(k));
    }

    let table = fallback::compare::Table::new(
        kernels
            .iter()
            .map(|k| {
                let label = if k.column == "host" {
                    format!("host {}", k.release.raw)
                } else {
                    format!("{} ({})", k.column, k.release.raw)
                };
                (label, rows(k))
            })
            .collect(),
    );
    let mut md = table.to_markdown();
    md.push_str(&format!(
        "\n{} rows differ between kernels (listed first), {} are the same. Guest wall times: {}.\n",
        table.differ,
        table.rows.len() - table.differ,
        kernels
            .iter()
            .filter_map(|k| k.wall.map(|w| format!("{} {w:.0} s", k.column)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // The hostile conditions: one row per condition, one column per kernel.
    let mut names: Vec<&str> = kernels
        .iter()
        .flat_map(|k| k.conditions.iter().map(|c| c.name.as_str()))
        .collect();
    names.sort();
    names.dedup();
    if !names.is_empty() {
        let with: Vec<&Kernel> = kernels
            .iter()
            .filter(|k| !k.conditions.is_empty())
            .collect();
        md.push_str(&format!(
            "\nHostile conditions (the report and --verify under each; checks: no answer flips \
             to unsupported, no kernel log line, the named strategy runs or the refusal names \
             the condition):\n\n| condition | {} |\n|---|{}\n",
            with.iter()
                .map(|k| k.column.as_str())
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(with.len())
        ));
        for n in &names {
            let cells: Vec<String> = with
                .iter()
                .map(|k| {
                    k.conditions
                        .iter()
                        .find(|c| c.name == *n)
                        .map_or("-".into(), conditions::cell)
                })
                .collect();
            md.push_str(&format!("| {n} | {} |\n", cells.join(" | ")));
        }
    }
    let json = json!({
        "kernels": kernels.iter().map(|k| json!({"column": k.column, "release": k.release.raw, "tests_pass": k.tests_ok, "wall_seconds": k.wall})).collect::<Vec<_>>(),
        "rows": table.to_json()["rows"],
        "problems": problems,
    });
    let out = args.out.as_path();
    if let Err(e) = fs::write(out.join("matrix.md"), &md).and_then(|()| {
        fs::write(
            out.join("matrix.json"),
            serde_json::to_string_pretty(&json).unwrap_or_default(),
        )
    }) {
        eprintln!("matrix-report: cannot write to {}: {e}", out.display());
        return ExitCode::from(2);
    }
    println!("{md}");
    if problems.is_empty() {
        println!("matrix: every check passed on {} kernels", kernels.len());
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            println!("matrix: FAILED: {p}");
        }
        ExitCode::from(1)
    }
}
