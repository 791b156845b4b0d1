//! `can-trace FUNC` and `functions [--param TYPE]`: the attach-point resolver and the
//! `trace_function` need on the command line.
use std::process::ExitCode;

use bpf_features::trace_function::{self, FunctionPlan, Want};
use probe::{
    Features, Support,
    attach_points::{AttachPoints, Mechanism, VerifyOutcome, verify_attach},
};
use serde_json::json;

use crate::emitted;

/// The resolver, read once for a command: under a `ulimit -v` too small for its indexes, a
/// clear error instead of an allocation abort.
fn resolver(features: &Features) -> Result<AttachPoints, ExitCode> {
    let need = probe::kernel::REPORT_ADDRESS_SPACE;
    match probe::kernel::address_space_limit() {
        Some(limit) if limit < need => {
            eprintln!(
                "bpf-features: the address-space limit (`ulimit -v`) is {} MiB; reading the \
                 kernel's BTF, kallsyms and ftrace lists needs at least {} MiB: raise it \
                 (`ulimit -v unlimited`)",
                limit >> 20,
                need >> 20
            );
            Err(ExitCode::from(2))
        }
        _ => Ok(AttachPoints::read_for(features)),
    }
}

fn want(enter_only: bool) -> Want {
    if enter_only { Want::ENTER } else { Want::BOTH }
}

/// `can-trace FUNC`: every mechanism's answer and the plan. Exit 0 some path runs, 1
/// every mechanism is not supported for it, 2 unknown or error.
pub fn can_trace(
    features: &Features,
    function: &str,
    enter_only: bool,
    force: Option<&str>,
    verify: bool,
    json_out: bool,
) -> ExitCode {
    let ap = match resolver(features) {
        Ok(ap) => ap,
        Err(code) => return code,
    };
    let ct = match ap.can_trace(function) {
        Ok(ct) => ct,
        Err(e) => {
            eprintln!("bpf-features: {e}");
            return ExitCode::from(2);
        }
    };
    let plan = trace_function::plan_from(&ap, &ct, want(enter_only), force);
    let verified: Vec<(Mechanism, VerifyOutcome)> = if verify {
        ct.mechanisms
            .iter()
            .map(|m| {
                let symbol = m.symbol.as_deref().unwrap_or(function);
                (
                    m.mechanism,
                    verify_attach(&ap, function, symbol, m.mechanism),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let all_unsupported = ct
        .mechanisms
        .iter()
        .all(|m| matches!(m.answer.support, Support::Unsupported { .. }));
    let code = ExitCode::from(match (&plan, all_unsupported) {
        (Ok(_), _) => 0,
        (Err(_), true) => 1,
        (Err(_), false) => 2,
    });
    if json_out {
        let v = json!({
            "function": ct.function,
            "params": ct.params,
            "mechanisms": ct.mechanisms,
            "plan": plan.as_ref().ok(),
            "plan_error": plan.as_ref().err().map(ToString::to_string),
            "verify_attach": verified
                .iter()
                .map(|(m, o)| json!({"mechanism": m, "outcome": o.to_string(),
                                     "attached": *o == VerifyOutcome::Attached}))
                .collect::<Vec<_>>(),
            "source_problems": ap.sources.problems(),
        });
        return emitted(&format!("{v}\n"), code);
    }
    let mut out = match &ct.params {
        Some(p) => format!("{}({})\n", ct.function, p.join(", ")),
        None => format!("{}\n", ct.function),
    };
    for m in &ct.mechanisms {
        out.push_str(&format!("  {:<13} {}\n", m.mechanism.name(), m.answer));
        if let Some((_, o)) = verified.iter().find(|(v, _)| *v == m.mechanism) {
            out.push_str(&format!("  {:<13} verified: {o}\n", ""));
        }
    }
    match &plan {
        Ok(p) => out.push_str(&plan_line(p)),
        Err(_) => out.push_str("plan: none (no mechanism above can run for it)\n"),
    }
    emitted(&out, code)
}

fn plan_line(p: &FunctionPlan) -> String {
    let ms: Vec<&str> = p.mechanisms.iter().map(|m| m.name()).collect();
    format!(
        "plan: {} ({} on {}): {}\n",
        trace_function_name(p),
        ms.join("+"),
        p.symbols.join(", "),
        p.choice.why
    )
}

fn trace_function_name(p: &FunctionPlan) -> &'static str {
    use bpf_features::strategy::Need;
    trace_function::TraceFunction::name(p.choice.strategy)
}

/// `functions [--param TYPE]`: the BTF functions (with a parameter of TYPE among their
/// first five), each with the strategy chosen for it. Exit 0, or 2 when BTF is unreadable.
pub fn functions(
    features: &Features,
    param: Option<&str>,
    limit: Option<usize>,
    enter_only: bool,
    json_out: bool,
) -> ExitCode {
    let ap = match resolver(features) {
        Ok(ap) => ap,
        Err(code) => return code,
    };
    if let Err(e) = &ap.sources.btf {
        eprintln!("bpf-features: functions are listed from BTF, which is not readable: {e}");
        return ExitCode::from(2);
    }
    let mut names: Vec<&str> = match param {
        Some(p) => trace_function::functions_with_param(&ap, p),
        None => ap.function_names().collect(),
    };
    let selected = names.len();
    if let Some(n) = limit {
        names.truncate(n);
    }
    let set = trace_function::plan_set(&ap, names.iter().copied(), want(enter_only), None);
    if json_out {
        let v = json!({
            "param": param,
            "selected": selected,
            "plans": set.groups.values().flatten().collect::<Vec<_>>(),
            "refused": set.refused.iter().map(|(f, why)| json!({"function": f, "why": why})).collect::<Vec<_>>(),
            "summary": ap.summary(),
            "source_problems": ap.sources.problems(),
        });
        return emitted(&format!("{v}\n"), ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for p in set.groups.values().flatten() {
        out.push_str(&format!(
            "{:<40} {:<18} {}\n",
            p.function,
            trace_function_name(p),
            p.symbols.join(",")
        ));
    }
    for (f, why) in &set.refused {
        // The whole refusal is in `can-trace F`; a line each here.
        let short: String = why.chars().take(100).collect();
        let more = if why.chars().count() > 100 { "…" } else { "" };
        out.push_str(&format!("{f:<40} {:<18} {short}{more}\n", "NONE"));
    }
    let counts: Vec<String> = set
        .groups
        .iter()
        .map(|(s, v)| {
            use bpf_features::strategy::Need;
            format!("{} {}", v.len(), trace_function::TraceFunction::name(*s))
        })
        .collect();
    out.push_str(&format!(
        "{selected} functions selected{}, {} listed: {}; {} with no path\n",
        param
            .map(|p| format!(" (a `{p}` among the first five parameters)"))
            .unwrap_or_default(),
        names.len(),
        counts.join(", "),
        set.refused.len()
    ));
    for p in ap.sources.problems() {
        out.push_str(&format!("note: {p}\n"));
    }
    emitted(&out, ExitCode::SUCCESS)
}
