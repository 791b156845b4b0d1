//! # bpf-features-probe: what can BPF do on this kernel?
//!
//! Loads tiny hand-assembled programs through `bpf(2)` to answer, for the running kernel,
//! which program types, map types, helpers (per program type and attach context) and
//! miscellaneous features work. Every answer is one of three ([`Support`]): supported, not
//! supported (with the verifier's own words), or unknown (with the reason — EPERM is never
//! "not supported"). See [`support`] for the meaning of each answer.
//!
//! ```no_run
//! use bpf_features_probe::{AttachContext, FeatureSource, Features, Helper};
//! let f = Features::get();
//! let a = f.helper(AttachContext::FentryBpfProg, Helper::GET_FUNC_IP);
//! println!("bpf_get_func_ip in fentry on a BPF program: {a}");
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod assume;
pub mod attach_points;
pub mod btf;
pub mod cache;
pub mod conditions;
pub mod features;
mod fxhash;
pub mod helpers;
pub mod inferred;
pub mod insn;
mod interned;
pub mod kallsyms;
pub mod kernel;
pub mod key;
pub mod kfuncs;
mod lines;
pub mod map_types;
pub mod misc;
pub mod names;
pub mod prober;
pub mod prog_types;
pub mod report;
pub mod run;
pub mod source;
pub mod support;
pub mod sys;
pub mod testing;
pub mod token;

pub use assume::{ASSUME_ENV, Assumption, parse_assumptions};
pub use features::{Features, Options};
pub use kernel::{KernelRelease, SystemInfo};
pub use key::{AssumeError, FeatureKey};
pub use names::Misc;
pub use names::{AttachContext, Helper, MapType, ProgramType, Since, UnknownName};
pub use report::Report;
pub use source::FeatureSource;
pub use support::{Answer, Evidence, Origin, Scope, Support};
