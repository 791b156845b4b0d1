//! The strategy mechanism: a *need* lists its candidate strategies, best first, and says of
//! each whether this kernel can run it and why; [`choose`] takes the first that can, or the
//! one the user forced. New needs join by implementing [`Need`]; nothing else changes.
use std::fmt;

use probe::FeatureSource;
use serde::Serialize;

/// Forces strategies: `BPF_FEATURES_STRATEGY=func_ip=rewrite_constant,event_output=perf_buffer`.
pub const STRATEGY_ENV: &str = "BPF_FEATURES_STRATEGY";

/// A choice and the human-readable reason for it (the probe evidence).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Choice<S> {
    /// The strategy chosen.
    pub strategy: S,
    /// The probe answers behind it, and the better strategies refused and why.
    pub why: String,
    /// Whether the user forced it.
    pub forced: bool,
}

/// Something a tracer needs, with several ways to get it.
pub trait Need {
    /// Its name on the command line, in JSON and in [`STRATEGY_ENV`].
    const NAME: &'static str;
    /// A short phrase for the report.
    const DESCRIPTION: &'static str;
    /// The ways to get it, usually a fieldless enum.
    type Strategy: Copy + Eq + fmt::Debug + 'static;
    /// Every strategy, best first.
    fn candidates() -> &'static [Self::Strategy];
    /// A strategy's name on the command line, in JSON and in [`STRATEGY_ENV`].
    fn name(s: Self::Strategy) -> &'static str;
    /// `Ok(why it can run)` or `Err(why it cannot)`, from the probe answers.
    fn runnable(src: &dyn FeatureSource, s: Self::Strategy) -> Result<String, Refusal>;
}

/// Why no strategy was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategyError {
    /// A forced strategy this kernel cannot run: an error, never a silent fallback.
    #[error(
        "{need}: strategy '{strategy}' was forced ({source_of}) but cannot run on this kernel: {why}"
    )]
    ForcedNotRunnable {
        /// The need.
        need: &'static str,
        /// The forced strategy.
        strategy: String,
        /// Who forced it: `API` or the environment variable.
        source_of: String,
        /// Why it cannot run.
        why: String,
        /// The probe answers that refused it.
        answers: Vec<probe::Answer>,
    },
    /// A strategy name the need does not have.
    #[error("{need}: unknown strategy '{given}' ({source_of}); valid: {valid}")]
    UnknownStrategy {
        /// The need.
        need: &'static str,
        /// The name given.
        given: String,
        /// Where it was given: `API` or the environment variable.
        source_of: String,
        /// The need's strategies, comma-separated.
        valid: String,
    },
    /// Every candidate was refused on this kernel.
    #[error("{need}: no strategy can run here: {why}")]
    NoPath {
        /// The need.
        need: &'static str,
        /// Each candidate and why it cannot run.
        why: String,
        /// The probe answers that refused every candidate.
        answers: Vec<probe::Answer>,
    },
    /// A malformed item in [`STRATEGY_ENV`] (or another [`Forced::parse`] source).
    #[error(
        "{STRATEGY_ENV}: '{item}' is not NEED=STRATEGY with a known need ({why}); \
         e.g. {STRATEGY_ENV}=func_ip=rewrite_constant"
    )]
    BadEnv {
        /// The item, cut at 128 characters.
        item: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Strategies the user forced, need by need (`func_ip=rewrite_constant,…`). The library
/// reads no environment variable by itself: a program that wants [`STRATEGY_ENV`] asks
/// for it with [`Forced::from_env`] and passes the result on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forced {
    items: Vec<(String, String)>,
    source: String,
}

impl Forced {
    /// [`STRATEGY_ENV`], checked: a misspelt need (`fucn_ip=helper`) would otherwise force
    /// nothing and say nothing. Unset: nothing forced.
    pub fn from_env() -> Result<Self, StrategyError> {
        let Some(value) = std::env::var_os(STRATEGY_ENV) else {
            return Ok(Forced::default());
        };
        let value = value.into_string().map_err(|v| StrategyError::BadEnv {
            item: v.to_string_lossy().into_owned(),
            why: "not UTF-8".into(),
        })?;
        Forced::parse(&value, STRATEGY_ENV)
    }

    /// `NEED=STRATEGY[,…]` from `source` (named in errors). Each need must be known; each
    /// strategy is checked against its need when it is used.
    pub fn parse(value: &str, source: &str) -> Result<Self, StrategyError> {
        let needs = crate::need_names();
        let mut items = Vec::new();
        for item in value.split(',').filter(|i| !i.trim().is_empty()) {
            let bad = |why: String| StrategyError::BadEnv {
                item: item.chars().take(128).collect(),
                why,
            };
            let Some((need, strategy)) = item.split_once('=') else {
                return Err(bad("no '='".into()));
            };
            let need = need.trim();
            if !needs.contains(&need) {
                let hint = probe::names::closest(need, needs.iter().copied())
                    .map(|c| format!("; did you mean '{c}'?"))
                    .unwrap_or_default();
                return Err(bad(format!("needs are {}{hint}", needs.join(", "))));
            }
            if strategy.trim().is_empty() {
                return Err(bad("no strategy after '='".into()));
            }
            items.push((need.to_string(), strategy.trim().to_string()));
        }
        Ok(Forced {
            items,
            source: source.to_string(),
        })
    }

    /// The strategy forced for `need`, if any.
    pub fn get(&self, need: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(n, _)| n == need)
            .map(|(_, s)| s.as_str())
    }
}

/// The strategy of `N` called `name` (its name on the command line and in JSON).
pub fn parse<N: Need>(name: &str, source_of: &str) -> Result<N::Strategy, StrategyError> {
    N::candidates()
        .iter()
        .copied()
        .find(|s| N::name(*s) == name)
        .ok_or_else(|| StrategyError::UnknownStrategy {
            need: N::NAME,
            given: name.to_string(),
            source_of: source_of.to_string(),
            valid: N::candidates()
                .iter()
                .map(|s| N::name(*s))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Picks the strategy for `N` on this kernel. `force` overrides the choice; a forced
/// strategy the kernel cannot run is an error, not a silent fallback.
pub fn choose<N: Need>(
    src: &dyn FeatureSource,
    force: Option<&str>,
) -> Result<Choice<N::Strategy>, StrategyError> {
    choose_by::<N>(force, |s| N::runnable(src, s))
}

/// [`choose`] with what the user forced for every need ([`Forced::from_env`]).
pub fn choose_forced<N: Need>(
    src: &dyn FeatureSource,
    forced: &Forced,
) -> Result<Choice<N::Strategy>, StrategyError> {
    let force = forced.get(N::NAME).map(|v| (v, forced.source.as_str()));
    pick::<N>(force, |s| N::runnable(src, s))
}

/// [`choose`] with another rule for what can run (a need whose answers depend on more than
/// the kernel, such as the type of the program it traces).
pub fn choose_by<N: Need>(
    force: Option<&str>,
    runnable: impl Fn(N::Strategy) -> Result<String, Refusal>,
) -> Result<Choice<N::Strategy>, StrategyError> {
    pick::<N>(force.map(|v| (v, "API")), runnable)
}

fn pick<N: Need>(
    force: Option<(&str, &str)>,
    runnable: impl Fn(N::Strategy) -> Result<String, Refusal>,
) -> Result<Choice<N::Strategy>, StrategyError> {
    if let Some((value, source_of)) = force {
        let s = parse::<N>(value, source_of)?;
        return match runnable(s) {
            Ok(why) => Ok(Choice {
                strategy: s,
                why: format!("forced ({source_of}): {why}"),
                forced: true,
            }),
            Err(refusal) => Err(StrategyError::ForcedNotRunnable {
                need: N::NAME,
                strategy: N::name(s).to_string(),
                source_of: source_of.to_string(),
                why: refusal.why,
                answers: refusal.answers,
            }),
        };
    }
    let mut refused = Vec::new();
    let mut answers = Vec::new();
    for s in N::candidates() {
        match runnable(*s) {
            Ok(why) => {
                let why = if refused.is_empty() {
                    why
                } else {
                    format!("{why} (not {})", refused.join("; not "))
                };
                return Ok(Choice {
                    strategy: *s,
                    why,
                    forced: false,
                });
            }
            Err(refusal) => {
                refused.push(format!("{}: {}", N::name(*s), refusal.why));
                answers.extend(refusal.answers);
            }
        }
    }
    Err(StrategyError::NoPath {
        need: N::NAME,
        why: refused.join("; "),
        answers,
    })
}

/// One need as the report shows it.
#[derive(Clone, Debug, Serialize)]
pub struct NeedReport {
    /// [`Need::NAME`].
    pub need: &'static str,
    /// [`Need::DESCRIPTION`].
    pub description: &'static str,
    /// The chosen strategy's name; `None` when none can run or the forced one cannot.
    pub chosen: Option<String>,
    /// Why it was chosen, or the error that left none.
    pub why: String,
    /// Every candidate, best first, whether chosen or not.
    pub candidates: Vec<CandidateReport>,
}

/// One candidate strategy of a [`NeedReport`].
#[derive(Clone, Debug, Serialize)]
pub struct CandidateReport {
    /// Its name.
    pub strategy: &'static str,
    /// Whether this kernel can run it.
    pub runnable: bool,
    /// Why, or why not.
    pub why: String,
}

/// The report entry of one need, with what the user forced.
pub fn report<N: Need>(src: &dyn FeatureSource, forced: &Forced) -> NeedReport {
    let (chosen, why) = match choose_forced::<N>(src, forced) {
        Ok(c) => (Some(N::name(c.strategy).to_string()), c.why),
        Err(e) => (None, e.to_string()),
    };
    NeedReport {
        need: N::NAME,
        description: N::DESCRIPTION,
        chosen,
        why,
        candidates: N::candidates()
            .iter()
            .map(|s| {
                let r = N::runnable(src, *s);
                CandidateReport {
                    strategy: N::name(*s),
                    runnable: r.is_ok(),
                    why: r.unwrap_or_else(|e| e.why),
                }
            })
            .collect(),
    }
}

/// Why a strategy cannot run: the words, and the probe answers that decided it (empty
/// when it was not an answer, such as hidden addresses). A caller tells "not supported"
/// from "unknown: EPERM" by the answers' status, not by parsing `why`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// What refused it, in words.
    pub why: String,
    /// The answers that refused it.
    pub answers: Vec<probe::Answer>,
}

impl From<String> for Refusal {
    fn from(why: String) -> Self {
        Refusal {
            why,
            answers: Vec::new(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

/// `Ok(why)` when the answer says supported, else the refusal carrying it: the rule of
/// every strategy that needs one feature.
pub fn runnable_if(a: probe::Answer, what: &str) -> Result<String, Refusal> {
    if a.is_supported() {
        Ok(format!("{what}: {a}"))
    } else {
        Err(Refusal {
            why: format!("{what}: {a}"),
            answers: vec![a],
        })
    }
}
