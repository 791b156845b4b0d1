//! [`FeatureKey`]: one question, by name — the key of the caches, of assumptions and of the
//! disk cache: `prog_type:kprobe`, `map_type:ringbuf`, `misc:bounded_loops`,
//! `helper:bpf_get_func_ip` (does the kernel have it; as an assumption, everywhere) or
//! `helper:bpf_get_func_ip@kprobe` (may this context call it).
use std::fmt;

use crate::names::{AttachContext, Helper, MapType, Misc, ProgramType, UnknownName};

/// One question, as written in assumptions and cache files (`KIND:NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeatureKey {
    /// `prog_type:NAME`: can a program of this type be loaded.
    ProgType(ProgramType),
    /// `map_type:NAME`: can a map of this type be created.
    MapType(MapType),
    /// `helper:NAME[@CONTEXT]`: without a context, does the kernel have the helper; with one,
    /// may that context call it.
    Helper(Helper, Option<AttachContext>),
    /// `misc:NAME`: one of the miscellaneous features.
    Misc(Misc),
}

impl fmt::Display for FeatureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureKey::ProgType(t) => write!(f, "prog_type:{t}"),
            FeatureKey::MapType(t) => write!(f, "map_type:{t}"),
            FeatureKey::Helper(h, None) => write!(f, "helper:{h}"),
            FeatureKey::Helper(h, Some(c)) => write!(f, "helper:{h}@{c}"),
            FeatureKey::Misc(m) => write!(f, "misc:{}", m.name()),
        }
    }
}

/// A malformed key or assumption.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssumeError {
    /// Not `KIND:NAME=yes|no` (a bare key: not `KIND:NAME`), with the offending text.
    #[error(
        "assumption '{0}' is not KIND:NAME=yes|no (KIND is prog_type, map_type, helper, kfunc or \
         misc; e.g. helper:bpf_get_func_ip@kprobe=no)"
    )]
    Syntax(String),
    /// Well formed, but the name is unknown to this crate.
    #[error("assumption '{0}': {1}")]
    Name(String, UnknownName),
}

impl std::str::FromStr for FeatureKey {
    type Err = AssumeError;
    fn from_str(s: &str) -> Result<Self, AssumeError> {
        let (kind, name) = s
            .split_once(':')
            .ok_or_else(|| AssumeError::Syntax(s.into()))?;
        let named = |e: UnknownName| AssumeError::Name(s.into(), e);
        Ok(match kind.trim() {
            "prog_type" => FeatureKey::ProgType(name.parse().map_err(named)?),
            "map_type" => FeatureKey::MapType(name.parse().map_err(named)?),
            "misc" => FeatureKey::Misc(name.parse().map_err(named)?),
            "helper" => match name.split_once('@') {
                Some((h, c)) => {
                    FeatureKey::Helper(h.parse().map_err(named)?, Some(c.parse().map_err(named)?))
                }
                None => FeatureKey::Helper(name.parse().map_err(named)?, None),
            },
            _ => return Err(AssumeError::Syntax(s.into())),
        })
    }
}

impl FeatureKey {
    /// Whether an assumption on `self` answers the question `q`: the same key, or a
    /// helper assumed without a context, which speaks of every context and the kernel.
    pub fn covers(self, q: FeatureKey) -> bool {
        match (self, q) {
            (FeatureKey::Helper(h, None), FeatureKey::Helper(g, _)) => h == g,
            (a, b) => a == b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_cover() {
        for k in [
            "prog_type:kprobe",
            "map_type:ringbuf",
            "helper:bpf_get_func_ip",
            "helper:bpf_get_func_ip@kprobe",
            "misc:bpf_cookie",
        ] {
            assert_eq!(k.parse::<FeatureKey>().unwrap().to_string(), k);
        }
        let any: FeatureKey = "helper:bpf_get_func_ip".parse().unwrap();
        let kprobe: FeatureKey = "helper:bpf_get_func_ip@kprobe".parse().unwrap();
        assert!(any.covers(kprobe) && any.covers(any));
        assert!(kprobe.covers(kprobe) && !kprobe.covers(any));
    }
}
