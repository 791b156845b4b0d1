//! The address of a loaded BPF program: `bpf_prog_info.jited_ksyms[0]` first (exact, no
//! scan), /proc/kallsyms second (by tag and name). Never 0: a restricted address is an
//! error that says how to fix it.
use std::{os::fd::BorrowedFd, path::Path};

use serde::Serialize;

use crate::kallsyms::{self, KallsymsError, Target};

/// Where an address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddrSource {
    /// BPF_OBJ_GET_INFO_BY_FD's `jited_ksyms[0]`.
    JitedKsyms,
    /// The program's `bpf_prog_<tag>_<name>` line in /proc/kallsyms.
    Kallsyms,
}

/// A resolved program address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProgAddr {
    /// The address of the program's JITed code; never 0.
    pub addr: u64,
    /// Where it came from.
    pub source: AddrSource,
    /// The program's id.
    pub prog_id: u32,
    /// The program's tag.
    pub tag: u64,
    /// Its name: the full BTF name from kallsyms, else `bpf_prog_info.name` (15 characters).
    pub name: String,
}

/// Why a program's address could not be resolved; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    /// BPF_OBJ_GET_INFO_BY_FD failed.
    #[error("cannot read program info: {0}")]
    Info(probe::sys::Errno),
    /// BPF_PROG_GET_FD_BY_ID failed: the id, and the errno.
    #[error("no BPF program with id {0}: {1}")]
    NoSuchProgram(u32, probe::sys::Errno),
    /// The program runs in the interpreter: it has no code address.
    #[error(
        "program {name} (id {id}) is not JITed: bpf_prog_info has no jited_ksyms. Enable the \
         JIT (`sysctl net.core.bpf_jit_enable=1`)"
    )]
    NotJited {
        /// The program's id.
        id: u32,
        /// The program's name.
        name: String,
    },
    /// /proc/kallsyms could not be read or parsed.
    #[error(transparent)]
    Kallsyms(#[from] KallsymsError),
    /// jited_ksyms is hidden and kallsyms has no line for the program.
    #[error(
        "program {name} (tag {tag:016x}) has no line in /proc/kallsyms: the JIT publishes BPF \
         symbols only with `net.core.bpf_jit_kallsyms=1`, and hides them when \
         `net.core.bpf_jit_harden=2` (or =1 for unprivileged loaders)"
    )]
    NotPublished {
        /// The program's name.
        name: String,
        /// The program's tag.
        tag: u64,
    },
    /// jited_ksyms is hidden and kallsyms has several identical programs.
    #[error(
        "{count} programs named {name} with tag {tag:016x} are loaded (addresses {addrs}); \
         kallsyms cannot tell them apart and jited_ksyms is hidden (kptr_restrict)"
    )]
    Ambiguous {
        /// The programs' name.
        name: String,
        /// The programs' tag.
        tag: u64,
        /// How many kallsyms lines match.
        count: usize,
        /// Their addresses, comma-separated.
        addrs: String,
    },
    /// Both ways show address 0: kptr_restrict hides it from this process.
    #[error(
        "the address of program {name} is hidden (jited_ksyms[0] = 0, and 0 in kallsyms): \
         kernel.kptr_restrict hides kernel addresses (2 from every process, root included; 1 \
         from processes without CAP_SYSLOG). Set `sysctl -w kernel.kptr_restrict=1` and grant \
         CAP_SYSLOG, or 0"
    )]
    Restricted {
        /// The program's name.
        name: String,
    },
}

/// By jited_ksyms if visible, else by kallsyms (at `kallsyms_path`).
pub fn resolve_fd(fd: BorrowedFd<'_>, kallsyms_path: &Path) -> Result<ProgAddr, AddrError> {
    let info = probe::sys::prog_info(fd).map_err(AddrError::Info)?;
    let by_info = |addr, source| ProgAddr {
        addr,
        source,
        prog_id: info.id,
        tag: info.tag,
        name: info.name.clone(),
    };
    match info.jited_ksyms.first() {
        Some(&a) if a != 0 => return Ok(by_info(a, AddrSource::JitedKsyms)),
        None => {
            return Err(AddrError::NotJited {
                id: info.id,
                name: info.name,
            });
        }
        Some(_) => {}
    }
    let target = Target {
        tag: info.tag,
        name: (!info.name.is_empty()).then(|| info.name.clone()),
    };
    let found = match kallsyms::resolve_file(kallsyms_path, std::slice::from_ref(&target)) {
        Err(KallsymsError::Restricted { .. }) => {
            return Err(AddrError::Restricted { name: info.name });
        }
        other => other?,
    };
    let hits = &found[&target];
    match hits.as_slice() {
        [] => Err(AddrError::NotPublished {
            name: info.name,
            tag: info.tag,
        }),
        [one] => Ok(ProgAddr {
            name: one.name.clone(),
            ..by_info(one.addr, AddrSource::Kallsyms)
        }),
        many => Err(AddrError::Ambiguous {
            name: info.name.clone(),
            tag: info.tag,
            count: many.len(),
            addrs: many
                .iter()
                .map(|s| format!("{:#x}", s.addr))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Both ways at once, for self-checks: `(jited_ksyms[0], the kallsyms lines' addresses)`.
pub fn both_ways(
    fd: BorrowedFd<'_>,
    kallsyms_path: &Path,
) -> Result<(Option<u64>, Vec<u64>), AddrError> {
    let info = probe::sys::prog_info(fd).map_err(AddrError::Info)?;
    let target = Target {
        tag: info.tag,
        name: (!info.name.is_empty()).then(|| info.name.clone()),
    };
    let found = kallsyms::resolve_file(kallsyms_path, std::slice::from_ref(&target))?;
    Ok((
        info.jited_ksyms.first().copied().filter(|a| *a != 0),
        found[&target].iter().map(|s| s.addr).collect(),
    ))
}

/// [`resolve_fd`] for a program id.
pub fn resolve_id(id: u32, kallsyms_path: &Path) -> Result<ProgAddr, AddrError> {
    let fd = probe::sys::prog_fd_by_id(id).map_err(|e| AddrError::NoSuchProgram(id, e))?;
    resolve_fd(std::os::fd::AsFd::as_fd(&fd), kallsyms_path)
}
