//! Assumptions: answers the user forces (`--assume`, `BPF_FEATURES_ASSUME`, the API), with
//! origin `assumed`, so a tracer can be tried against a kernel's answers it does not have.
use crate::{
    key::{AssumeError, FeatureKey},
    support::{Answer, Evidence, Origin, Scope, Support},
};

/// The environment variable of assumptions: `helper:bpf_get_func_ip@tracing/fentry_bpf_prog=no,misc:ringbuf=yes`.
pub const ASSUME_ENV: &str = "BPF_FEATURES_ASSUME";

/// A user's override of one answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assumption {
    /// The question it answers (a helper without a context covers every context).
    pub key: FeatureKey,
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
        .find(|a| a.key.covers(q))
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
            FeatureKey::Helper(Helper::GET_FUNC_IP, Some(AttachContext::FentryBpfProg))
        );
        assert!(!a[0].supported);
        assert_eq!(a[1].key, FeatureKey::Misc(Misc::RingBuffer));
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
}
