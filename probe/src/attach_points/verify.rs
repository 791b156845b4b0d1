//! Really attaching, then detaching at once: the check of the resolver's answers that
//! the tests in the VMs run (`--verify-attach`). Each attach loads `r0 = 0; exit` of the
//! mechanism's program type and attaches it the way a tracer would; every fd is closed on
//! return, so nothing stays loaded or attached.
use std::{ffi::CString, os::fd::AsFd};

use aya_obj::generated::bpf_attach_type;

use crate::{
    insn,
    names::ProgramType,
    sys::{self, Errno, ProgLoad},
};

use super::{AttachPoints, Mechanism};

/// What a real attach did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// It attached (and was detached).
    Attached,
    /// The kernel refused: at which step, its errno, and the verifier's log if a load
    /// failed.
    Refused {
        /// `load`, `attach`, `perf_event_open`, …
        step: &'static str,
        /// The errno.
        errno: Errno,
        /// The verifier's last line, for a failed load.
        line: Option<String>,
    },
    /// Not tried, and why (no BTF id for the function, no kprobe PMU).
    NotTried(String),
}

impl std::fmt::Display for VerifyOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyOutcome::Attached => f.write_str("attached"),
            VerifyOutcome::Refused { step, errno, line } => {
                write!(f, "refused at {step}: {errno}")?;
                if let Some(l) = line {
                    write!(f, " (`{l}`)")?;
                }
                Ok(())
            }
            VerifyOutcome::NotTried(why) => write!(f, "not tried: {why}"),
        }
    }
}

fn refused(step: &'static str, errno: Errno) -> VerifyOutcome {
    VerifyOutcome::Refused {
        step,
        errno,
        line: None,
    }
}

/// The kprobe PMU's type and its retprobe bit (`/sys/bus/event_source/devices/kprobe`,
/// 4.17): what [`sys::perf_event_open_kprobe`] needs.
pub fn kprobe_pmu() -> Result<(u32, u32), String> {
    let dir = "/sys/bus/event_source/devices/kprobe";
    let ty =
        std::fs::read_to_string(format!("{dir}/type")).map_err(|e| format!("{dir}/type: {e}"))?;
    let bit = std::fs::read_to_string(format!("{dir}/format/retprobe"))
        .map_err(|e| format!("{dir}/format/retprobe: {e}"))?;
    let ty = ty
        .trim()
        .parse()
        .map_err(|_| format!("{dir}/type: {ty:?}"))?;
    let bit = bit
        .trim()
        .strip_prefix("config:")
        .and_then(|b| b.parse().ok())
        .ok_or_else(|| format!("{dir}/format/retprobe: {bit:?}"))?;
    Ok((ty, bit))
}

/// Attaches a do-nothing program to `symbol` (the function, or the clone the resolver
/// named) by mechanism `m`, and detaches it. `function` is the BTF name, for fentry/fexit.
pub fn verify_attach(
    ap: &AttachPoints,
    function: &str,
    symbol: &str,
    m: Mechanism,
) -> VerifyOutcome {
    let Ok(sym) = CString::new(symbol) else {
        return VerifyOutcome::NotTried(format!("{symbol:?} has a NUL byte"));
    };
    let insns = insn::return_zero();
    match m {
        Mechanism::Fentry | Mechanism::Fexit => {
            let Some(func) = ap.btf_functions(function).first().copied() else {
                return VerifyOutcome::NotTried(format!("`{function}` has no BTF id"));
            };
            let module_btf = match &func.module {
                Some(module) => match sys::kernel_btf_fd(module) {
                    Ok(Some(fd)) => Some(fd),
                    Ok(None) => {
                        return VerifyOutcome::NotTried(format!("no BTF object for {module}"));
                    }
                    Err(e) => return refused("BPF_BTF_GET_FD_BY_ID", e),
                },
                None => None,
            };
            let mut load = ProgLoad::new(ProgramType::TRACING.0, &insns);
            load.expected_attach_type = if m == Mechanism::Fentry {
                bpf_attach_type::BPF_TRACE_FENTRY
            } else {
                bpf_attach_type::BPF_TRACE_FEXIT
            } as u32;
            load.attach_btf_id = func.id;
            load.attach_btf_obj_fd = module_btf.as_ref().map(|f| f.as_fd());
            let mut log = vec![0u8; 64 * 1024];
            let prog = match sys::prog_load(&load, Some(&mut log)) {
                Ok(p) => p,
                Err(e) => {
                    return VerifyOutcome::Refused {
                        step: "load",
                        errno: e.errno,
                        line: e
                            .log
                            .lines()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                            .map(str::to_string),
                    };
                }
            };
            match sys::raw_tracepoint_open(prog.as_fd(), None) {
                Ok(_link) => VerifyOutcome::Attached,
                Err(e) => refused("attach", e),
            }
        }
        Mechanism::Kprobe | Mechanism::Kretprobe => {
            let (pmu, bit) = match kprobe_pmu() {
                Ok(p) => p,
                Err(e) => return VerifyOutcome::NotTried(e),
            };
            let load = ProgLoad::new(ProgramType::KPROBE.0, &insns);
            let prog = match sys::prog_load(&load, None) {
                Ok(p) => p,
                Err(e) => return refused("load", e.errno),
            };
            let retprobe = (m == Mechanism::Kretprobe).then_some(bit);
            let event = match sys::perf_event_open_kprobe(pmu, retprobe, &sym) {
                Ok(e) => e,
                Err(e) => return refused("perf_event_open", e),
            };
            match sys::perf_event_set_bpf(event.as_fd(), prog.as_fd()) {
                Ok(()) => VerifyOutcome::Attached,
                Err(e) => refused("PERF_EVENT_IOC_SET_BPF", e),
            }
        }
        Mechanism::KprobeMulti => {
            let mut load = ProgLoad::new(ProgramType::KPROBE.0, &insns);
            load.expected_attach_type = bpf_attach_type::BPF_TRACE_KPROBE_MULTI as u32;
            let prog = match sys::prog_load(&load, None) {
                Ok(p) => p,
                Err(e) => return refused("load", e.errno),
            };
            match sys::link_create_kprobe_multi(prog.as_fd(), &[&sym]) {
                Ok(_link) => VerifyOutcome::Attached,
                Err(e) => refused("link_create", e),
            }
        }
    }
}
