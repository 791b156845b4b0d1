//! The one call a tracer makes with its own object: its fentry/fexit programs attached to
//! one or more BPF programs, with the func_ip strategy chosen for each target and why.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use bpf_features::{probe::Features, trace::{TraceSpec, trace}};
//! # let object: &[u8] = &[];
//! # let target: std::os::fd::OwnedFd = todo!();
//! use std::os::fd::AsFd;
//! let features = Features::get(); // the process-wide answers
//! let spec = TraceSpec::new(object, &["on_entry", "on_exit"]);
//! let mut tracing = trace(features, &spec, &[target.as_fd()])?;
//! for t in &tracing.targets {
//!     println!("{}: {} ({})", t.name, t.choice.strategy, t.choice.why);
//! }
//! let events = tracing.maps.take("events"); // aya's Map: RingBuf::try_from(…)
//! # Ok(()) }
//! ```
//!
//! The object declares the strategy's two globals as `const volatile` (names are options):
//!
//! ```c
//! const volatile __u8  use_helper;   /* 1: call bpf_get_func_ip(ctx) */
//! const volatile __u64 target_addr;  /* else: the target's address, never 0 */
//! ```
//!
//! Each target gets its own load of the programs (fentry binds a program to its target at
//! load time) and its own copy of the section holding those globals (its address differs);
//! every other map is created once and shared by all targets: one event stream.
use std::{
    os::fd::BorrowedFd,
    path::{Path, PathBuf},
};

use probe::FeatureSource;

use crate::{
    func_ip::{self, FuncIp, FuncIpError, FuncIpGlobals, FuncIpPlan, FuncIpStrategy},
    object::{self, Maps, ObjectError, PreparedObject, TracingLink},
    strategy::{Choice, Need},
};

/// /proc/kallsyms, where a program's address is found when `jited_ksyms` hides it.
pub const KALLSYMS: &str = "/proc/kallsyms";

/// The names of the object's func_ip globals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncIpGlobalNames {
    /// `const volatile` integer of 1, 2, 4 or 8 bytes: 1 for the helper, 0 for the constant.
    pub use_helper: String,
    /// `const volatile __u64`: the target's address under the constant rewrite, else 0.
    pub target_addr: String,
}

impl Default for FuncIpGlobalNames {
    fn default() -> Self {
        FuncIpGlobalNames {
            use_helper: "use_helper".into(),
            target_addr: "target_addr".into(),
        }
    }
}

/// What to trace with: the object, its programs and how to set it up.
#[derive(Clone, Debug)]
pub struct TraceSpec<'a> {
    /// The tracer's BPF ELF object (clang -g -O2 -target bpf).
    pub object: &'a [u8],
    /// Its fentry/fexit programs to attach to every target (their section says which).
    pub programs: Vec<String>,
    /// The names of its func_ip globals.
    pub globals: FuncIpGlobalNames,
    /// Further globals to set before load: name and bytes (the global's exact size).
    pub extra_globals: Vec<(String, Vec<u8>)>,
    /// A strategy to use instead of the best one; an error if the kernel cannot run it.
    pub force: Option<FuncIpStrategy>,
    /// Where to read kallsyms from (a program's address when jited_ksyms is hidden).
    pub kallsyms: PathBuf,
    /// The function inside each target to attach to (default: its main function).
    pub target_func: Option<String>,
}

impl<'a> TraceSpec<'a> {
    /// `programs` of `object`, with the default global names and nothing forced.
    pub fn new(object: &'a [u8], programs: &[&str]) -> Self {
        TraceSpec {
            object,
            programs: programs.iter().map(|p| p.to_string()).collect(),
            globals: FuncIpGlobalNames::default(),
            extra_globals: Vec::new(),
            force: None,
            kallsyms: PathBuf::from(KALLSYMS),
            target_func: None,
        }
    }

    /// Sets another global before load (`name` must exist with `bytes.len()` bytes).
    pub fn global(mut self, name: &str, bytes: &[u8]) -> Self {
        self.extra_globals.push((name.into(), bytes.to_vec()));
        self
    }
}

/// Why tracing could not start; each variant names the target and keeps its source.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Nothing to do.
    #[error("nothing to trace: {0}")]
    Empty(&'static str),
    /// The object's func_ip globals are missing or of the wrong type.
    #[error(transparent)]
    Globals(ObjectError),
    /// No func_ip strategy can run for this target, or its address cannot be resolved.
    #[error("target {target}: {source}")]
    Plan {
        /// The target program's id.
        target: u32,
        /// Why.
        #[source]
        source: FuncIpError,
    },
    /// The object could not be prepared, loaded or attached for this target.
    #[error("target {target}: {source}")]
    Object {
        /// The target program's id (0 when unknown).
        target: u32,
        /// Why, with the errno and the verifier's words.
        #[source]
        source: ObjectError,
    },
}

/// One traced program.
pub struct TracedTarget {
    /// Its id.
    pub id: u32,
    /// The function traced in it.
    pub name: String,
    /// The func_ip strategy used for it, and why.
    pub choice: Choice<FuncIpPlan>,
    /// fentry/fexit links, in the order of [`TraceSpec::programs`].
    pub links: Vec<TracingLink>,
    /// This target's load: its own copy of the globals' section.
    pub object: PreparedObject,
}

/// Programs attached to every target; dropping it detaches them all.
pub struct Trace {
    /// One per target, in the order given.
    pub targets: Vec<TracedTarget>,
    /// The maps shared by every target's programs.
    pub maps: Maps,
}

/// Checks the func_ip globals' names, sections and sizes before anything is loaded.
fn check_globals(object: &[u8], names: &FuncIpGlobalNames) -> Result<(String, u64), ObjectError> {
    let find = |name: &str, decl: &str| -> Result<object::GlobalSymbol, ObjectError> {
        let sym = object::global_symbol(object, name)?.ok_or_else(|| ObjectError::Global {
            name: name.into(),
            problem: format!("not in the object; declare it as `{decl}`"),
        })?;
        if !sym.section.starts_with(".rodata") {
            return Err(ObjectError::Global {
                name: name.into(),
                problem: format!(
                    "is in {}, not .rodata: declare it as `{decl}` so the verifier sees a \
                     constant",
                    sym.section
                ),
            });
        }
        Ok(sym)
    };
    let helper_decl = format!("const volatile __u8 {};", names.use_helper);
    let addr_decl = format!("const volatile __u64 {};", names.target_addr);
    let helper = find(&names.use_helper, &helper_decl)?;
    if ![1, 2, 4, 8].contains(&helper.size) {
        return Err(ObjectError::Global {
            name: names.use_helper.clone(),
            problem: format!(
                "is {} bytes; it must be an integer (`{helper_decl}`)",
                helper.size
            ),
        });
    }
    let addr = find(&names.target_addr, &addr_decl)?;
    if addr.size != 8 {
        return Err(ObjectError::Global {
            name: names.target_addr.clone(),
            problem: format!("is {} bytes; an address needs 8 (`{addr_decl}`)", addr.size),
        });
    }
    if addr.section != helper.section {
        // Both are rewritten per target: one section to copy per target is enough.
        return Err(ObjectError::Global {
            name: names.target_addr.clone(),
            problem: format!(
                "is in {} but {} is in {}: keep both in one section",
                addr.section, names.use_helper, helper.section
            ),
        });
    }
    Ok((helper.section, helper.size))
}

/// `value` as a native-endian integer of `size` bytes.
fn int_bytes(value: u64, size: u64) -> Vec<u8> {
    match size {
        1 => vec![value as u8],
        2 => (value as u16).to_ne_bytes().to_vec(),
        4 => (value as u32).to_ne_bytes().to_vec(),
        _ => value.to_ne_bytes().to_vec(),
    }
}

/// Chooses the func_ip strategy for each of `targets`, loads `spec`'s programs against
/// each with the strategy's globals set, and attaches them.
pub fn trace(
    src: &dyn FeatureSource,
    spec: &TraceSpec<'_>,
    targets: &[BorrowedFd<'_>],
) -> Result<Trace, TraceError> {
    if targets.is_empty() {
        return Err(TraceError::Empty("no target program"));
    }
    if spec.programs.is_empty() {
        return Err(TraceError::Empty("no fentry/fexit program"));
    }
    let (section, helper_size) =
        check_globals(spec.object, &spec.globals).map_err(TraceError::Globals)?;
    let force = spec.force.map(FuncIp::name);
    let mut maps = Maps::default();
    let mut traced = Vec::new();
    for target in targets {
        let id = probe::sys::prog_info(*target).map(|i| i.id).unwrap_or(0);
        let plan_err = |source| TraceError::Plan { target: id, source };
        let obj_err = |source| TraceError::Object { target: id, source };
        let choice =
            func_ip::plan(src, *target, Path::new(&spec.kallsyms), force).map_err(plan_err)?;
        let g = FuncIpGlobals::new(choice.strategy).map_err(plan_err)?;
        let mut globals = spec.extra_globals.clone();
        globals.push((
            spec.globals.use_helper.clone(),
            int_bytes(g.use_helper.into(), helper_size),
        ));
        globals.push((
            spec.globals.target_addr.clone(),
            int_bytes(g.target_addr, 8),
        ));
        let own = |name: &str| name == section;
        let object =
            PreparedObject::prepare(spec.object, &globals, &mut maps, &own).map_err(obj_err)?;
        let mut links = Vec::new();
        for program in &spec.programs {
            links.push(
                object
                    .attach_to_prog(program, *target, spec.target_func.as_deref())
                    .map_err(obj_err)?,
            );
        }
        let (_, name) =
            object::target_function(*target, spec.target_func.as_deref()).map_err(obj_err)?;
        traced.push(TracedTarget {
            id,
            name,
            choice,
            links,
            object,
        });
    }
    Ok(Trace {
        targets: traced,
        maps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_keep_their_size() {
        assert_eq!(int_bytes(1, 1), vec![1]);
        assert_eq!(int_bytes(1, 4), 1u32.to_ne_bytes().to_vec());
        assert_eq!(int_bytes(0xdead_beef_0000, 8).len(), 8);
    }
}
