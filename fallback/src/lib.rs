//! # bpf-features (fallback): which implementation path does each need take here?
//!
//! The strategy layer over [`probe`]: for a need such as "which function am I in?" it picks
//! the best path the kernel allows and says why.
//!
//! - [`kallsyms`]: streaming /proc/kallsyms parser for BPF program symbols;
//! - [`prog_addr`]: a program's address, by jited_ksyms then kallsyms;
//! - [`strategy`]: the need → choice + why mechanism, with forcing;
//! - [`func_ip`]: "which function am I in?" — helper or constant rewrite;
//! - [`needs`]: further needs on the same mechanism;
//! - [`object`]: a tracer's own object made ready for fentry/fexit on a BPF program (what
//!   aya 0.14 cannot load);
//! - [`trace`]: the one call that attaches such an object to BPF programs, func_ip chosen;
//! - [`trace_function`]: "run my program when kernel function F is entered": fentry,
//!   kprobe, a kprobe on its clone, or kprobe_multi by address, per function or per set;
//! - `tracer` (feature `bundled`): the same with the project's own object, ready to use;
//! - [`attach_kernel`]: carrying out a `trace_function` plan with a tracer's programs;
//! - [`compare`]: reports of several kernels side by side.
#![deny(unsafe_code)]
#![warn(missing_docs)]

/// The aya this crate is built with: its `Map`s and errors are in this crate's API, so a
/// tracer uses this one to match its version.
pub use aya;
/// The aya-obj this crate parses and relocates objects with.
pub use aya_obj;
/// The probe layer: every answer about this kernel.
pub use probe;

pub mod attach_kernel;
pub mod compare;
pub mod func_ip;
pub mod kallsyms;
pub mod loops;
pub mod needs;
pub mod object;
pub mod prog_addr;
pub mod strategy;
pub mod trace;
pub mod trace_function;
#[cfg(feature = "bundled")]
pub mod tracer;

use func_ip::FuncIp;
use probe::{FeatureSource, Report};
use serde::Serialize;
use strategy::Need;

/// The report binary's full output: the probe report plus the strategy choices.
#[derive(Serialize)]
pub struct FullReport {
    /// The probe layer's answers (flattened into the same JSON object).
    #[serde(flatten)]
    pub report: Report,
    /// One entry per need, in [`need_names`] order.
    pub strategies: Vec<strategy::NeedReport>,
}

/// The names of every need this crate knows (the registry lives here, above the needs,
/// so `strategy` depends on no need).
pub fn need_names() -> [&'static str; 6] {
    [
        FuncIp::NAME,
        needs::EventOutput::NAME,
        needs::KernelRead::NAME,
        needs::ManyKprobes::NAME,
        loops::Loop::NAME,
        trace_function::TraceFunction::NAME,
    ]
}

/// Every need this crate knows, as the report shows it.
pub fn all_needs(src: &dyn FeatureSource, forced: &strategy::Forced) -> Vec<strategy::NeedReport> {
    vec![
        strategy::report::<FuncIp>(src, forced),
        strategy::report::<needs::EventOutput>(src, forced),
        strategy::report::<needs::KernelRead>(src, forced),
        strategy::report::<needs::ManyKprobes>(src, forced),
        strategy::report::<loops::Loop>(src, forced),
        strategy::report::<trace_function::TraceFunction>(src, forced),
    ]
}

impl FullReport {
    /// The report with the strategies `features` and `forced` choose.
    pub fn new(report: Report, features: &dyn FeatureSource, forced: &strategy::Forced) -> Self {
        FullReport {
            strategies: all_needs(features, forced),
            report,
        }
    }

    /// The readable report: the probe report, then each need's choice and why.
    pub fn to_text(&self, style: probe::report::Style) -> String {
        let mut out = self.report.to_text(style);
        out.push_str("\nStrategies (what each need would use on this kernel)\n");
        for n in &self.strategies {
            out.push_str(&format!(
                "  {:<14} {:<22} {}\n      why: {}\n",
                n.need,
                n.chosen.as_deref().unwrap_or("NONE"),
                n.description,
                n.why
            ));
        }
        out
    }
}
