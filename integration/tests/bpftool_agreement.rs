//! Agreement with an independent implementation: Debian's `bpftool feature probe`. Every
//! (program type, helper) pair both answer conclusively must agree, or fall in one of the
//! explained classes below (also listed in the README).
use std::process::Command;

use probe::{Features, Options};

/// Why bpftool and we may disagree on a pair, decided from our evidence.
fn explained(
    bpftool_says_yes: bool,
    ours: &probe::Answer,
    bpftool_knows: bool,
    bpftool_row_empty: bool,
    prog_type: probe::ProgramType,
) -> Option<&'static str> {
    if !bpftool_says_yes
        && bpftool_row_empty
        && ["tracing", "ext", "lsm", "struct_ops"].contains(&prog_type.name())
    {
        // These types load only against an attach target (a kernel function, a BPF
        // program); bpftool's probe gives none, so it lists no helper at all.
        return Some("bpftool cannot probe types that need an attach target");
    }
    let line = match &ours.support {
        probe::Support::Unsupported { evidence, .. } => {
            evidence.verifier_line.clone().unwrap_or_default()
        }
        _ => String::new(),
    };
    if bpftool_says_yes && line.contains("cannot use helper") {
        // Newer verifiers say "program of this type cannot use helper"; libbpf's probe
        // (before 1.2) only recognised "invalid func"/"unknown func" and reports available.
        return Some("verifier wording unknown to bpftool's libbpf");
    }
    if bpftool_says_yes
        && (line.contains("might sleep")
            || line.contains("in non-sleepable prog")
            || line.contains("not allowed in probe")
            || line.contains("not supported for program type")
            || line.contains("supported only for"))
    {
        // The helper exists for the type but is refused in this (non-sleepable, plain)
        // context; libbpf counts any refusal other than "unknown func" as available.
        return Some("context refusal counted as available by bpftool");
    }
    if !bpftool_says_yes && !bpftool_knows {
        return Some("helper newer than bpftool's libbpf");
    }
    None
}

#[test]
fn helper_lists_agree_with_bpftool() {
    let Some(_) = integration::need_bpf("helper_lists_agree_with_bpftool") else {
        return;
    };
    let out = Command::new("bpftool")
        .args(["feature", "probe", "kernel", "-j"])
        .output()
        .or_else(|_| {
            Command::new("/usr/sbin/bpftool")
                .args(["feature", "probe", "kernel", "-j"])
                .output()
        });
    let out = match out {
        Ok(o) if o.status.success() => o,
        other => {
            integration::skip(
                "helper_lists_agree_with_bpftool",
                &format!(
                    "bpftool is not usable here ({:?}); scripts/setup.sh installs it",
                    other.map(|o| o.status)
                ),
            );
            return;
        }
    };
    let bt: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    let helpers = bt["helpers"].as_object().expect("helpers section");
    let all_known: std::collections::HashSet<&str> = helpers
        .values()
        .flat_map(|l| l.as_array().unwrap().iter().map(|h| h.as_str().unwrap()))
        .collect();
    let report = Features::new(Options::default()).probe_all();
    let (mut pairs, mut explained_count, mut unexplained) = (0, 0, Vec::new());
    let mut compared_keys = std::collections::BTreeSet::new();
    let mut context_only_keys = std::collections::BTreeSet::new();
    let mut default_keys = std::collections::BTreeSet::new();
    for row in &report.helpers {
        if row.context.attach_name().is_some() {
            // bpftool has no attach contexts (`tracing` is only probed as tracing/fentry).
            context_only_keys.insert(format!(
                "{}_available_helpers",
                row.context.prog_type().name()
            ));
            continue;
        }
        let key = format!("{}_available_helpers", row.context.prog_type().name());
        default_keys.insert(key.clone());
        let Some(list) = helpers.get(&key).and_then(|l| l.as_array()) else {
            continue;
        };
        compared_keys.insert(key.clone());
        let list: Vec<&str> = list.iter().filter_map(|h| h.as_str()).collect();
        for (name, a) in &row.answers {
            let Some(ours) = a.support.as_bool() else {
                continue;
            };
            pairs += 1;
            let theirs = list.contains(&name.as_str());
            if theirs == ours {
                continue;
            }
            match explained(
                theirs,
                a,
                all_known.contains(name.as_str()),
                list.is_empty(),
                row.context.prog_type(),
            ) {
                Some(_) => explained_count += 1,
                None => unexplained.push(format!(
                    "{} {name}: bpftool {theirs}, ours {a}",
                    row.context.name()
                )),
            }
        }
    }
    eprintln!(
        "bpftool agreement: {pairs} pairs compared, {explained_count} explained disagreements, {} unexplained",
        unexplained.len()
    );
    // Every program type bpftool lists is compared (a naming mismatch would skip it
    // silently), and every conclusive answer of those rows was a pair.
    let missed: Vec<&String> = helpers
        .keys()
        .filter(|k| {
            // A type with a default row is compared there, whatever its context rows.
            !compared_keys.contains(*k)
                && (default_keys.contains(*k) || !context_only_keys.contains(*k))
        })
        .collect();
    assert!(
        missed.is_empty(),
        "program types bpftool lists that we did not compare: {missed:?}"
    );
    let conclusive: usize = report
        .helpers
        .iter()
        .filter(|r| r.context.attach_name().is_none())
        .filter(|r| {
            compared_keys.contains(&format!(
                "{}_available_helpers",
                r.context.prog_type().name()
            ))
        })
        .map(|r| {
            r.answers
                .values()
                .filter(|a| !a.support.is_unknown())
                .count()
        })
        .sum();
    assert_eq!(pairs, conclusive);
    assert!(
        unexplained.is_empty(),
        "unexplained disagreements:\n{}",
        unexplained.join("\n")
    );
}
