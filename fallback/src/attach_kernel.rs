//! Carrying out a [`FunctionPlan`]: loading a tracer's programs from a
//! [`PreparedObject`] and attaching them to a kernel function by the planned mechanism —
//! fentry/fexit with the function's BTF id (and its module's BTF object), kprobe and
//! kretprobe through the kprobe PMU, kprobe_multi by address. aya 0.14 does the last two
//! for its own loader only; this keeps one loading path for tracers' objects.
use std::os::fd::{AsFd, OwnedFd};

use aya_obj::generated::bpf_attach_type;
use probe::{
    attach_points::{AttachPoints, Mechanism, kprobe_pmu},
    sys::{self, Errno},
};

use crate::{
    object::{ObjectError, PreparedObject},
    trace_function::FunctionPlan,
};

/// One attached program; dropping it detaches and unloads.
#[derive(Debug)]
pub struct Attached {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The program's name in the object.
    pub program: String,
    /// What it is attached to (a symbol, or `N addresses`).
    pub target: String,
    /// The program, and its link or perf event.
    pub fds: Vec<OwnedFd>,
}

/// Why a plan could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The object has no program for a mechanism the plan needs.
    #[error("{function}: the plan needs a {mechanism} program, and none was given")]
    NoProgram {
        /// The function.
        function: String,
        /// The mechanism.
        mechanism: Mechanism,
    },
    /// The function has no BTF id (fentry needs one).
    #[error("{function}: not in the kernel's BTF, which fentry/fexit needs")]
    NoBtf {
        /// The function.
        function: String,
    },
    /// The kprobe PMU is missing or unreadable.
    #[error("{function}: no kprobe PMU: {why}")]
    NoKprobePmu {
        /// The function.
        function: String,
        /// Why.
        why: String,
    },
    /// A load or attach failed.
    #[error("{function} ({mechanism} on {target}): {source}")]
    Object {
        /// The function.
        function: String,
        /// The mechanism.
        mechanism: Mechanism,
        /// The symbol or addresses.
        target: String,
        /// The loader's error, with the errno and the verifier's words.
        source: Box<ObjectError>,
    },
}

/// Attaches, for `plan`, the program `programs(mechanism, on_return)` names for each of
/// its mechanisms (`on_return`: fexit, kretprobe, or a kprobe_multi link's return half).
/// Everything attached so far is detached again if one attach fails.
pub fn attach_plan<'p>(
    obj: &PreparedObject,
    ap: &AttachPoints,
    plan: &FunctionPlan,
    programs: impl Fn(Mechanism, bool) -> Option<&'p str>,
) -> Result<Vec<Attached>, AttachError> {
    let mut out = Vec::new();
    for (i, m) in plan.mechanisms.iter().enumerate() {
        let on_return = matches!(m, Mechanism::Fexit | Mechanism::Kretprobe)
            || plan.mechanisms[..i].contains(m);
        let program = programs(*m, on_return).ok_or_else(|| AttachError::NoProgram {
            function: plan.function.clone(),
            mechanism: *m,
        })?;
        out.push(attach_one(obj, ap, plan, *m, program, on_return)?);
    }
    Ok(out)
}

fn attach_one(
    obj: &PreparedObject,
    ap: &AttachPoints,
    plan: &FunctionPlan,
    m: Mechanism,
    program: &str,
    on_return: bool,
) -> Result<Attached, AttachError> {
    let symbol = plan.symbols.first().cloned().unwrap_or_default();
    let target = if plan.addrs.is_empty() {
        symbol.clone()
    } else {
        format!("{} addresses", plan.addrs.len())
    };
    let wrap = |source: ObjectError| AttachError::Object {
        function: plan.function.clone(),
        mechanism: m,
        target: target.clone(),
        source: Box::new(source),
    };
    let attach_err = |errno: Errno| {
        wrap(ObjectError::Attach {
            program: program.to_string(),
            errno,
        })
    };
    let fds = match m {
        Mechanism::Fentry | Mechanism::Fexit => {
            let func = ap
                .btf_functions(&plan.function)
                .first()
                .map(|f| (f.id, f.module.clone()))
                .ok_or_else(|| AttachError::NoBtf {
                    function: plan.function.clone(),
                })?;
            let module_btf = match &func.1 {
                Some(module) => Some(
                    sys::kernel_btf_fd(module)
                        .map_err(|e| {
                            wrap(ObjectError::Target {
                                what: format!("BTF of module {module}"),
                                errno: e,
                            })
                        })?
                        .ok_or_else(|| AttachError::NoBtf {
                            function: plan.function.clone(),
                        })?,
                ),
                None => None,
            };
            let link = obj
                .attach_to_kernel_fn(
                    program,
                    func.0,
                    module_btf.as_ref().map(|f| f.as_fd()),
                    &plan.function,
                )
                .map_err(wrap)?;
            vec![link.prog, link.link]
        }
        Mechanism::Kprobe | Mechanism::Kretprobe => {
            let (pmu, bit) = kprobe_pmu().map_err(|why| AttachError::NoKprobePmu {
                function: plan.function.clone(),
                why,
            })?;
            let prog = obj.load_program(program).map_err(wrap)?;
            let sym = std::ffi::CString::new(symbol.as_str()).expect("symbols have no NUL");
            let retprobe = (m == Mechanism::Kretprobe).then_some(bit);
            let event = sys::perf_event_open_kprobe(pmu, retprobe, &sym).map_err(attach_err)?;
            sys::perf_event_set_bpf(event.as_fd(), prog.as_fd()).map_err(attach_err)?;
            vec![prog, event]
        }
        Mechanism::KprobeMulti => {
            let prog = obj
                .load_program_as(program, bpf_attach_type::BPF_TRACE_KPROBE_MULTI as u32)
                .map_err(wrap)?;
            let link = sys::link_create_kprobe_multi_addrs(prog.as_fd(), &plan.addrs, on_return)
                .map_err(attach_err)?;
            vec![prog, link]
        }
    };
    Ok(Attached {
        mechanism: m,
        program: program.to_string(),
        target,
        fds,
    })
}
