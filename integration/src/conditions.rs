//! The matrix's hostile-condition runs (`matrix/guest.sh`): each kernel also runs the
//! report and `--verify` under `kptr_restrict=2`, `bpf_jit_harden=2`, `bpf_jit_kallsyms=0`,
//! as an unprivileged user, and under lockdown (integrity, then confidentiality). This
//! module reads those runs and checks the promises against the unrestricted run:
//! - no answer the unrestricted run calls supported becomes "not supported";
//! - the report adds no line about BPF or lockdown to the kernel log;
//! - the func_ip strategy the report names is one `--verify` could run, or `--verify`
//!   says which condition stopped it;
//! - the condition shows in the report, and refusals name it.
use std::{collections::HashMap, fs, path::Path};

use probe::Report;
use serde_json::Value;

/// What one condition run produced.
pub struct ConditionRun {
    pub name: String,
    pub report: Option<Report>,
    pub strategies: Value,
    pub report_status: Option<i32>,
    pub report_err: String,
    pub verify: Option<Value>,
    pub verify_status: Option<i32>,
    pub verify_err: String,
    /// Kernel log lines the report run added.
    pub dmesg: Vec<String>,
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn status(dir: &Path, name: &str) -> Option<i32> {
    read(dir, name).trim().parse().ok()
}

/// Every condition run under `kernel_dir/conditions/`, sorted by name.
pub fn load_runs(kernel_dir: &Path) -> Vec<ConditionRun> {
    let Ok(entries) = fs::read_dir(kernel_dir.join("conditions")) else {
        return Vec::new();
    };
    let mut runs: Vec<ConditionRun> = entries
        .flatten()
        .map(|e| {
            let d = e.path();
            let json: Option<Value> = serde_json::from_str(&read(&d, "report.json")).ok();
            ConditionRun {
                name: e.file_name().to_string_lossy().into_owned(),
                strategies: json
                    .as_ref()
                    .map_or(Value::Null, |v| v["strategies"].clone()),
                report: json.and_then(|v| serde_json::from_value(v).ok()),
                report_status: status(&d, "report.status"),
                report_err: read(&d, "report.err"),
                verify: serde_json::from_str(&read(&d, "verify.json")).ok(),
                verify_status: status(&d, "verify.status"),
                verify_err: read(&d, "verify.err"),
                dmesg: read(&d, "dmesg.txt").lines().map(str::to_string).collect(),
            }
        })
        .collect();
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    runs
}

/// The need's chosen strategy (`None` when nothing can run) and its why.
pub fn chosen(strategies: &Value, need: &str) -> (Option<String>, String) {
    let n = strategies
        .as_array()
        .and_then(|a| a.iter().find(|n| n["need"] == need));
    (
        n.and_then(|n| n["chosen"].as_str()).map(str::to_string),
        n.and_then(|n| n["why"].as_str())
            .unwrap_or_default()
            .to_string(),
    )
}

/// Kernel log lines a report must never cause.
pub fn suspicious_log_lines(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            [
                "lockdown",
                "bpf",
                "printk",
                "probe_write_user",
                "warning",
                "bug:",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .collect()
}

/// What a failed `--verify` must name for each condition.
fn condition_words(name: &str) -> &'static [&'static str] {
    if name.starts_with("kernel.kptr_restrict") {
        &["kptr_restrict"]
    } else if name.starts_with("unprivileged") || name == "token" {
        &["EPERM", "CAP_BPF"]
    } else if name.starts_with("lockdown") {
        &["lockdown"]
    } else {
        &["bpf_jit"]
    }
}

/// Checks one kernel's condition runs against its unrestricted report. `fentry_ok`: fentry
/// on a BPF program loads on this kernel (so `--verify` can run unrestricted).
pub fn check(
    column: &str,
    release: &probe::KernelRelease,
    baseline: &Report,
    fentry_ok: bool,
    runs: &[ConditionRun],
) -> Vec<String> {
    let mut bad = Vec::new();
    let base: HashMap<String, &probe::Answer> = baseline.answers().collect();
    for run in runs {
        let at = format!("{column} under {}", run.name);
        let Some(report) = &run.report else {
            bad.push(format!(
                "{at}: no report (exit {:?}): {}",
                run.report_status,
                run.report_err.trim()
            ));
            continue;
        };
        if run.report_status != Some(0) {
            bad.push(format!(
                "{at}: the report exited {:?}: {}",
                run.report_status,
                run.report_err.trim()
            ));
        }
        let flipped: Vec<String> = report
            .answers()
            .filter(|(k, a)| {
                a.support.is_unsupported() && base.get(k).is_some_and(|b| b.is_supported())
            })
            .map(|(k, a)| format!("{k}: {a}"))
            .collect();
        if !flipped.is_empty() {
            bad.push(format!(
                "{at}: {} answers supported unrestricted are 'not supported' here, e.g. {}",
                flipped.len(),
                flipped
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        let log = suspicious_log_lines(&run.dmesg);
        if !log.is_empty() {
            bad.push(format!(
                "{at}: the report wrote to the kernel log: {}",
                log.iter()
                    .take(3)
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        let (func_ip, func_ip_why) = chosen(&run.strategies, "func_ip");
        match run.verify_status {
            Some(0) => {
                let ran_ok = |s: &str| {
                    run.verify.as_ref().is_some_and(|v| {
                        v["calibration"]["runs"].as_array().is_some_and(|runs| {
                            runs.iter()
                                .any(|r| r["strategy"] == s && r["error"].is_null())
                        })
                    })
                };
                if let Some(s) = &func_ip
                    && !ran_ok(s)
                {
                    bad.push(format!(
                        "{at}: the report names func_ip={s}, which --verify could not run"
                    ));
                }
            }
            Some(2) => {
                let text = format!(
                    "{}{}",
                    run.verify_err,
                    run.verify.clone().unwrap_or_default()
                );
                if fentry_ok && !condition_words(&run.name).iter().any(|w| text.contains(w)) {
                    bad.push(format!(
                        "{at}: --verify failed without naming the condition: {}",
                        text.trim()
                    ));
                }
            }
            other => bad.push(format!(
                "{at}: --verify exited {other:?} (1 = a strategy reported a wrong address): {}",
                run.verify_err.trim()
            )),
        }
        // What each condition must show.
        if let Some(mode) = run.name.strip_prefix("lockdown=") {
            if report.system.lockdown.map(|m| m.name()) != Some(mode) {
                bad.push(format!(
                    "{at}: the report says lockdown {:?} ({:?})",
                    report.system.lockdown, report.system.lockdown_source
                ));
            }
            if fentry_ok && run.verify_status != Some(0) {
                bad.push(format!(
                    "{at}: --verify should pass under lockdown: {}",
                    run.verify_err.trim()
                ));
            }
            if mode == "confidentiality" {
                let (kr, why) = chosen(&run.strategies, "kernel_read");
                if kr.is_some() || !why.contains("lockdown=confidentiality") {
                    bad.push(format!(
                        "{at}: kernel_read should name lockdown as why nothing runs: {kr:?}: {why}"
                    ));
                }
            }
        }
        if run.name == "kernel.kptr_restrict=2" && fentry_ok {
            let want = release.at_least(5, 18).then(|| "helper".to_string());
            if func_ip != want {
                bad.push(format!(
                    "{at}: func_ip chose {func_ip:?}, expected {want:?}: {func_ip_why}"
                ));
            }
            if want.is_none() && !func_ip_why.contains("kernel.kptr_restrict = 2") {
                bad.push(format!(
                    "{at}: the refusal does not name kptr_restrict: {func_ip_why}"
                ));
            }
        }
        if (run.name.starts_with("net.core.bpf_jit")) && fentry_ok && run.verify_status != Some(0) {
            bad.push(format!(
                "{at}: --verify should pass (jited_ksyms still shows the address): {}",
                run.verify_err.trim()
            ));
        }
        if run.name == "unprivileged_bpf_allowed" {
            bad.extend(check_unprivileged_probes(&at, &base, report));
        }
        if run.name == "token" {
            bad.extend(check_token_probes(&at, &base, report));
        }
        if run.name.starts_with("unprivileged") {
            // No inferred answer may contradict a probed one.
            let contradicting: Vec<String> = report
                .answers()
                .filter(|(k, a)| {
                    a.origin == probe::Origin::Inferred
                        && !a.support.is_unknown()
                        && base.get(k).is_some_and(|b| {
                            !b.support.is_unknown() && b.is_supported() != a.is_supported()
                        })
                })
                .map(|(k, a)| format!("{k}: inferred {a}, probed as root {}", base[&k]))
                .collect();
            if !contradicting.is_empty() {
                bad.push(format!(
                    "{at}: {} inferred answers contradict root's probed ones: {}",
                    contradicting.len(),
                    contradicting.join("; ")
                ));
            }
        }
        if run.name == "unprivileged" && report.inferred.is_none() {
            let unpriv = baseline
                .system
                .sysctl("kernel.unprivileged_bpf_disabled")
                .unwrap_or(1);
            if unpriv != 0 {
                bad.push(format!(
                    "{at}: the report does not say its answers are inferred"
                ));
            }
        }
    }
    bad
}

/// With unprivileged BPF allowed: socket_filter and cgroup_skb, and the helpers in them,
/// are probed (origin `probed`), and every conclusive probed answer agrees with root's.
fn check_unprivileged_probes(
    at: &str,
    base: &HashMap<String, &probe::Answer>,
    report: &Report,
) -> Vec<String> {
    let mut bad = Vec::new();
    let (mut probed, mut helpers) = (0, 0);
    for (k, a) in report.answers() {
        if a.origin != probe::Origin::Probed || a.support.is_unknown() {
            continue;
        }
        probed += 1;
        if k.starts_with("helper ") && k.contains(" in ") {
            helpers += 1;
        }
        let Some(b) = base.get(&k) else { continue };
        if !b.support.is_unknown() && b.is_supported() != a.is_supported() {
            bad.push(format!("{at}: {k} probed {a}, but root's answer is {b}"));
        }
    }
    for t in ["socket_filter", "cgroup_skb"] {
        let k = format!("prog_type {t}");
        let a = report
            .answers()
            .find(|(n, _)| *n == k)
            .map(|(_, a)| a.clone());
        if !a
            .as_ref()
            .is_some_and(|a| a.origin == probe::Origin::Probed && a.is_supported())
        {
            bad.push(format!("{at}: {k} should be probed and supported: {a:?}"));
        }
    }
    if helpers < 40 {
        bad.push(format!(
            "{at}: only {helpers} helper answers were probed (of {probed} probed answers)"
        ));
    }
    bad
}

/// Through a delegated token (from an unprivileged user namespace): the program types it
/// allows, the helpers in them and the map types are probed and agree with root's; a
/// program type it does not allow is unknown, naming the token.
pub fn check_token_probes(
    at: &str,
    base: &HashMap<String, &probe::Answer>,
    report: &Report,
) -> Vec<String> {
    use probe::token::Names;
    let mut bad = Vec::new();
    let Some(token) = &report.token else {
        return vec![format!(
            "{at}: the report does not show the token it probed through"
        )];
    };
    let allows = |names: &Names, n: &str| match names {
        Names::Any(_) => true,
        Names::Some(v) => v.iter().any(|x| x == n),
    };
    let (mut agreed, mut helpers) = (0, 0);
    for (k, a) in report.answers() {
        let allowed = if let Some(t) = k.strip_prefix("prog_type ") {
            Some(allows(&token.progs, t))
        } else if let Some(t) = k.strip_prefix("map_type ") {
            Some(allows(&token.maps, t))
        } else if let Some((_, ctx)) = k.strip_prefix("helper ").and_then(|h| h.split_once(" in "))
        {
            // Default contexts only: the others set an attach type or a target.
            (!ctx.contains('/')).then(|| allows(&token.progs, ctx))
        } else {
            None
        };
        let Some(b) = base.get(&k).filter(|b| !b.support.is_unknown()) else {
            continue;
        };
        match allowed {
            Some(true) => {
                // A user namespace cannot mount securityfs: the lockdown mode may be
                // unreadable there, and what lockdown could refuse stays unknown, saying so.
                let lockdown_unread = report.system.lockdown.is_none()
                    && a.support.is_unknown()
                    && a.to_string().contains("could not be read");
                if lockdown_unread {
                    continue;
                }
                if a.origin != probe::Origin::Probed || a.support.is_unknown() {
                    bad.push(format!(
                        "{at}: {k} is allowed by the token but answered {a}"
                    ));
                } else if a.is_supported() != b.is_supported() {
                    bad.push(format!("{at}: {k} probed {a}, but root's answer is {b}"));
                } else {
                    agreed += 1;
                    helpers += usize::from(k.starts_with("helper "));
                }
            }
            Some(false)
                if k.starts_with("prog_type ")
                    && !(a.support.is_unknown()
                        && a.to_string().contains("token does not allow")) =>
            {
                bad.push(format!(
                    "{at}: {k} is outside the token, yet answered {a} (root: {b})"
                ));
            }
            _ => {}
        }
    }
    if helpers < 100 {
        bad.push(format!(
            "{at}: only {helpers} helper answers through the token agree with root's \
             ({agreed} answers in all)"
        ));
    }
    bad
}

/// One table cell per condition: what the report chose and what --verify did.
pub fn cell(run: &ConditionRun) -> String {
    let (func_ip, _) = chosen(&run.strategies, "func_ip");
    let (kr, _) = chosen(&run.strategies, "kernel_read");
    let verify = match run.verify_status {
        Some(0) => "verify ok".to_string(),
        Some(2) => "verify refused, says why".to_string(),
        other => format!("verify {other:?}"),
    };
    let lockdown = run
        .report
        .as_ref()
        .and_then(|r| r.system.lockdown)
        .map_or("?", |m| m.name());
    format!(
        "func_ip {}, kernel_read {}, {verify}, lockdown {lockdown}, log +{}",
        func_ip.as_deref().unwrap_or("none"),
        kr.as_deref().unwrap_or("none"),
        suspicious_log_lines(&run.dmesg).len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_that_count() {
        let lines = vec![
            "Lockdown: bpf-features: use of bpf to read kernel RAM is restricted".to_string(),
            "random: crng init done".to_string(),
        ];
        assert_eq!(suspicious_log_lines(&lines).len(), 1);
    }

    #[test]
    fn chosen_reads_the_strategies_section() {
        let s = serde_json::json!([{"need": "func_ip", "chosen": null, "why": "kptr"}]);
        assert_eq!(chosen(&s, "func_ip"), (None, "kptr".to_string()));
        assert_eq!(chosen(&s, "loop"), (None, String::new()));
    }
}
