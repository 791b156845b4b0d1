//! The attach-point resolver (issue 12) against real attaches: on a reproducible sample of
//! functions, every "yes" attaches and every "no" is refused the way its evidence says; a
//! few functions whose fate differs between the matrix kernels are pinned. Runs where BPF
//! loads and tracefs is readable (the matrix VMs); elsewhere it is skipped, visibly.
//!
//! With `MATRIX_SERIES_OUT` set (the matrix guest), the sample's counts are written there
//! as `attach_verify.json` for the matrix table.
use std::hash::{Hash, Hasher};

use probe::{
    Features, Options, Scope, Support,
    attach_points::{AttachPoints, Mechanism, VerifyOutcome, noreturn, verify_attach},
};

const YES_PER_MECHANISM: usize = 10;
const NO_PER_MECHANISM: usize = 4;

fn resolver(test: &str) -> Option<AttachPoints> {
    integration::need_bpf(test)?;
    let f = Features::new(Options::default());
    let ap = AttachPoints::read_for(&f);
    if let Err(e) = &ap.sources.ftrace {
        integration::skip(test, &format!("available_filter_functions: {e}"));
        return None;
    }
    if let Err(e) = &ap.sources.btf {
        integration::skip(test, &format!("BTF: {e}"));
        return None;
    }
    Some(ap)
}

/// A fixed order that is not BTF's (so the sample spans the kernel), the same every run.
fn shuffled(ap: &AttachPoints) -> Vec<&str> {
    let mut names: Vec<(u64, &str)> = ap
        .function_names()
        .map(|n| {
            let mut h = std::hash::DefaultHasher::new();
            n.hash(&mut h);
            (h.finish(), n)
        })
        .collect();
    names.sort_unstable();
    names.into_iter().map(|(_, n)| n).collect()
}

/// Whether a refusal fits a "no" answer's evidence.
fn refusal_fits(detail: &str, outcome: &VerifyOutcome) -> bool {
    match outcome {
        VerifyOutcome::Attached => false,
        // Nothing to load: no BTF id for the function.
        VerifyOutcome::NotTried(_) => detail.contains("not in the kernel's BTF"),
        VerifyOutcome::Refused { .. } => true,
    }
}

#[test]
fn the_resolver_agrees_with_real_attaches() {
    let test = "the_resolver_agrees_with_real_attaches";
    let Some(ap) = resolver(test) else {
        return;
    };
    let names = shuffled(&ap);
    let mut report = Vec::new();
    let (mut yes, mut yes_ok, mut no, mut no_ok) = (0, 0, 0, 0);
    let mut mismatches = Vec::new();
    for m in Mechanism::ALL {
        let (mut y, mut n) = (0, 0);
        for name in &names {
            if y >= YES_PER_MECHANISM && n >= NO_PER_MECHANISM {
                break;
            }
            let ct = ap.can_trace(name).expect("BTF names are valid");
            let a = ct.get(m);
            let pick = match &a.answer.support {
                Support::Supported { .. } if y < YES_PER_MECHANISM => Some(true),
                // A function-level "no" (not the kernel lacking the mechanism), except
                // fexit on __noreturn functions: kernels before 6.15 attach it (it never
                // runs), so an attach cannot check that answer.
                Support::Unsupported {
                    scope: Scope::Target,
                    ..
                } if n < NO_PER_MECHANISM && !(m == Mechanism::Fexit && noreturn(name)) => {
                    Some(false)
                }
                _ => None,
            };
            let Some(expect_yes) = pick else {
                continue;
            };
            let symbol = a.symbol.as_deref().unwrap_or(name);
            let outcome = verify_attach(&ap, name, symbol, m);
            let detail = a.answer.to_string();
            let ok = if expect_yes {
                y += 1;
                outcome == VerifyOutcome::Attached
            } else {
                n += 1;
                refusal_fits(&detail, &outcome)
            };
            report.push(format!(
                "{m:<12} {name:<40} {:<3} {outcome}",
                if expect_yes { "yes" } else { "no" }
            ));
            if !ok {
                mismatches.push(format!(
                    "{m} {name}: answered {detail}; real attach: {outcome}"
                ));
            }
            if expect_yes {
                yes += 1;
                yes_ok += usize::from(ok);
            } else {
                no += 1;
                no_ok += usize::from(ok);
            }
        }
    }
    for line in &report {
        println!("{line}");
    }
    println!("yes answers attached: {yes_ok}/{yes}; no answers refused: {no_ok}/{no}");
    if let Some(dir) = std::env::var_os("MATRIX_SERIES_OUT") {
        let v = serde_json::json!({
            "yes": yes, "yes_attached": yes_ok, "no": no, "no_refused": no_ok,
            "mismatches": mismatches,
        });
        let _ = std::fs::write(
            std::path::Path::new(&dir).join("attach_verify.json"),
            v.to_string(),
        );
    }
    assert!(yes >= 20, "only {yes} yes answers to check");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// Functions whose fate differs between the matrix kernels, found by comparing the
/// `functions --json` output of the three kernels (not guessed): (series, function,
/// mechanism, expected yes/no, a phrase of the evidence).
const PINNED: &[(&str, &str, Mechanism, bool, &str)] = &[
    // Seven arguments: the x86-64 trampoline takes six before 6.6.
    (
        "5.10",
        "fsnotify",
        Mechanism::Fentry,
        false,
        "has 7 arguments",
    ),
    (
        "6.1",
        "fsnotify",
        Mechanism::Fentry,
        false,
        "has 7 arguments",
    ),
    ("6.12", "fsnotify", Mechanism::Fentry, true, ""),
    ("5.10", "fsnotify", Mechanism::Kprobe, true, ""),
    // A 16-byte struct (sockptr_t) by value: trampolines take it from 6.1.
    (
        "5.10",
        "raw_setsockopt",
        Mechanism::Fentry,
        false,
        "16-byte struct",
    ),
    ("6.1", "raw_setsockopt", Mechanism::Fentry, true, ""),
    ("6.12", "raw_setsockopt", Mechanism::Fentry, true, ""),
    // finish_task_switch became finish_task_switch.isra.0 (bcc#3293, bpftrace#3940).
    ("5.10", "finish_task_switch", Mechanism::Fentry, true, ""),
    (
        "6.1",
        "finish_task_switch",
        Mechanism::Fentry,
        false,
        "not in the kernel's BTF",
    ),
    (
        "6.1",
        "finish_task_switch",
        Mechanism::Kprobe,
        true,
        "finish_task_switch.isra.0",
    ),
    (
        "6.12",
        "finish_task_switch",
        Mechanism::Kprobe,
        true,
        "finish_task_switch.isra.0",
    ),
    // Two statics of one name: a name is ambiguous everywhere.
    (
        "6.12",
        "calipso_doi_remove",
        Mechanism::Kprobe,
        false,
        "ambiguous",
    ),
];

#[test]
fn pinned_functions_fare_as_on_each_kernel() {
    let test = "pinned_functions_fare_as_on_each_kernel";
    let Some(ap) = resolver(test) else {
        return;
    };
    let Some(release) = ap.kernel.release.clone() else {
        integration::skip(test, "the kernel release does not parse");
        return;
    };
    let series = format!("{}.{}", release.version.major, release.version.minor);
    let pins: Vec<_> = PINNED.iter().filter(|p| p.0 == series).collect();
    if pins.is_empty() {
        integration::skip(test, &format!("no pinned functions for {series}"));
        return;
    }
    for (_, function, m, expect_yes, phrase) in pins {
        let ct = ap.can_trace(function).unwrap();
        let a = ct.get(*m);
        let text = format!("{} {}", a.answer, a.symbol.as_deref().unwrap_or(""));
        if *expect_yes {
            assert!(a.answer.is_supported(), "{series} {m} {function}: {text}");
            let outcome = verify_attach(&ap, function, a.symbol.as_deref().unwrap(), *m);
            assert_eq!(outcome, VerifyOutcome::Attached, "{series} {m} {function}");
        } else {
            // "ambiguous" is an unknown; the other pins are function-level "no"s.
            assert!(!a.answer.is_supported(), "{series} {m} {function}: {text}");
        }
        assert!(text.contains(phrase), "{series} {m} {function}: {text}");
        println!("{series} {m:<12} {function:<22} {text}");
    }
}
