//! What a probe answers, and how an errno and a verifier log become that answer.
//!
//! # Meaning of an answer
//! Every question gets one of three answers, never a bare bool:
//! - [`Support::Supported`]: the kernel accepted the probe (or, for helpers, accepted the
//!   call and only rejected our deliberately unset arguments with EACCES);
//! - [`Support::Unsupported`]: the kernel said no in words that mean "does not exist here":
//!   EINVAL/E2BIG with the verifier's line, or ENOTSUPP. The [`Scope`] says whether the
//!   kernel lacks it entirely, lacks it for this program type, or refuses it in this attach
//!   context;
//! - [`Support::Unknown`]: anything else — EPERM (not allowed is not "not supported"),
//!   lockdown, an errno we cannot interpret, a probe that was skipped.
//!
//! Each answer also says where it came from ([`Origin`]): probed on this kernel, inferred
//! from the kernel version because probing was impossible, or assumed by the user. Only
//! conclusive probed answers are cached (see [`crate::Features`]).
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sys::{ENOTSUPP, Errno, LoadError};

/// Where the refusal applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The kernel does not have it at all.
    Kernel,
    /// The kernel has it, but not for this program type.
    ProgramType,
    /// The program type may use it, but not in this attach context.
    Context,
    /// The kernel has the attach mechanism, but not for this target function.
    Target,
}

/// What a user pastes into a bug report: what was tried and what the kernel said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// What was tried, e.g. `BPF_PROG_LOAD kprobe: call 173; r0 = 0; exit`.
    pub probe: String,
    /// The raw errno, when a syscall failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// Its symbolic name (`EINVAL`, `ENOTSUPP`), as users grep for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_name: Option<String>,
    /// The verifier's (or BTF checker's) own deciding line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier_line: Option<String>,
    /// Anything else that decided the answer (a BTF enum lookup, a version comparison).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Evidence {
    /// What was tried, alone; the `with_*` methods add what the kernel said.
    pub fn probe(probe: impl Into<String>) -> Self {
        Evidence {
            probe: probe.into(),
            errno: None,
            errno_name: None,
            verifier_line: None,
            detail: None,
        }
    }
    /// Adds the errno, by number and name.
    pub fn with_errno(mut self, e: Errno) -> Self {
        self.errno = Some(e.0);
        self.errno_name = Some(e.name());
        self
    }
    /// Adds the verifier's deciding line; `None` or an empty line adds nothing.
    pub fn with_line(mut self, line: Option<String>) -> Self {
        self.verifier_line = line.filter(|l| !l.is_empty());
        self
    }
    /// Sets the detail, replacing any earlier one.
    pub fn with_detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(n) = &self.errno_name {
            parts.push(n.clone());
        }
        if let Some(l) = &self.verifier_line {
            parts.push(format!("`{l}`"));
        }
        if let Some(d) = &self.detail {
            parts.push(d.clone());
        }
        if parts.is_empty() {
            parts.push(self.probe.clone());
        }
        f.write_str(&parts.join(" "))
    }
}

/// The three answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Support {
    /// The kernel accepted the probe.
    Supported {
        /// What was loaded, when it is worth showing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<Evidence>,
    },
    /// The kernel said it does not have it.
    Unsupported {
        /// How widely it is missing.
        scope: Scope,
        /// What was tried and the kernel's words.
        evidence: Evidence,
    },
    /// No conclusion: refused by policy, an uninterpreted errno, or not probed.
    Unknown {
        /// Why no conclusion, and the fix when there is one.
        reason: String,
        /// What was tried, if anything was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<Evidence>,
    },
}

impl Support {
    /// Supported, without evidence.
    pub fn supported() -> Self {
        Support::Supported { evidence: None }
    }
    /// Unknown, for `reason`.
    pub fn unknown(reason: impl Into<String>, evidence: Option<Evidence>) -> Self {
        Support::Unknown {
            reason: reason.into(),
            evidence,
        }
    }
    /// Whether it is [`Support::Supported`].
    pub fn is_supported(&self) -> bool {
        matches!(self, Support::Supported { .. })
    }
    /// Whether it is [`Support::Unsupported`].
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Support::Unsupported { .. })
    }
    /// Whether it is [`Support::Unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, Support::Unknown { .. })
    }
    /// `Some(true/false)` when conclusive.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Support::Supported { .. } => Some(true),
            Support::Unsupported { .. } => Some(false),
            Support::Unknown { .. } => None,
        }
    }
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Support::Supported { evidence: None } => f.write_str("supported"),
            Support::Supported { evidence: Some(e) } => write!(f, "supported ({e})"),
            Support::Unsupported { scope, evidence } => {
                let s = match scope {
                    Scope::Kernel => "not supported by this kernel",
                    Scope::ProgramType => "not supported for this program type",
                    Scope::Context => "not supported in this attach context",
                    Scope::Target => "not supported for this function",
                };
                write!(f, "{s}: {evidence}")
            }
            Support::Unknown {
                reason,
                evidence: None,
            } => write!(f, "unknown: {reason}"),
            Support::Unknown {
                reason,
                evidence: Some(e),
            } => write!(f, "unknown: {reason} ({e})"),
        }
    }
}

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Loaded (or created) on this kernel, this process.
    Probed,
    /// From the built-in version table: probing was impossible here.
    Inferred,
    /// Forced by the user (API, `--assume`, `BPF_FEATURES_ASSUME`).
    Assumed,
    /// Replayed from a recorded report.
    Recorded,
}

/// An answer and its origin. Serialised flat: `{"status": …, "origin": …, …}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The answer itself.
    #[serde(flatten)]
    pub support: Support,
    /// How it was obtained.
    pub origin: Origin,
    /// Why the origin is not `probed` (the reason probing was impossible, the override).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_reason: Option<String>,
}

impl Answer {
    /// An answer from a probe on this kernel.
    pub fn probed(support: Support) -> Self {
        Answer {
            support,
            origin: Origin::Probed,
            origin_reason: None,
        }
    }
    /// An answer not probed here, and why (`reason` becomes `origin_reason`).
    pub fn with_origin(support: Support, origin: Origin, reason: impl Into<String>) -> Self {
        Answer {
            support,
            origin,
            origin_reason: Some(reason.into()),
        }
    }
    /// Whether the answer is supported, whatever its origin.
    pub fn is_supported(&self) -> bool {
        self.support.is_supported()
    }
    /// Only conclusive, probed answers are worth caching: an EPERM today may be an
    /// answer after the caller gains a capability.
    pub fn cacheable(&self) -> bool {
        self.origin == Origin::Probed && !self.support.is_unknown()
    }
    /// An unknown caused by a policy that holds for the boot and the caller's privileges:
    /// EPERM, or lockdown. Transient failures (EMFILE, ENOMEM, EAGAIN, …) are not.
    pub fn is_policy_refusal(&self) -> bool {
        match &self.support {
            Support::Unknown { reason, evidence } => {
                reason.starts_with(crate::conditions::REFUSED_BY_LOCKDOWN)
                    || evidence.as_ref().and_then(|e| e.errno) == Some(libc::EPERM)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.support)?;
        match (self.origin, &self.origin_reason) {
            (Origin::Probed, _) => Ok(()),
            (o, Some(r)) => write!(f, " [{} — {r}]", o.name()),
            (o, None) => write!(f, " [{}]", o.name()),
        }
    }
}

impl Origin {
    /// The name the JSON uses.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Probed => "probed",
            Origin::Inferred => "inferred",
            Origin::Assumed => "assumed",
            Origin::Recorded => "recorded",
        }
    }
}

/// Phrases of the verifier that mean the helper does not exist for this program type
/// (`check_helper_call`: `invalid func %s#%d` for ids past `__BPF_FUNC_MAX_ID`,
/// `unknown func %s#%d` when the type's `get_func_proto` returns NULL).
const HELPER_UNKNOWN: &[&str] = &[
    "invalid func ",
    "unknown func ",
    "program of this type cannot use helper",
];

/// Phrases that mean the helper exists for the type but this attach context refuses it
/// (`check_get_func_ip`: `not supported for program type`, `supported only for
/// fentry/fexit/fmod_ret programs`; `fn->allowed()`: `helper call is not allowed in probe`;
/// sleepable-only helpers: `helper call might sleep in a non-sleepable prog`, from 7.x
/// `sleepable helper %s#%d in non-sleepable prog`).
const HELPER_CONTEXT: &[&str] = &[
    "not supported for program type",
    "supported only for",
    "helper call is not allowed in probe",
    "might sleep in a non-sleepable prog",
    "in non-sleepable prog",
];

/// Whether a verifier line is one of the statistics it prints after its verdict
/// (`BPF_LOG_STATS`; `processed …` at every level).
fn is_statistics(line: &str) -> bool {
    ["processed ", "verification time", "stack depth"]
        .iter()
        .any(|p| line.starts_with(p))
}

/// How many instructions the verifier processed, from its `processed N insns` line: 0
/// means it refused the program before walking it.
pub(crate) fn processed_insns(log: &str) -> Option<u32> {
    log.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("processed "))
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
}

/// The one line of a verifier log that decided the outcome: the first line matching one
/// of `patterns`, else the last non-empty line that is not a statistics line.
pub fn deciding_line(log: &str, patterns: &[&str]) -> Option<String> {
    let lines = || log.lines().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .find(|l| patterns.iter().any(|p| l.contains(p)))
        .or_else(|| lines().rfind(|l| !is_statistics(l)))
        .map(str::to_string)
}

fn not_permitted(errno: Errno) -> String {
    match errno.0 {
        libc::EPERM => "EPERM: not allowed to load this here (needs CAP_BPF with CAP_PERFMON or \
                        CAP_NET_ADMIN, or CAP_SYS_ADMIN; or refused by lockdown, an LSM or the \
                        kernel's policy for this program class) — not the same as unsupported"
            .to_string(),
        libc::EACCES => "EACCES: permission denied by the kernel".to_string(),
        _ => format!("{errno}: the kernel's answer does not say whether it is supported"),
    }
}

/// Whether a verifier line speaks of helper `id`: a line naming a helper (`…#173`) must
/// name ours, as cilium/ebpf checks; a line naming none (`helper call is not allowed in
/// probe`) is about the one call our probe makes.
fn about_helper(line: &str, id: u32) -> bool {
    let tag = format!("#{id}");
    if !line.contains('#') {
        return true;
    }
    line.match_indices(&tag).any(|(at, _)| {
        !line[at + tag.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// The first line of `log` with one of `patterns` that speaks of helper `id`.
fn helper_line(log: &str, patterns: &[&str], id: u32) -> Option<String> {
    log.lines()
        .map(str::trim)
        .find(|l| patterns.iter().any(|p| l.contains(p)) && about_helper(l, id))
        .map(str::to_string)
}

/// Classifies the load of a helper-calling probe (`call <id>; r0 = 0; exit`), errno first;
/// a "not supported" verdict needs the verifier's deciding line to name helper `id`.
pub fn classify_helper_load(result: Result<(), &LoadError>, probe: &str, id: u32) -> Support {
    let Err(err) = result else {
        return Support::supported();
    };
    let ev = |patterns: &[&str]| {
        Evidence::probe(probe)
            .with_errno(err.errno)
            .with_line(deciding_line(&err.log, patterns))
    };
    match err.errno.0 {
        // check_helper_call found the helper's prototype, then rejected our unset
        // argument registers: the helper is callable here.
        libc::EACCES => Support::Supported {
            evidence: Some(
                ev(&["!read_ok", "expected", "type="])
                    .with_detail("helper accepted; only the probe's unset arguments were rejected"),
            ),
        },
        ENOTSUPP | libc::EOPNOTSUPP => Support::Unsupported {
            scope: Scope::Context,
            evidence: ev(HELPER_CONTEXT),
        },
        libc::EINVAL => {
            let log = &err.log;
            let decided = |scope, line: String| Support::Unsupported {
                scope,
                evidence: Evidence::probe(probe)
                    .with_errno(err.errno)
                    .with_line(Some(line)),
            };
            if let Some(l) = helper_line(log, HELPER_CONTEXT, id) {
                decided(Scope::Context, l)
            } else if let Some(l) = helper_line(log, &["invalid func unknown#"], id) {
                decided(Scope::Kernel, l)
            } else if let Some(l) = helper_line(log, HELPER_UNKNOWN, id) {
                decided(Scope::ProgramType, l)
            } else {
                Support::unknown(
                    "EINVAL, but the verifier refused the probe for a reason other than this \
                     helper",
                    Some(ev(&[])),
                )
            }
        }
        _ => Support::unknown(not_permitted(err.errno), Some(ev(&[]))),
    }
}

/// Classifies the load of a feature probe (a program whose load *is* the question: a loop,
/// an instruction, a setup): errno first, the verifier's refusal is the answer.
pub fn classify_prog_load(result: Result<(), &LoadError>, probe: &str) -> Support {
    let Err(err) = result else {
        return Support::supported();
    };
    let ev = Evidence::probe(probe)
        .with_errno(err.errno)
        .with_line(deciding_line(
            &err.log,
            &["unknown", "invalid", "not supported"],
        ));
    match err.errno.0 {
        // bpf_prog_load: find_prog_type() fails with EINVAL for an unknown type; E2BIG when
        // our bpf_attr is larger than the kernel's and carries data it does not know.
        libc::EINVAL | libc::E2BIG | ENOTSUPP | libc::EOPNOTSUPP => Support::Unsupported {
            scope: Scope::Kernel,
            evidence: ev,
        },
        _ => Support::unknown(not_permitted(err.errno), Some(ev)),
    }
}

/// Classifies a program-type probe: as [`classify_prog_load`], except that an EINVAL with a
/// verifier log is unknown — the verifier ran, so the kernel knows the type, and refused the
/// probe's setup for another reason; "not supported" there would be a guess.
pub fn classify_type_load(result: Result<(), &LoadError>, probe: &str) -> Support {
    match result {
        Err(e) if e.errno.0 == libc::EINVAL && !e.log.trim().is_empty() => Support::unknown(
            "the kernel knows this type but refused the probe's setup",
            Some(
                Evidence::probe(probe)
                    .with_errno(e.errno)
                    .with_line(deciding_line(&e.log, &[])),
            ),
        ),
        r => classify_prog_load(r, probe),
    }
}

/// Classifies a map-creation or other object probe whose only evidence is the errno.
pub fn classify_errno(result: Result<(), Errno>, probe: &str) -> Support {
    match result {
        Ok(()) => Support::supported(),
        Err(e) => {
            let ev = Evidence::probe(probe).with_errno(e);
            match e.0 {
                libc::EINVAL | libc::E2BIG | ENOTSUPP | libc::EOPNOTSUPP => Support::Unsupported {
                    scope: Scope::Kernel,
                    evidence: ev,
                },
                _ => Support::unknown(not_permitted(e), Some(ev)),
            }
        }
    }
}

mod kfunc;
pub use kfunc::classify_kfunc_load;

#[cfg(test)]
mod tests;
