//! Typed names: program types, map types, helpers and attach contexts, with the kernel
//! release each appeared in.
//!
//! Numbers come from `aya_obj::generated` (the UAPI), never from hand-typed constants; names
//! are libbpf's and bpftool's (`sched_cls`, `kprobe`, `bpf_get_func_ip`) so users can move
//! between tools. The `since` columns feed the inferred answers (see [`crate::inferred`]) and
//! the version oracle of the tests.
use std::fmt;

use serde::{Serialize, Serializer};

mod contexts;
mod helpers;
pub mod kfunc_table;
mod map_types;
mod misc;
mod prog_types;

pub use contexts::AttachContext;
pub use helpers::{HELPER_ID_SINCE, HELPERS, Helper};
pub use map_types::{MAP_TYPES, MapType, MapTypeDef};
pub use misc::Misc;
pub use prog_types::{PROG_TYPES, ProgTypeDef, ProgramType};

/// A kernel release as major.minor: what `since` columns hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Since {
    /// The 6 of 6.1.
    pub major: u64,
    /// The 1 of 6.1.
    pub minor: u64,
}

impl Since {
    /// `major.minor`, usable in the `const` tables.
    pub const fn new(major: u64, minor: u64) -> Self {
        Since { major, minor }
    }
    /// As `major.minor.0`, to compare with a [`crate::KernelRelease`]'s version.
    pub fn version(self) -> semver::Version {
        semver::Version::new(self.major, self.minor, 0)
    }
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for Since {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An unknown name, with the closest valid one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{}'{}", shown(.given), .suggestion.as_ref().map(|s| format!("; did you mean '{s}'?")).unwrap_or_default())]
pub struct UnknownName {
    /// The kind of name: `program type`, `helper`, ….
    pub what: &'static str,
    /// The input, verbatim.
    pub given: String,
    /// A valid name within typo distance, if there is one.
    pub suggestion: Option<String>,
}

/// Longer inputs are no typo of any name: no suggestion is searched for them, and messages
/// show only their start (a 100 kB argument must not become a 100 kB error).
const LONGEST_NAME: usize = 128;

fn shown(given: &str) -> String {
    match given.char_indices().nth(LONGEST_NAME) {
        Some((at, _)) => format!("{}… ({} bytes)", &given[..at], given.len()),
        None => given.to_string(),
    }
}

/// The closest of `candidates` to `given`, if it is close enough to be a typo.
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    if given.len() > LONGEST_NAME {
        return None;
    }
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(given, c), c))
        .min()
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .map(|(_, c)| c.to_string())
}

/// Serde and Display by the libbpf name, for each typed name.
macro_rules! serde_by_name {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.name())
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.name())
            }
        }
    };
}
pub(crate) use serde_by_name;

#[cfg(test)]
mod tests {
    use super::*;
    use aya_obj::generated::bpf_func_id;

    #[test]
    fn helper_table_is_in_id_order_and_complete() {
        for (i, f) in HELPERS.iter().enumerate() {
            assert_eq!(*f as usize, i, "{f:?} out of place");
        }
        assert_eq!(HELPERS.len(), bpf_func_id::__BPF_FUNC_MAX_ID as usize);
    }

    #[test]
    fn helper_names_parse_every_way() {
        for s in [
            "bpf_get_func_ip",
            "get_func_ip",
            "BPF_FUNC_get_func_ip",
            "173",
            " Bpf_Get_Func_Ip ",
        ] {
            assert_eq!(s.parse::<Helper>().unwrap(), Helper::GET_FUNC_IP, "{s}");
        }
        assert_eq!(Helper::GET_FUNC_IP.name(), "bpf_get_func_ip");
        let e = "bpf_get_func_iq".parse::<Helper>().unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("bpf_get_func_ip"));
        assert!(e.to_string().contains("did you mean 'bpf_get_func_ip'"));
        assert!("0".parse::<Helper>().is_err());
        assert!(
            "nonsense_entirely_unrelated"
                .parse::<Helper>()
                .unwrap_err()
                .suggestion
                .is_none()
        );
    }

    #[test]
    fn helper_since_follows_the_id_ranges() {
        assert_eq!(Helper::GET_FUNC_IP.since(), Some(Since::new(5, 15)));
        assert_eq!(Helper::GET_ATTACH_COOKIE.since(), Some(Since::new(5, 15)));
        assert_eq!(Helper::RINGBUF_OUTPUT.since(), Some(Since::new(5, 8)));
        assert_eq!(Helper::PROBE_READ_KERNEL.since(), Some(Since::new(5, 5)));
        assert_eq!(Helper(1).since(), Some(Since::new(3, 19)));
        assert_eq!(Helper(155).since(), Some(Since::new(5, 10)));
        assert_eq!(Helper(156).since(), Some(Since::new(5, 11)));
        assert_eq!(Helper(10_000).since(), None);
        let firsts: Vec<u32> = HELPER_ID_SINCE.iter().map(|(f, _)| *f).collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]));
        let versions: Vec<Since> = HELPER_ID_SINCE.iter().map(|(_, s)| *s).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn type_names_round_trip_and_suggest() {
        for t in ProgramType::all() {
            assert_eq!(t.name().parse::<ProgramType>().unwrap(), t);
            assert_eq!(t.uapi_name().parse::<ProgramType>().unwrap(), t);
        }
        for t in MapType::all() {
            assert_eq!(t.name().parse::<MapType>().unwrap(), t);
        }
        assert_eq!("tc".parse::<ProgramType>().unwrap(), ProgramType::SCHED_CLS);
        assert_eq!(
            "kprob"
                .parse::<ProgramType>()
                .unwrap_err()
                .suggestion
                .as_deref(),
            Some("kprobe")
        );
        assert_eq!(
            "ringbuff"
                .parse::<MapType>()
                .unwrap_err()
                .suggestion
                .as_deref(),
            Some("ringbuf")
        );
        assert_eq!(MapType::RINGBUF.uapi_name(), "BPF_MAP_TYPE_RINGBUF");
        assert_eq!(
            ProgramType::SCHED_CLS.uapi_name(),
            "BPF_PROG_TYPE_SCHED_CLS"
        );
    }

    #[test]
    fn contexts_name_and_parse() {
        for c in AttachContext::all() {
            assert_eq!(
                c.name().parse::<AttachContext>().unwrap(),
                c,
                "{}",
                c.name()
            );
        }
        assert_eq!(
            AttachContext::FentryBpfProg.name(),
            "tracing/fentry_bpf_prog"
        );
        assert_eq!(
            AttachContext::new(ProgramType::KPROBE, Some("kprobe_multi")).unwrap(),
            AttachContext::KprobeMulti
        );
        assert!(AttachContext::new(ProgramType::KPROBE, Some("fentry_bpf_prog")).is_err());
        assert_eq!(
            "fentry_bpf_prog".parse::<AttachContext>().unwrap(),
            AttachContext::FentryBpfProg
        );
    }
}
