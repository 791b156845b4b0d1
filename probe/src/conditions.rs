//! Conditions that refuse what the kernel has: lockdown and hidden kernel addresses.
//!
//! An answer they cause is "unknown, refused by …", never "not supported": the kernel has
//! the feature and a policy keeps it from this caller. Parsers take text; the readers of
//! /sys and /proc are thin callers.
use std::{fmt, fs, io, path::Path};

use serde::{Deserialize, Serialize};

use crate::names::Helper;

/// How the reason of an answer that lockdown decided starts.
pub const REFUSED_BY_LOCKDOWN: &str = "refused by lockdown=";

/// The kernel lockdown levels (`security/lockdown`), ordered: each refuses everything the
/// level below refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockdownMode {
    /// Nothing refused (or the lockdown LSM is not active).
    None,
    /// Nothing may change the running kernel: `bpf_probe_write_user` is refused.
    Integrity,
    /// Integrity, and nothing may read kernel memory: `bpf_probe_read*` are refused too.
    Confidentiality,
}

impl LockdownMode {
    /// As the kernel spells it in /sys/kernel/security/lockdown and `lockdown=`.
    pub fn name(self) -> &'static str {
        match self {
            LockdownMode::None => "none",
            LockdownMode::Integrity => "integrity",
            LockdownMode::Confidentiality => "confidentiality",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "none" => Some(LockdownMode::None),
            "integrity" => Some(LockdownMode::Integrity),
            "confidentiality" => Some(LockdownMode::Confidentiality),
            _ => None,
        }
    }
}

impl fmt::Display for LockdownMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The active mode in /sys/kernel/security/lockdown: `none [integrity] confidentiality`.
pub fn parse_lockdown_file(text: &str) -> Option<LockdownMode> {
    let start = text.find('[')?;
    let end = text[start..].find(']')? + start;
    LockdownMode::parse(&text[start + 1..end])
}

/// The `lockdown=` parameter of a kernel command line (the last one wins, as in the kernel).
pub fn parse_cmdline(cmdline: &str) -> Option<LockdownMode> {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix("lockdown="))
        .filter_map(LockdownMode::parse)
        .next_back()
}

const SECURITYFS: &str = "/sys/kernel/security";
const LOCKDOWN_FILE: &str = "/sys/kernel/security/lockdown";

/// The lockdown mode and how it was learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lockdown {
    /// `None` when no source could tell.
    pub mode: Option<LockdownMode>,
    /// `securityfs`, `securityfs (mounted for this read)`, `kernel command line (…)`, or why
    /// nothing could tell.
    pub source: String,
}

impl Lockdown {
    /// Reads securityfs; if it is not mounted and we may mount it, mounts it for the read
    /// and unmounts it again; else the kernel command line's `lockdown=`. Lockdown can be
    /// raised at run time (by writing the file), so the command line is only a fallback.
    pub fn read() -> Lockdown {
        match fs::read_to_string(LOCKDOWN_FILE) {
            Ok(text) => return Self::from_file(&text, "securityfs"),
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Self::from_cmdline(&format!("{LOCKDOWN_FILE}: {e}"));
            }
            Err(_) => {}
        }
        // securityfs is not mounted (a minimal guest, a container), or the lockdown LSM is
        // not active. Mount it where it belongs, read, and leave the system as it was.
        let mounted = Self::is_securityfs_mounted();
        if !mounted && Path::new(SECURITYFS).is_dir() {
            use nix::mount::{MntFlags, MsFlags, mount, umount2};
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            match mount(
                Some("securityfs"),
                SECURITYFS,
                Some("securityfs"),
                flags,
                None::<&str>,
            ) {
                Ok(()) => {
                    let read = fs::read_to_string(LOCKDOWN_FILE);
                    let _ = umount2(SECURITYFS, MntFlags::MNT_DETACH);
                    return match read {
                        Ok(text) => Self::from_file(&text, "securityfs (mounted for this read)"),
                        Err(_) => Self::no_lsm(),
                    };
                }
                Err(e) => {
                    return Self::from_cmdline(&format!(
                        "securityfs is not mounted and mounting it failed ({e})"
                    ));
                }
            }
        }
        if mounted {
            return Self::no_lsm();
        }
        Self::from_cmdline("the kernel has no securityfs")
    }

    /// Just the mode's name, for cache identities: never mounts anything.
    pub fn read_mode_quietly() -> Option<String> {
        fs::read_to_string(LOCKDOWN_FILE)
            .ok()
            .and_then(|t| parse_lockdown_file(&t))
            .map(|m| m.name().to_string())
    }

    fn is_securityfs_mounted() -> bool {
        fs::read_to_string("/proc/mounts")
            .map(|m| {
                m.lines()
                    .any(|l| l.split_whitespace().nth(2) == Some("securityfs"))
            })
            .unwrap_or(false)
    }

    fn from_file(text: &str, source: &str) -> Lockdown {
        match parse_lockdown_file(text) {
            Some(mode) => Lockdown {
                mode: Some(mode),
                source: source.to_string(),
            },
            None => Self::from_cmdline(&format!("{LOCKDOWN_FILE} is malformed: {text:?}")),
        }
    }

    fn no_lsm() -> Lockdown {
        Lockdown {
            mode: Some(LockdownMode::None),
            source: "securityfs has no lockdown file: the lockdown LSM is not active".into(),
        }
    }

    fn from_cmdline(why_not_securityfs: &str) -> Lockdown {
        let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
        match parse_cmdline(&cmdline) {
            Some(mode) => Lockdown {
                mode: Some(mode),
                source: format!(
                    "kernel command line ({why_not_securityfs}; it may have been raised since)"
                ),
            },
            None => Lockdown {
                mode: None,
                source: format!(
                    "could not tell: {why_not_securityfs}, and the kernel command line has no \
                     lockdown= (Secure Boot may still lock the kernel down)"
                ),
            },
        }
    }
}

/// Helpers a lockdown level refuses, with the lockdown reason the kernel names. From 5.14
/// (commit ff40e51043af) the refusal is at load time (the helper's prototype is withheld,
/// so the verifier says `unknown func` / `program of this type cannot use helper`, and the
/// kernel log gets a `Lockdown: …` line per load); before, at run time (the helper returns
/// -EPERM and logs). Either way the helper is unusable, and the kernel has it.
pub const LOCKDOWN_HELPERS: &[(Helper, LockdownMode, &str)] = &[
    (
        Helper::PROBE_READ,
        LockdownMode::Confidentiality,
        "use of bpf to read kernel RAM",
    ),
    (
        Helper::PROBE_READ_STR,
        LockdownMode::Confidentiality,
        "use of bpf to read kernel RAM",
    ),
    (
        Helper::PROBE_READ_KERNEL,
        LockdownMode::Confidentiality,
        "use of bpf to read kernel RAM",
    ),
    (
        Helper::PROBE_READ_KERNEL_STR,
        LockdownMode::Confidentiality,
        "use of bpf to read kernel RAM",
    ),
    (
        Helper::PROBE_WRITE_USER,
        LockdownMode::Integrity,
        "use of bpf to write user RAM",
    ),
];

/// The lockdown level that refuses `h`, and the kernel's name for what it refuses.
pub fn lockdown_refuses(h: Helper) -> Option<(LockdownMode, &'static str)> {
    LOCKDOWN_HELPERS
        .iter()
        .find(|(x, _, _)| *x == h)
        .map(|(_, m, what)| (*m, *what))
}

/// Whether this caller can see kernel addresses (/proc/kallsyms values, and
/// `bpf_prog_info.jited_ksyms`, which the kernel shows under the same rule,
/// `kallsyms_show_value`). `Ok(why)` or `Err(why not, and the fix)`.
///
/// The rule (kernel/kallsyms.c): `kernel.kptr_restrict` = 0 shows them when
/// `kernel.perf_event_paranoid` <= 1 or with CAP_SYSLOG; 1 with CAP_SYSLOG only; 2 to
/// nobody, root included.
pub fn addresses_visible(
    kptr_restrict: Option<i64>,
    perf_event_paranoid: Option<i64>,
    cap_syslog: bool,
) -> Result<String, String> {
    let Some(k) = kptr_restrict else {
        return Err("cannot tell whether kernel addresses are visible: \
                    kernel.kptr_restrict is unreadable"
            .into());
    };
    match k {
        0 if cap_syslog => Ok("kernel.kptr_restrict = 0 and CAP_SYSLOG".into()),
        0 if perf_event_paranoid.is_some_and(|p| p <= 1) => Ok(format!(
            "kernel.kptr_restrict = 0 and kernel.perf_event_paranoid = {}",
            perf_event_paranoid.unwrap_or_default()
        )),
        0 => Err(format!(
            "kernel addresses are hidden from this process: kernel.kptr_restrict = 0 shows \
             them only with CAP_SYSLOG or kernel.perf_event_paranoid <= 1 (it is {}); grant \
             CAP_SYSLOG",
            perf_event_paranoid.map_or("unreadable".into(), |p| p.to_string())
        )),
        1 if cap_syslog => Ok("kernel.kptr_restrict = 1 and CAP_SYSLOG".into()),
        1 => Err(
            "kernel addresses are hidden from this process: kernel.kptr_restrict = 1 \
                  shows them only with CAP_SYSLOG; grant CAP_SYSLOG"
                .into(),
        ),
        k => Err(format!(
            "kernel addresses are hidden from every process, root included: \
             kernel.kptr_restrict = {k}; set it to 1 (`sysctl -w kernel.kptr_restrict=1`) \
             for a process with CAP_SYSLOG to see them"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockdown_sources() {
        assert_eq!(
            parse_lockdown_file("none [integrity] confidentiality\n"),
            Some(LockdownMode::Integrity)
        );
        assert_eq!(
            parse_lockdown_file("[none] integrity confidentiality"),
            Some(LockdownMode::None)
        );
        assert_eq!(parse_lockdown_file("garbage"), None);
        assert_eq!(parse_lockdown_file("[bogus]"), None);
        assert_eq!(parse_lockdown_file("]["), None);
        assert_eq!(
            parse_cmdline(
                "BOOT_IMAGE=/vmlinuz ro lockdown=integrity quiet lockdown=confidentiality"
            ),
            Some(LockdownMode::Confidentiality)
        );
        assert_eq!(parse_cmdline("ro quiet"), None);
        assert_eq!(parse_cmdline("lockdown=maybe"), None);
        assert!(LockdownMode::Confidentiality > LockdownMode::Integrity);
    }

    #[test]
    fn lockdown_helpers() {
        assert_eq!(
            lockdown_refuses(Helper::PROBE_READ_KERNEL).map(|x| x.0),
            Some(LockdownMode::Confidentiality)
        );
        assert_eq!(
            lockdown_refuses(Helper::PROBE_WRITE_USER).map(|x| x.0),
            Some(LockdownMode::Integrity)
        );
        assert_eq!(lockdown_refuses(Helper::GET_FUNC_IP), None);
    }

    #[test]
    fn address_visibility_names_the_sysctl() {
        assert!(addresses_visible(Some(0), Some(2), true).is_ok());
        assert!(addresses_visible(Some(0), Some(1), false).is_ok());
        assert!(addresses_visible(Some(1), Some(-1), true).is_ok());
        let e = addresses_visible(Some(1), Some(-1), false).unwrap_err();
        assert!(e.contains("CAP_SYSLOG"), "{e}");
        let e = addresses_visible(Some(2), Some(-1), true).unwrap_err();
        assert!(
            e.contains("kernel.kptr_restrict = 2") && e.contains("root included"),
            "{e}"
        );
        assert!(!e.contains("Run as root"), "{e}");
        assert!(addresses_visible(Some(0), Some(2), false).is_err());
        assert!(addresses_visible(None, None, true).is_err());
    }
}
