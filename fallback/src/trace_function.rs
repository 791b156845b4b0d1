//! The `trace_function` need: "run my program when kernel function F is entered (and
//! left)". Best first: fentry/fexit (5.5; arguments typed by BTF, cheapest), a
//! kprobe/kretprobe on F's name, a kprobe on F's only compiler clone (`F.isra.0`), a
//! kprobe_multi link by address (5.18; every instance of an ambiguous name, or every
//! clone). Each candidate is decided by the probe layer's attach-point answers for F
//! ([`probe::attach_points`]), which carry the evidence.
//!
//! For a set of functions (pwru traces every function taking a `struct sk_buff *`),
//! [`plan_set`] plans each on its own and groups them by strategy: one function that
//! cannot be traced is listed with its reason, and never fails the set.
use std::collections::BTreeMap;

use probe::{
    FeatureSource, Misc, ProgramType,
    attach_points::{AttachPoints, BadName, CanTrace, Mechanism},
};
use serde::Serialize;

use crate::strategy::{self, Choice, Need, Refusal, StrategyError, runnable_if};

/// The need, for [`strategy::choose`].
pub struct TraceFunction;

/// The strategies of [`TraceFunction`], best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceFunctionStrategy {
    /// fentry (and fexit) on F.
    Fentry,
    /// kprobe (and kretprobe) on F's name.
    Kprobe,
    /// kprobe (and kretprobe) on F's only compiler clone.
    KprobeClone,
    /// One kprobe_multi link on the addresses of every function called F, or of F's
    /// clones.
    KprobeMultiAddr,
}

impl std::str::FromStr for TraceFunctionStrategy {
    type Err = StrategyError;
    /// `fentry`, `kprobe`, `kprobe_clone` or `kprobe_multi_addr`.
    fn from_str(s: &str) -> Result<Self, StrategyError> {
        strategy::parse::<TraceFunction>(s, "API")
    }
}

impl Need for TraceFunction {
    const NAME: &'static str = "trace_function";
    const DESCRIPTION: &'static str = "run a program when a kernel function is entered and left";
    type Strategy = TraceFunctionStrategy;
    fn candidates() -> &'static [TraceFunctionStrategy] {
        &[
            TraceFunctionStrategy::Fentry,
            TraceFunctionStrategy::Kprobe,
            TraceFunctionStrategy::KprobeClone,
            TraceFunctionStrategy::KprobeMultiAddr,
        ]
    }
    fn name(s: TraceFunctionStrategy) -> &'static str {
        match s {
            TraceFunctionStrategy::Fentry => "fentry",
            TraceFunctionStrategy::Kprobe => "kprobe",
            TraceFunctionStrategy::KprobeClone => "kprobe_clone",
            TraceFunctionStrategy::KprobeMultiAddr => "kprobe_multi_addr",
        }
    }
    /// The report's question, for no function in particular: is the mechanism there?
    /// (`can-trace F` answers for F.)
    fn runnable(src: &dyn FeatureSource, s: TraceFunctionStrategy) -> Result<String, Refusal> {
        match s {
            TraceFunctionStrategy::Fentry => runnable_if(
                src.program_type(ProgramType::TRACING),
                "program type tracing",
            ),
            TraceFunctionStrategy::Kprobe | TraceFunctionStrategy::KprobeClone => {
                runnable_if(src.program_type(ProgramType::KPROBE), "program type kprobe")
            }
            TraceFunctionStrategy::KprobeMultiAddr => {
                runnable_if(src.misc(Misc::KprobeMulti), "kprobe_multi links")
            }
        }
    }
}

/// When the program should run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Want {
    /// On entry.
    pub enter: bool,
    /// On return.
    pub leave: bool,
}

impl Want {
    /// Entry and return.
    pub const BOTH: Want = Want {
        enter: true,
        leave: true,
    };
    /// Entry only.
    pub const ENTER: Want = Want {
        enter: true,
        leave: false,
    };
}

/// How to trace one function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FunctionPlan {
    /// The function asked for.
    pub function: String,
    /// The strategy and why.
    pub choice: Choice<TraceFunctionStrategy>,
    /// The mechanisms to attach with, entry first (`fentry` and `fexit`; a kprobe_multi
    /// pair is `kprobe_multi` twice, the second on return).
    pub mechanisms: Vec<Mechanism>,
    /// The symbols to attach to: F, its clone, or (by address) every instance.
    pub symbols: Vec<String>,
    /// For [`TraceFunctionStrategy::KprobeMultiAddr`]: the addresses; never 0.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addrs: Vec<u64>,
    /// The module of the symbol; `None` for vmlinux.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

/// Why a function cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The name cannot be a kernel function's.
    #[error(transparent)]
    BadName(#[from] BadName),
    /// No strategy can run for it (or the forced one cannot).
    #[error("{function}: {source}")]
    Strategy {
        /// The function.
        function: String,
        /// The strategy layer's error, with the refusing answers.
        source: Box<StrategyError>,
    },
}

fn mechanisms(s: TraceFunctionStrategy, want: Want) -> Vec<Mechanism> {
    let (enter, leave) = match s {
        TraceFunctionStrategy::Fentry => (Mechanism::Fentry, Mechanism::Fexit),
        TraceFunctionStrategy::Kprobe | TraceFunctionStrategy::KprobeClone => {
            (Mechanism::Kprobe, Mechanism::Kretprobe)
        }
        // kprobe_multi links carry a return flag (kretprobe_multi): the same mechanism,
        // twice, the second on return.
        TraceFunctionStrategy::KprobeMultiAddr => (Mechanism::KprobeMulti, Mechanism::KprobeMulti),
    };
    let mut v = Vec::new();
    if want.enter {
        v.push(enter);
    }
    if want.leave {
        v.push(leave);
    }
    v
}

/// Why a strategy runs, and what it attaches to: symbols, addresses, module.
type Runnable = (String, Vec<String>, Vec<u64>, Option<String>);

/// Whether `s` can run for the function `ct` answers about, given `want`.
fn runnable_for(
    ap: &AttachPoints,
    ct: &CanTrace,
    s: TraceFunctionStrategy,
    want: Want,
) -> Result<Runnable, Refusal> {
    // "kprobe_clone: kprobe: …", but not "fentry: fentry: …".
    let named = |m: Mechanism, text: String| {
        if m.name() == TraceFunction::name(s) {
            text
        } else {
            format!("{m}: {text}")
        }
    };
    let refuse = |m: Mechanism| {
        let a = ct.get(m);
        Err(Refusal {
            why: named(m, a.answer.to_string()),
            answers: vec![a.answer.clone()],
        })
    };
    match s {
        TraceFunctionStrategy::Fentry
        | TraceFunctionStrategy::Kprobe
        | TraceFunctionStrategy::KprobeClone => {
            let ms = mechanisms(s, want);
            let mut whys = Vec::new();
            let mut symbol = None;
            for m in &ms {
                let a = ct.get(*m);
                if !a.answer.is_supported() {
                    return refuse(*m);
                }
                let on_clone = a.symbol.as_deref() != Some(ct.function.as_str());
                // kprobe names F itself; kprobe_clone only its clone.
                match s {
                    TraceFunctionStrategy::Kprobe if on_clone => {
                        return Err(named(
                            *m,
                            format!(
                                "`{}` itself is not in kallsyms (only a clone is)",
                                ct.function
                            ),
                        )
                        .into());
                    }
                    TraceFunctionStrategy::KprobeClone if !on_clone => {
                        return Err(named(
                            *m,
                            format!("`{}` itself is in kallsyms: no clone needed", ct.function),
                        )
                        .into());
                    }
                    _ => {}
                }
                symbol = a.symbol.clone();
                whys.push(format!("{m}: {}", a.answer));
            }
            let module = ct.get(ms[0]).module.clone();
            Ok((
                whys.join("; "),
                symbol.into_iter().collect(),
                Vec::new(),
                module,
            ))
        }
        TraceFunctionStrategy::KprobeMultiAddr => {
            if !ap.kernel.kprobe_multi.is_supported() {
                return Err(Refusal {
                    why: format!("kprobe_multi links: {}", ap.kernel.kprobe_multi),
                    answers: vec![ap.kernel.kprobe_multi.clone()],
                });
            }
            let (Ok(k), Ok(ft)) = (&ap.sources.kallsyms, &ap.sources.ftrace) else {
                return Err("kallsyms or available_filter_functions is not readable"
                    .to_string()
                    .into());
            };
            if k.addresses_hidden {
                return Err(
                    "kallsyms hides addresses (kernel.kptr_restrict): kprobe_multi by \
                            address needs them; set kernel.kptr_restrict=0, or 1 with CAP_SYSLOG"
                        .to_string()
                        .into(),
                );
            }
            // Every function called F, or else every compiler clone of F, that ftrace can
            // patch.
            let own = k.get(&ct.function);
            let names: Vec<String> = if !own.is_empty() {
                vec![ct.function.clone()]
            } else {
                k.clones(&ct.function).map(str::to_string).collect()
            };
            let names: Vec<String> = names.into_iter().filter(|n| ft.count(n) > 0).collect();
            let addrs: Vec<u64> = names
                .iter()
                .flat_map(|n| k.get(n).iter().map(|i| i.addr))
                .filter(|a| *a != 0)
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "no function called `{}` or compiler clone of it that ftrace can patch",
                    ct.function
                )
                .into());
            }
            let module = names
                .first()
                .and_then(|n| k.get(n).first())
                .and_then(|i| i.module.as_deref().map(str::to_string));
            Ok((
                format!(
                    "kprobe_multi by address on {} function(s): {}",
                    addrs.len(),
                    names.join(", ")
                ),
                names,
                addrs,
                module,
            ))
        }
    }
}

/// How to trace `function`, best strategy first, or the one forced.
pub fn plan(
    ap: &AttachPoints,
    function: &str,
    want: Want,
    force: Option<&str>,
) -> Result<FunctionPlan, PlanError> {
    plan_from(ap, &ap.can_trace(function)?, want, force)
}

/// [`plan`] from the answers `ct` already has for the function.
pub fn plan_from(
    ap: &AttachPoints,
    ct: &CanTrace,
    want: Want,
    force: Option<&str>,
) -> Result<FunctionPlan, PlanError> {
    // The choice stops at the first strategy that runs: the last one kept is it.
    let runs = std::cell::RefCell::new(None);
    let choice = strategy::choose_by::<TraceFunction>(force, |s| {
        runnable_for(ap, ct, s, want).map(|(why, symbols, addrs, module)| {
            *runs.borrow_mut() = Some((symbols, addrs, module));
            why
        })
    })
    .map_err(|source| PlanError::Strategy {
        function: ct.function.clone(),
        source: Box::new(source),
    })?;
    let (symbols, addrs, module) = runs.into_inner().unwrap_or_default();
    Ok(FunctionPlan {
        function: ct.function.clone(),
        mechanisms: mechanisms(choice.strategy, want),
        choice,
        symbols,
        addrs,
        module,
    })
}

/// Plans for a set of functions, grouped by strategy.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SetPlan {
    /// The functions each strategy traces.
    pub groups: BTreeMap<TraceFunctionStrategy, Vec<FunctionPlan>>,
    /// The functions no strategy can trace, with why.
    pub refused: Vec<(String, String)>,
}

impl SetPlan {
    /// How many functions will be traced.
    pub fn planned(&self) -> usize {
        self.groups.values().map(Vec::len).sum()
    }
}

/// Plans every function of `functions` on its own (one that cannot be traced is refused
/// alone), grouped by strategy.
pub fn plan_set<'a>(
    ap: &AttachPoints,
    functions: impl IntoIterator<Item = &'a str>,
    want: Want,
    force: Option<&str>,
) -> SetPlan {
    let mut out = SetPlan::default();
    for f in functions {
        match plan(ap, f, want, force) {
            Ok(p) => out.groups.entry(p.choice.strategy).or_default().push(p),
            Err(e) => out.refused.push((f.to_string(), e.to_string())),
        }
    }
    out
}

/// The BTF functions with a parameter spelt `param` among their first five (pwru's
/// selection: `struct sk_buff *`), in BTF order.
pub fn functions_with_param<'a>(ap: &'a AttachPoints, param: &'a str) -> Vec<&'a str> {
    ap.function_names()
        .filter(|name| {
            ap.params(name)
                .is_some_and(|p| p.iter().take(5).any(|t| t == param))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe::{
        Answer, KernelRelease, Support,
        attach_points::{FtraceFunctions, KernelMechanisms, KprobeBlacklist, Sources, TextSymbols},
        btf::{BtfBuilder, BtfProtos},
    };

    fn ap(tracing: Support, kallsyms: &str) -> AttachPoints {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        let skb = b.struct_("sk_buff", 232, &[("len", int, 0)]);
        let skb_ptr = b.ptr(skb);
        let proto = b.func_proto(int, &[("x", int), ("skb", skb_ptr)]);
        let other = b.func_proto(int, &[("x", int)]);
        for f in ["ip_rcv", "cloned", "dup", "gone"] {
            b.func(f, proto);
        }
        b.func("no_skb", other);
        let ftrace = "ip_rcv\ncloned.isra.0\ndup\ndup\nno_skb\n";
        let sources = Sources {
            btf: Ok(BtfProtos::from_blobs(b.build(), Vec::new()).unwrap().0),
            btf_skipped: Vec::new(),
            ftrace: FtraceFunctions::parse(ftrace.as_bytes()),
            kallsyms: TextSymbols::parse(kallsyms.as_bytes()).map_err(|e| e.to_string()),
            blacklist: KprobeBlacklist::parse("".as_bytes()),
            timings: Default::default(),
            prepared: None,
        };
        let yes = Answer::probed(Support::supported());
        AttachPoints::new(
            sources,
            KernelMechanisms {
                release: Some(KernelRelease::parse("6.12.0").unwrap()),
                arch: "x86_64".into(),
                tracing: Answer::probed(tracing),
                kprobe: yes.clone(),
                kprobe_multi: yes,
                kprobe_needs_ftrace: true,
            },
        )
    }

    const KALLSYMS: &str = "ffffffff81000000 T ip_rcv\n\
        ffffffff81001000 t cloned.isra.0\n\
        ffffffff81002000 t dup\n\
        ffffffff81003000 t dup\n\
        ffffffff81004000 T no_skb\n";

    #[test]
    fn each_function_gets_the_best_path_it_allows() {
        let ap = ap(Support::supported(), KALLSYMS);
        let p = plan(&ap, "ip_rcv", Want::BOTH, None).unwrap();
        assert_eq!(p.choice.strategy, TraceFunctionStrategy::Fentry);
        assert_eq!(p.mechanisms, vec![Mechanism::Fentry, Mechanism::Fexit]);
        let p = plan(&ap, "cloned", Want::BOTH, None).unwrap();
        assert_eq!(p.choice.strategy, TraceFunctionStrategy::KprobeClone);
        assert_eq!(p.symbols, vec!["cloned.isra.0"]);
        assert!(p.choice.why.contains("not fentry"), "{}", p.choice.why);
        let p = plan(&ap, "dup", Want::ENTER, None).unwrap();
        assert_eq!(p.choice.strategy, TraceFunctionStrategy::KprobeMultiAddr);
        assert_eq!(p.addrs, vec![0xffffffff81002000, 0xffffffff81003000]);
        // Forced, and refused with the answers.
        let p = plan(&ap, "ip_rcv", Want::ENTER, Some("kprobe")).unwrap();
        assert_eq!(p.choice.strategy, TraceFunctionStrategy::Kprobe);
        assert!(p.choice.forced);
        let e = plan(&ap, "ip_rcv", Want::ENTER, Some("kprobe_clone")).unwrap_err();
        assert!(e.to_string().contains("no clone needed"), "{e}");
        assert!(plan(&ap, "gone", Want::ENTER, None).is_err());
        assert!(matches!(
            plan(&ap, "a b", Want::ENTER, None),
            Err(PlanError::BadName(_))
        ));
    }

    #[test]
    fn fentry_refused_by_policy_falls_back_to_kprobe() {
        let ap = ap(Support::unknown("EPERM", None), KALLSYMS);
        let p = plan(&ap, "ip_rcv", Want::BOTH, None).unwrap();
        assert_eq!(p.choice.strategy, TraceFunctionStrategy::Kprobe);
        assert_eq!(p.mechanisms, vec![Mechanism::Kprobe, Mechanism::Kretprobe]);
    }

    #[test]
    fn a_set_is_grouped_and_one_bad_function_fails_only_itself() {
        let ap = ap(Support::supported(), KALLSYMS);
        let skb = functions_with_param(&ap, "struct sk_buff *");
        assert_eq!(skb, vec!["ip_rcv", "cloned", "dup", "gone"]);
        let set = plan_set(&ap, skb.iter().copied(), Want::ENTER, None);
        assert_eq!(set.planned(), 3);
        assert_eq!(set.refused.len(), 1);
        assert_eq!(set.refused[0].0, "gone");
        assert_eq!(set.groups.len(), 3);
    }

    #[test]
    fn hidden_addresses_refuse_the_by_address_path() {
        let hidden = KALLSYMS
            .lines()
            .map(|l| format!("0000000000000000{}\n", &l[16..]))
            .collect::<String>();
        let ap = ap(Support::supported(), &hidden);
        let e = plan(&ap, "dup", Want::ENTER, None).unwrap_err();
        assert!(e.to_string().contains("kptr_restrict"), "{e}");
    }
}
