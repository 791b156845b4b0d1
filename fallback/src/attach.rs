//! fentry/fexit on a BPF program: the one raw load of this crate.
//!
//! aya 0.14's `FEntry::load` only targets vmlinux functions (it has no `attach_prog_fd`).
//! So the object is loaded by aya for its maps (with the rewritten .rodata), then the
//! tracing program's instructions are relocated against those maps with aya-obj and loaded
//! through probe's `sys` with `attach_prog_fd` and the target function's BTF id, taken
//! from the target program's own BTF.
use std::{
    collections::HashSet,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
};

use aya::maps::Map;
use aya_obj::{Object, generated::bpf_attach_type};
use probe::{
    ProgramType,
    sys::{self, ProgLoad},
};

/// fentry or fexit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceKind {
    Fentry,
    Fexit,
}

/// A loaded and attached tracing program; dropping it detaches and unloads.
pub struct TracingLink {
    pub prog: OwnedFd,
    pub link: OwnedFd,
}

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("cannot parse the BPF object: {0}")]
    Parse(String),
    #[error("no program {0} in the object")]
    NoProgram(String),
    #[error("cannot relocate the object: {0}")]
    Relocate(String),
    #[error("cannot read the target program's info or BTF: {0}")]
    Target(String),
    #[error(
        "the target program has no BTF function {0}: fentry on a BPF program needs the target's BTF"
    )]
    NoTargetFunc(String),
    #[error("the kernel refused to load {program} for {target}: {errno}\n{log}")]
    Load {
        program: String,
        target: String,
        errno: sys::Errno,
        log: String,
    },
    #[error("cannot attach {0}: {1}")]
    Attach(String, sys::Errno),
}

/// The BTF id and name of the function to attach to in `target`: `func` by name, or the
/// main function (`func_info[0]`).
pub fn target_function(
    target: BorrowedFd<'_>,
    func: Option<&str>,
) -> Result<(u32, String), AttachError> {
    let info = sys::prog_info(target).map_err(|e| AttachError::Target(e.to_string()))?;
    if info.btf_id == 0 {
        return Err(AttachError::NoTargetFunc(format!(
            "{} (program {} has no BTF)",
            func.unwrap_or("main"),
            info.name
        )));
    }
    let data = sys::btf_data_by_id(info.btf_id)
        .map_err(|e| AttachError::Target(format!("BTF id {}: {e}", info.btf_id)))?;
    let btf = probe::btf::KernelBtf::parse_with(&data, true).map_err(AttachError::Target)?;
    let id = match func {
        Some(name) => btf.func_id(name),
        None => info.main_func_btf_id,
    }
    .ok_or_else(|| AttachError::NoTargetFunc(func.unwrap_or("main").into()))?;
    let name = btf.func_name(id).unwrap_or(&info.name).to_string();
    Ok((id, name))
}

/// Loads `program` (an fentry/fexit program of `object`, whose maps `ebpf` created) against
/// the function `target_func` (default: the main function) of the BPF program `target`,
/// and attaches it.
pub fn attach_to_prog(
    ebpf: &aya::Ebpf,
    object: &[u8],
    program: &str,
    kind: TraceKind,
    target: BorrowedFd<'_>,
    target_func: Option<&str>,
) -> Result<TracingLink, AttachError> {
    let mut obj = Object::parse(object).map_err(|e| AttachError::Parse(e.to_string()))?;
    let mut fds = Vec::new();
    for (name, map) in ebpf.maps() {
        let data = match map {
            Map::Array(d)
            | Map::RingBuf(d)
            | Map::HashMap(d)
            | Map::PerCpuArray(d)
            | Map::PerfEventArray(d) => d,
            _ => {
                return Err(AttachError::Relocate(format!(
                    "map {name}: unsupported kind"
                )));
            }
        };
        fds.push((name.to_string(), data.fd().as_fd().as_raw_fd()));
    }
    let obj_maps = obj.maps.clone();
    let text: HashSet<usize> = obj.functions.keys().map(|(s, _)| *s).collect();
    obj.relocate_maps(
        fds.iter()
            .filter_map(|(n, fd)| obj_maps.get(n.as_str()).map(|m| (n.as_str(), *fd, m))),
        &text,
    )
    .map_err(|e| AttachError::Relocate(e.to_string()))?;
    obj.relocate_calls(&text)
        .map_err(|e| AttachError::Relocate(e.to_string()))?;
    let p = obj
        .programs
        .get(program)
        .ok_or_else(|| AttachError::NoProgram(program.into()))?;
    let insns = obj.functions[&p.function_key()].instructions.clone();

    let info = sys::prog_info(target).map_err(|e| AttachError::Target(e.to_string()))?;
    let (func_id, _) = target_function(target, target_func)?;

    let mut load = ProgLoad::new(ProgramType::TRACING.0, &insns);
    load.expected_attach_type = match kind {
        TraceKind::Fentry => bpf_attach_type::BPF_TRACE_FENTRY,
        TraceKind::Fexit => bpf_attach_type::BPF_TRACE_FEXIT,
    } as u32;
    load.attach_btf_id = func_id;
    load.attach_prog_fd = Some(target);
    load.name = program;
    let mut log = vec![0u8; 1 << 16];
    let prog = sys::prog_load(&load, Some(&mut log)).map_err(|e| AttachError::Load {
        program: program.into(),
        target: format!("{} (id {})", info.name, info.id),
        errno: e.errno,
        log: e
            .log
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n"),
    })?;
    let link = sys::raw_tracepoint_open(prog.as_fd(), None)
        .map_err(|e| AttachError::Attach(program.into(), e))?;
    Ok(TracingLink { prog, link })
}
