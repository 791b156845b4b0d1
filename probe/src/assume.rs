//! Assumptions: answers the user forces (`--assume`, `BPF_FEATURES_ASSUME`, the API), with
//! origin `assumed`, so a tracer can be tried against a kernel's answers it does not have.
use std::fmt;

use crate::{
    key::{AssumeError, FeatureKey},
    names::AttachContext,
    support::{Answer, Evidence, Origin, Scope, Support},
};

/// What an assumption answers: a feature, or a kfunc (by name: kfuncs are not a fixed
/// table, and the point of assuming one may be that this kernel lacks it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assumed {
    /// `prog_type:`, `map_type:`, `helper:` or `misc:`.
    Feature(FeatureKey),
    /// `kfunc:NAME[@CONTEXT]`; without a context, the kernel's layer and every context.
    Kfunc {
        /// The kfunc's name.
        name: String,
        /// The context it speaks of; `None`: all, and the kernel.
        context: Option<AttachContext>,
    },
}

impl fmt::Display for Assumed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Assumed::Feature(k) => write!(f, "{k}"),
            Assumed::Kfunc {
                name,
                context: None,
            } => write!(f, "kfunc:{name}"),
            Assumed::Kfunc {
                name,
                context: Some(c),
            } => write!(f, "kfunc:{name}@{}", c.name()),
        }
    }
}

impl std::str::FromStr for Assumed {
    type Err = AssumeError;
    fn from_str(s: &str) -> Result<Self, AssumeError> {
        let Some(rest) = s.trim().strip_prefix("kfunc:") else {
            return s.parse().map(Assumed::Feature);
        };
        let (name, context) = match rest.split_once('@') {
            Some((n, c)) => (
                n,
                Some(c.parse().map_err(|e| AssumeError::Name(s.into(), e))?),
            ),
            None => (rest, None),
        };
        let identifier = !name.is_empty()
            && name.len() < 128
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !identifier {
            return Err(AssumeError::Syntax(s.into()));
        }
        Ok(Assumed::Kfunc {
            name: name.to_string(),
            context,
        })
    }
}

/// The environment variable of assumptions: `helper:bpf_get_func_ip@tracing/fentry_bpf_prog=no,misc:ringbuf=yes`.
pub const ASSUME_ENV: &str = "BPF_FEATURES_ASSUME";

/// A user's override of one answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assumption {
    /// The question it answers (a helper or kfunc without a context covers every context).
    pub key: Assumed,
    /// `yes` or `no`.
    pub supported: bool,
    /// Where it came from: `--assume`, `BPF_FEATURES_ASSUME`, `api`.
    pub source: String,
}

impl Assumption {
    /// The answer it forces.
    pub fn answer(&self) -> Answer {
        let support = if self.supported {
            Support::supported()
        } else {
            Support::Unsupported {
                scope: Scope::Kernel,
                evidence: Evidence::probe(self.key.to_string())
                    .with_detail("forced off by the user"),
            }
        };
        Answer::with_origin(
            support,
            Origin::Assumed,
            format!(
                "{}={} from {}",
                self.key,
                if self.supported { "yes" } else { "no" },
                self.source
            ),
        )
    }
}

/// The answer the last of `assumptions` that covers `q` forces, if any.
pub fn assumed(assumptions: &[Assumption], q: FeatureKey) -> Option<Answer> {
    assumptions
        .iter()
        .rev()
        .find(|a| matches!(a.key, Assumed::Feature(k) if k.covers(q)))
        .map(Assumption::answer)
}

/// The answer the last of `assumptions` forces for kfunc `name` in `context` (`None`: the
/// kernel's layer), if any.
pub fn assumed_kfunc(
    assumptions: &[Assumption],
    context: Option<AttachContext>,
    name: &str,
) -> Option<Answer> {
    assumptions
        .iter()
        .rev()
        .find(|a| match &a.key {
            Assumed::Kfunc {
                name: n,
                context: c,
            } => n == name && (c.is_none() || *c == context),
            Assumed::Feature(_) => false,
        })
        .map(Assumption::answer)
}

/// Parses `KEY=yes|no` items separated by commas or whitespace.
pub fn parse_assumptions(spec: &str, source: &str) -> Result<Vec<Assumption>, AssumeError> {
    spec.split([',', ' ', '\n'])
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| AssumeError::Syntax(item.into()))?;
            let supported = match v.trim().to_ascii_lowercase().as_str() {
                "yes" | "y" | "on" | "true" | "1" => true,
                "no" | "n" | "off" | "false" | "0" => false,
                _ => return Err(AssumeError::Syntax(item.into())),
            };
            Ok(Assumption {
                key: k.trim().parse()?,
                supported,
                source: source.to_string(),
            })
        })
        .collect()
}

/// [`ASSUME_ENV`]'s assumptions. One rule for a bad value everywhere: an error that names
/// the variable (the binary exits on it; [`crate::Features::get`] prints it and ignores
/// the variable, since it cannot fail).
pub fn from_env() -> Result<Vec<Assumption>, String> {
    let Some(value) = std::env::var_os(ASSUME_ENV) else {
        return Ok(Vec::new());
    };
    let value = value.into_string().map_err(|_| {
        format!("{ASSUME_ENV}: the value is not UTF-8; unset it or write KIND:NAME=yes|no")
    })?;
    parse_assumptions(&value, ASSUME_ENV).map_err(|e| format!("{ASSUME_ENV}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{AttachContext, Helper, Misc};

    #[test]
    fn assumptions_parse_and_report_bad_input() {
        let a = parse_assumptions(
            "helper:bpf_get_func_ip@tracing/fentry_bpf_prog=no, misc:ringbuf=yes",
            "test",
        )
        .unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[0].key,
            Assumed::Feature(FeatureKey::Helper(
                Helper::GET_FUNC_IP,
                Some(AttachContext::FentryBpfProg)
            ))
        );
        assert!(!a[0].supported);
        assert_eq!(
            a[1].key,
            Assumed::Feature(FeatureKey::Misc(Misc::RingBuffer))
        );
        assert!(matches!(
            parse_assumptions("ringbuf", "t"),
            Err(AssumeError::Syntax(_))
        ));
        assert!(matches!(
            parse_assumptions("misc:ringbuf=maybe", "t"),
            Err(AssumeError::Syntax(_))
        ));
        let e = parse_assumptions("helper:bpf_get_func_iq=no", "t").unwrap_err();
        assert!(
            e.to_string().contains("did you mean 'bpf_get_func_ip'"),
            "{e}"
        );
    }

    #[test]
    fn the_last_covering_assumption_wins() {
        let a = parse_assumptions(
            "helper:bpf_get_func_ip=no,helper:bpf_get_func_ip@kprobe=yes",
            "t",
        )
        .unwrap();
        let kprobe = FeatureKey::Helper(Helper::GET_FUNC_IP, Some(AttachContext::KPROBE));
        let kernel = FeatureKey::Helper(Helper::GET_FUNC_IP, None);
        assert!(assumed(&a, kprobe).unwrap().is_supported());
        assert!(assumed(&a, kernel).unwrap().support.is_unsupported());
        assert_eq!(assumed(&a, kernel).unwrap().origin, Origin::Assumed);
        assert!(assumed(&a, FeatureKey::Misc(Misc::RingBuffer)).is_none());
    }

    #[test]
    fn kfunc_assumptions_by_name_and_context() {
        let a = parse_assumptions(
            "kfunc:bpf_task_from_pid=no, kfunc:bpf_task_from_pid@tracepoint=yes",
            "t",
        )
        .unwrap();
        assert_eq!(a[0].key.to_string(), "kfunc:bpf_task_from_pid");
        assert_eq!(a[1].key.to_string(), "kfunc:bpf_task_from_pid@tracepoint");
        let tp = Some("tracepoint".parse::<AttachContext>().unwrap());
        let kprobe = Some(AttachContext::KPROBE);
        assert!(
            assumed_kfunc(&a, tp, "bpf_task_from_pid")
                .unwrap()
                .is_supported()
        );
        let no = assumed_kfunc(&a, kprobe, "bpf_task_from_pid").unwrap();
        assert!(no.support.is_unsupported() && no.origin == Origin::Assumed);
        assert!(assumed_kfunc(&a, None, "bpf_task_from_pid").is_some());
        assert!(assumed_kfunc(&a, tp, "bpf_rcu_read_lock").is_none());
        // Kfunc assumptions answer no feature question.
        assert!(assumed(&a, FeatureKey::Misc(Misc::RingBuffer)).is_none());
        for bad in ["kfunc:=no", "kfunc:bpf-x=no", "kfunc:a@nope=yes"] {
            assert!(parse_assumptions(bad, "t").is_err(), "{bad}");
        }
    }
}
