//! BPF tokens (6.9): probing through what a delegated bpffs allows.
//!
//! A container can be given a bpffs mounted with `delegate_cmds`, `delegate_maps`,
//! `delegate_progs` and `delegate_attachs`; a token created from it lets a process that is
//! root in the container's user namespace make exactly those loads. [`Token::create`]
//! makes one and reads what it allows (`/proc/self/fdinfo`); [`crate::Features`] probes
//! with it, and an answer refused outside what it allows says so.
use std::{
    fmt,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::{Path, PathBuf},
};

use aya_obj::generated::{bpf_attach_type, bpf_cmd};
use serde::{Deserialize, Serialize};

use crate::{MapType, ProgramType, sys};

/// The environment variable the `bpf-features` binary reads for `--token`.
pub const TOKEN_ENV: &str = "BPF_FEATURES_TOKEN";

/// Why a token could not be created; each names the cause and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The path could not be opened.
    #[error("cannot open the BPF token's bpffs {path}: {source}")]
    Open {
        /// The path given.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// BPF_TOKEN_CREATE refused; `why` explains the errno.
    #[error("cannot create a BPF token from {path}: {errno}: {why}")]
    Refused {
        /// The path given.
        path: PathBuf,
        /// The kernel's errno.
        errno: sys::Errno,
        /// What it means here, and the fix.
        why: String,
    },
}

/// One of a token's four masks: everything, or the bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mask {
    /// `any`.
    Any,
    /// The bits of the allowed values.
    Bits(u64),
}

impl Mask {
    /// Whether `value` is allowed.
    pub fn allows(self, value: u32) -> bool {
        match self {
            Mask::Any => true,
            Mask::Bits(b) => value < 64 && b & (1 << value) != 0,
        }
    }

    fn parse(text: &str) -> Option<Mask> {
        let t = text.trim();
        if t == "any" {
            return Some(Mask::Any);
        }
        u64::from_str_radix(t.strip_prefix("0x")?, 16)
            .ok()
            .map(Mask::Bits)
    }
}

/// What a token allows, as the kernel shows it in the token's fdinfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowed {
    /// `bpf_cmd` values (`delegate_cmds`).
    pub cmds: Mask,
    /// `bpf_map_type` values (`delegate_maps`).
    pub maps: Mask,
    /// `bpf_prog_type` values (`delegate_progs`).
    pub progs: Mask,
    /// `bpf_attach_type` values (`delegate_attachs`).
    pub attachs: Mask,
}

impl Allowed {
    /// Parses the `allowed_cmds:`, `allowed_maps:`, `allowed_progs:` and
    /// `allowed_attachs:` lines of a token's fdinfo (`any`, or a hex mask).
    pub fn parse_fdinfo(text: &str) -> Result<Allowed, String> {
        let field = |key: &str| -> Result<Mask, String> {
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .ok_or_else(|| format!("no `{key}:` line in the token's fdinfo"))?;
            Mask::parse(line).ok_or_else(|| format!("`{key}:{line}` is not `any` or a hex mask"))
        };
        Ok(Allowed {
            cmds: field("allowed_cmds")?,
            maps: field("allowed_maps")?,
            progs: field("allowed_progs")?,
            attachs: field("allowed_attachs")?,
        })
    }

    /// Why a load of this kind is outside the token, if it is: the command, then the
    /// program or map type, then the attach type (the kernel's own order of checks).
    pub fn refuses(&self, what: &Load) -> Option<String> {
        let cmd = match what {
            Load::Prog { .. } => bpf_cmd::BPF_PROG_LOAD,
            Load::Map(_) => bpf_cmd::BPF_MAP_CREATE,
        };
        if !self.cmds.allows(cmd as u32) {
            return Some(format!(
                "the token does not allow {} (delegate_cmds)",
                cmd_name(cmd as u32)
            ));
        }
        match *what {
            Load::Prog { prog_type, .. } if !self.progs.allows(prog_type.0) => Some(format!(
                "the token does not allow program type {prog_type} (delegate_progs)"
            )),
            Load::Prog { attach_type, .. } if !self.attachs.allows(attach_type) => Some(format!(
                "the token does not allow attach type {} (delegate_attachs; a program with \
                     no attach type needs bit 0)",
                attach_name(attach_type)
            )),
            Load::Map(t) if !self.maps.allows(t.0) => Some(format!(
                "the token does not allow map type {t} (delegate_maps)"
            )),
            _ => None,
        }
    }
}

/// A load a token may or may not allow.
#[derive(Clone, Copy, Debug)]
pub enum Load {
    /// BPF_PROG_LOAD of this type with this expected attach type.
    Prog {
        /// The program type.
        prog_type: ProgramType,
        /// `expected_attach_type` (0 when the probe sets none).
        attach_type: u32,
    },
    /// BPF_MAP_CREATE of this type.
    Map(MapType),
}

/// `prog_load` for BPF_PROG_LOAD, as bpffs's `delegate_cmds` spells commands.
pub fn cmd_name(value: u32) -> String {
    match cmd_from(value) {
        Some(c) => format!("{c:?}")
            .trim_start_matches("BPF_")
            .to_ascii_lowercase(),
        None => format!("command {value}"),
    }
}

fn attach_name(value: u32) -> String {
    if value == bpf_attach_type::BPF_CGROUP_INET_INGRESS as u32 {
        "0 (cgroup_inet_ingress, what a program without one counts as)".into()
    } else {
        value.to_string()
    }
}

/// The commands by value: aya-obj's generated enum, in UAPI order.
fn cmd_from(v: u32) -> Option<bpf_cmd> {
    use bpf_cmd::*;
    [
        BPF_MAP_CREATE,
        BPF_MAP_LOOKUP_ELEM,
        BPF_MAP_UPDATE_ELEM,
        BPF_MAP_DELETE_ELEM,
        BPF_MAP_GET_NEXT_KEY,
        BPF_PROG_LOAD,
        BPF_OBJ_PIN,
        BPF_OBJ_GET,
        BPF_PROG_ATTACH,
        BPF_PROG_DETACH,
        BPF_PROG_TEST_RUN,
        BPF_PROG_GET_NEXT_ID,
        BPF_MAP_GET_NEXT_ID,
        BPF_PROG_GET_FD_BY_ID,
        BPF_MAP_GET_FD_BY_ID,
        BPF_OBJ_GET_INFO_BY_FD,
        BPF_PROG_QUERY,
        BPF_RAW_TRACEPOINT_OPEN,
        BPF_BTF_LOAD,
        BPF_BTF_GET_FD_BY_ID,
        BPF_TASK_FD_QUERY,
        BPF_MAP_LOOKUP_AND_DELETE_ELEM,
        BPF_MAP_FREEZE,
        BPF_BTF_GET_NEXT_ID,
        BPF_MAP_LOOKUP_BATCH,
        BPF_MAP_LOOKUP_AND_DELETE_BATCH,
        BPF_MAP_UPDATE_BATCH,
        BPF_MAP_DELETE_BATCH,
        BPF_LINK_CREATE,
        BPF_LINK_UPDATE,
        BPF_LINK_GET_FD_BY_ID,
        BPF_LINK_GET_NEXT_ID,
        BPF_ENABLE_STATS,
        BPF_ITER_CREATE,
        BPF_LINK_DETACH,
        BPF_PROG_BIND_MAP,
        BPF_TOKEN_CREATE,
    ]
    .into_iter()
    .find(|c| *c as u32 == v)
}

/// A names list for the report: `any`, or the allowed values by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Names {
    /// Everything.
    Any(AnyTag),
    /// These.
    Some(Vec<String>),
}

/// The word `any`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnyTag {
    /// `any`.
    Any,
}

fn names(mask: Mask, name: impl Fn(u32) -> String) -> Names {
    match mask {
        Mask::Any => Names::Any(AnyTag::Any),
        Mask::Bits(b) => Names::Some((0..64).filter(|i| b & (1 << i) != 0).map(name).collect()),
    }
}

/// What the report shows of the token it probed through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenReport {
    /// The delegated bpffs the token came from.
    pub path: String,
    /// `delegate_cmds`, by name (`prog_load`).
    pub cmds: Names,
    /// `delegate_maps`, by libbpf name.
    pub maps: Names,
    /// `delegate_progs`, by libbpf name.
    pub progs: Names,
    /// `delegate_attachs`, by UAPI value.
    pub attachs: Names,
}

/// A BPF token and what it allows.
pub struct Token {
    path: PathBuf,
    fd: OwnedFd,
    /// What it allows.
    pub allowed: Allowed,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("path", &self.path)
            .field("allowed", &self.allowed)
            .finish()
    }
}

impl Token {
    /// Creates a token from the bpffs mounted at `path` (its root), and reads what it
    /// allows. `release` words the errors (tokens are 6.9).
    pub fn create(
        path: &Path,
        release: Option<&crate::KernelRelease>,
    ) -> Result<Token, TokenError> {
        let dir = std::fs::File::open(path).map_err(|source| TokenError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let refused = |errno: sys::Errno, why: String| TokenError::Refused {
            path: path.to_path_buf(),
            errno,
            why,
        };
        let fd = sys::token::create(dir.as_fd()).map_err(|e| {
            let why = match e.0 {
                libc::EINVAL if release.is_some_and(|r| !r.at_least(6, 9)) => {
                    "this kernel has no BPF tokens (BPF_TOKEN_CREATE is 6.9); run without \
                     --token, as root or with CAP_BPF"
                        .to_string()
                }
                libc::EINVAL => format!(
                    "{} is not the root of a bpffs mount (mount -t bpf with delegate_* options)",
                    path.display()
                ),
                libc::EOPNOTSUPP => "this process is in the initial user namespace, where a \
                                     token adds nothing: tokens are for user namespaces \
                                     (containers); run without --token"
                    .to_string(),
                libc::ENOENT => "the bpffs delegates nothing: mount it with delegate_cmds, \
                                 delegate_maps, delegate_progs and delegate_attachs"
                    .to_string(),
                libc::EPERM => "the bpffs was mounted for another user namespace, or this \
                                process lacks CAP_BPF in its own: create the token from a \
                                process that is root in the namespace the bpffs belongs to"
                    .to_string(),
                _ => "unexpected; the kernel's BPF_TOKEN_CREATE refused".to_string(),
            };
            refused(e, why)
        })?;
        let fdinfo = format!("/proc/self/fdinfo/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        let allowed = std::fs::read_to_string(&fdinfo)
            .map_err(|e| e.to_string())
            .and_then(|t| Allowed::parse_fdinfo(&t))
            .map_err(|e| refused(sys::Errno(libc::EINVAL), format!("{fdinfo}: {e}")))?;
        Ok(Token {
            path: path.to_path_buf(),
            fd,
            allowed,
        })
    }

    /// The token's fd, for [`sys::token::with`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The delegated bpffs it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the report shows of it.
    pub fn report(&self) -> TokenReport {
        let a = &self.allowed;
        TokenReport {
            path: self.path.display().to_string(),
            cmds: names(a.cmds, cmd_name),
            maps: names(a.maps, |v| MapType(v).to_string()),
            progs: names(a.progs, |v| ProgramType(v).to_string()),
            attachs: names(a.attachs, |v| v.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_masks_and_refusals() {
        let text = "pos:\t0\nflags:\t02000002\nallowed_cmds:\t0x40021\n\
                    allowed_maps:\tany\nallowed_progs:\t0x4\nallowed_attachs:\t0x1\n";
        let a = Allowed::parse_fdinfo(text).unwrap();
        assert_eq!(a.maps, Mask::Any);
        assert!(a.cmds.allows(bpf_cmd::BPF_PROG_LOAD as u32));
        assert!(!a.cmds.allows(bpf_cmd::BPF_LINK_CREATE as u32));
        let prog = |t: ProgramType, at| Load::Prog {
            prog_type: t,
            attach_type: at,
        };
        assert_eq!(a.refuses(&prog(ProgramType::KPROBE, 0)), None);
        let why = a.refuses(&prog(ProgramType::SOCKET_FILTER, 0)).unwrap();
        assert!(why.contains("program type socket_filter"), "{why}");
        let why = a.refuses(&prog(ProgramType::KPROBE, 3)).unwrap();
        assert!(why.contains("attach type 3"), "{why}");
        assert_eq!(a.refuses(&Load::Map(MapType::RINGBUF)), None);
        assert_eq!(cmd_name(bpf_cmd::BPF_PROG_LOAD as u32), "prog_load");
        assert!(Allowed::parse_fdinfo("allowed_cmds:\tnope\n").is_err());
        assert!(Allowed::parse_fdinfo("").is_err());
        let r = serde_json::to_value(names(Mask::Any, |v| v.to_string())).unwrap();
        assert_eq!(r, serde_json::json!("any"));
        let r = serde_json::to_value(names(Mask::Bits(0x5), |v| v.to_string())).unwrap();
        assert_eq!(r, serde_json::json!(["0", "2"]));
    }
}
