//! Can kernel function F be traced here, and by which mechanism?
//!
//! The answer differs per kernel build, not per version: the compiler inlines F or clones
//! it (`F.isra.0`), two statics share a name, F is `notrace` or on the kprobe blacklist,
//! or it has more arguments than the trampoline takes. Four sources, each read once:
//! - the kernel's BTF (vmlinux and loaded modules): F's prototype (fentry/fexit need it);
//! - `available_filter_functions`: the functions ftrace can patch (trampolines and
//!   kprobe_multi attach through ftrace);
//! - /proc/kallsyms: every instance of a name and its compiler clones, with addresses
//!   (kprobes resolve names there; so does the verifier for fentry);
//! - the kprobe blacklist (`<debugfs>/kprobes/blacklist`).
//!
//! Each mechanism (fentry, fexit, kprobe, kretprobe, kprobe_multi) gets an answer with the
//! evidence: the function-level facts above, combined with the kernel-level answer for
//! the mechanism itself (can a tracing/kprobe program load at all, is kprobe_multi there,
//! does lockdown refuse kprobes). A source that cannot be read makes the answers that
//! need it unknown, naming the cause; it is never "not supported".
//!
//! [`verify_attach`] really attaches (and detaches at once), for tests that check
//! the resolver against the kernel.
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::{
    btf::{BtfFunction, BtfProtos, Named},
    kernel::SystemInfo,
    names::{Misc, ProgramType},
    source::FeatureSource,
    support::Answer,
};

mod kallsyms_pipe;
mod sources;
mod verdict;
mod verify;

use crate::interned::NameHash;
pub use sources::{
    CLONE_SUFFIXES, FtraceFunctions, Instance, KprobeBlacklist, TextSymbols, clone_of, valid_symbol,
};
pub use verdict::{max_trampoline_args, noreturn, trampoline_denied};
pub use verify::{VerifyOutcome, kprobe_pmu, verify_attach};

/// Address space the resolver needs on one thread (the kernel's BTF, the kallsyms and
/// ftrace indexes, the report around them).
pub const ADDRESS_SPACE: u64 = 160 << 20;

/// A way to run a program when a kernel function is entered or left.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// A BPF trampoline at the function's entry (5.5).
    #[default]
    Fentry,
    /// A BPF trampoline at the function's return (5.5).
    Fexit,
    /// A kprobe on the function's symbol.
    Kprobe,
    /// A kretprobe on the function's symbol.
    Kretprobe,
    /// A kprobe_multi link (5.18), through ftrace.
    KprobeMulti,
}

impl Mechanism {
    /// Every mechanism, in order of preference for a tracer.
    pub const ALL: [Mechanism; 5] = [
        Mechanism::Fentry,
        Mechanism::Fexit,
        Mechanism::Kprobe,
        Mechanism::Kretprobe,
        Mechanism::KprobeMulti,
    ];

    /// libbpf's section name for it.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Fentry => "fentry",
            Mechanism::Fexit => "fexit",
            Mechanism::Kprobe => "kprobe",
            Mechanism::Kretprobe => "kretprobe",
            Mechanism::KprobeMulti => "kprobe_multi",
        }
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One mechanism's answer for one function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MechanismAnswer {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// Supported, not supported (for this function, or by this kernel), or unknown.
    #[serde(flatten)]
    pub answer: Answer,
    /// The symbol to attach to when supported: the function, or its compiler clone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// The module the symbol is in; `None` for vmlinux.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

/// Every mechanism's answer for one function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CanTrace {
    /// The function asked about.
    pub function: String,
    /// Its parameter types as BTF spells them, when BTF has exactly one such function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<String>>,
    /// One answer per [`Mechanism`], in [`Mechanism::ALL`] order.
    pub mechanisms: Vec<MechanismAnswer>,
}

impl CanTrace {
    /// The answer for `m`.
    pub fn get(&self, m: Mechanism) -> &MechanismAnswer {
        self.mechanisms
            .iter()
            .find(|a| a.mechanism == m)
            .expect("every mechanism is answered")
    }
}

/// The name asked about cannot be a kernel symbol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name:?} is not a kernel function name: names are letters, digits, `_`, `.` and `$`, \
     at most 511 bytes"
)]
pub struct BadName {
    /// The name given.
    pub name: String,
}

/// Where the sources are read from: the running system's files by default; tests point
/// them at fixtures.
#[derive(Clone, Debug)]
pub struct SourcePaths {
    /// The BTF directory (`/sys/kernel/btf`): `vmlinux` and one file per module.
    pub btf_dir: PathBuf,
    /// `available_filter_functions`; `None` when tracefs is not mounted.
    pub ftrace: Option<PathBuf>,
    /// /proc/kallsyms.
    pub kallsyms: PathBuf,
    /// The kprobe blacklist; `None` when debugfs is not mounted.
    pub blacklist: Option<PathBuf>,
}

impl SourcePaths {
    /// The running system's files, found through its mounts (`sys`).
    pub fn system(sys: &SystemInfo) -> Self {
        // A mount /proc/mounts does not show (a container's bind mount) still counts.
        let tracefs = sys
            .tracefs
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| sys.debugfs.as_ref().map(|d| Path::new(d).join("tracing")))
            .or_else(|| {
                let default = Path::new("/sys/kernel/tracing");
                default
                    .join("available_filter_functions")
                    .exists()
                    .then(|| default.to_path_buf())
            });
        SourcePaths {
            btf_dir: PathBuf::from("/sys/kernel/btf"),
            ftrace: tracefs.map(|t| t.join("available_filter_functions")),
            kallsyms: PathBuf::from("/proc/kallsyms"),
            blacklist: sys
                .debugfs
                .as_ref()
                .map(|d| Path::new(d).join("kprobes/blacklist")),
        }
    }
}

/// The four sources, each read once; a source that could not be read keeps why.
#[derive(Debug)]
pub struct Sources {
    /// BTF functions and prototypes.
    pub btf: Result<BtfProtos, String>,
    /// Module BTF blobs that did not parse (their functions are missing).
    pub btf_skipped: Vec<String>,
    /// available_filter_functions.
    pub ftrace: Result<FtraceFunctions, String>,
    /// kallsyms text symbols.
    pub kallsyms: Result<TextSymbols, String>,
    /// The kprobe blacklist.
    pub blacklist: Result<KprobeBlacklist, String>,
    /// How long each took to read and parse, in source order (btf, ftrace, kallsyms,
    /// blacklist), for the bench.
    pub timings: [Duration; 4],
    /// What counting every function needs of BTF and ftrace, worked out while kallsyms
    /// is still being read; `None` (then each name is looked up as it is counted) when
    /// either is missing or the sources were not read together.
    pub prepared: Option<Prepared>,
}

/// Per BTF function name (by its id in [`BtfProtos`]): its hash and how many functions
/// of that name ftrace can patch. Reading kallsyms takes longer than reading BTF and
/// ftrace together, and the thread that reads those would otherwise wait for it.
#[derive(Debug)]
pub struct Prepared {
    hashes: Vec<NameHash>,
    ftrace_counts: Vec<u32>,
}

impl Prepared {
    fn new(btf: &BtfProtos, ftrace: &FtraceFunctions) -> Self {
        let hashes: Vec<NameHash> = btf.names().map(|n| NameHash::of(n.as_bytes())).collect();
        let ftrace_counts = btf
            .names()
            .zip(&hashes)
            .map(|(n, h)| ftrace.count_hashed(n, *h))
            .collect();
        Prepared {
            hashes,
            ftrace_counts,
        }
    }

    /// Name id `id`'s hash and ftrace count, when this was prepared for `btf`.
    fn get(&self, id: u32) -> Option<(NameHash, u32)> {
        Some((
            *self.hashes.get(id as usize)?,
            *self.ftrace_counts.get(id as usize)?,
        ))
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn open(path: &Path) -> Result<std::fs::File, String> {
    std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Opens and parses a source file; errors name the file, or say why there is none.
fn parse_file<T, E: std::fmt::Display>(
    path: Option<&Path>,
    none: &str,
    parse: impl FnOnce(std::fs::File) -> Result<T, E>,
) -> Result<T, String> {
    let path = path.ok_or_else(|| none.to_string())?;
    open(path).and_then(|f| parse(f).map_err(|e| format!("{}: {e}", path.display())))
}

fn read_btf(dir: &Path) -> (Result<BtfProtos, String>, Vec<String>) {
    let vmlinux = dir.join("vmlinux");
    let base = match crate::sys::read_file(&vmlinux).map(crate::sys::FileBytes::into_vec) {
        Ok(b) => b,
        Err(e) => {
            return (
                Err(format!(
                    "{}: {e}: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF) or sysfs is not \
                     mounted",
                    vmlinux.display()
                )),
                Vec::new(),
            );
        }
    };
    match BtfProtos::from_blobs(base, crate::btf::module_blobs(dir)) {
        Ok((p, skipped)) => (Ok(p), skipped),
        Err(e) => (Err(format!("{}: {e}", vmlinux.display())), Vec::new()),
    }
}

impl Sources {
    /// The sources that could not be read, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            self.btf.as_ref().err(),
            self.ftrace.as_ref().err(),
            self.kallsyms.as_ref().err(),
            self.blacklist.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        v.extend(
            self.btf_skipped
                .iter()
                .map(|m| format!("module BTF skipped: {m}")),
        );
        v
    }

    /// Reads every source, in parallel (kallsyms, the slowest, has a thread of its own).
    pub fn read(paths: &SourcePaths) -> Sources {
        // Each thread costs an allocator arena (64 MiB of address space): under `ulimit -v`
        // only the threads that fit run; the rest of the reading happens in this one.
        let extra = crate::kernel::extra_threads_that_fit(ADDRESS_SPACE);
        let read_kallsyms = || {
            timed(|| {
                open(&paths.kallsyms).and_then(|f| {
                    TextSymbols::parse(f).map_err(|e| format!("{}: {e}", paths.kallsyms.display()))
                })
            })
        };
        let read_ftrace = || {
            timed(|| {
                parse_file(
                    paths.ftrace.as_deref(),
                    "tracefs is not mounted: mount it with `mount -t tracefs nodev \
                     /sys/kernel/tracing`",
                    FtraceFunctions::parse,
                )
            })
        };
        let started = Instant::now();
        let pipe = kallsyms_pipe::KallsymsPipe::new(&paths.kallsyms);
        std::thread::scope(|s| {
            // A thread that cannot start (a thread limit) reads in this one too.
            let spawn_if = |n: usize| (extra >= n).then(std::thread::Builder::new);
            // kallsyms on a thread of its own, which parses too until this thread, done
            // with the other sources, takes the parse over (see `kallsyms_pipe`).
            let kallsyms = spawn_if(1).and_then(|b| {
                b.spawn_scoped(s, || match open(&paths.kallsyms) {
                    Ok(f) => pipe.read(f),
                    Err(e) => pipe.fail(e),
                })
                .ok()
            });
            // kallsyms (the kernel's formatting, then our parse) takes as long as the
            // other sources together: on two cores a third thread only slows both
            // (measured under TCG: 1.3–1.5× the read with two threads, 1.7–1.9× with
            // three, 2.2× with one).
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let ftrace = (cores > 2)
                .then(|| spawn_if(2))
                .flatten()
                .and_then(|b| b.spawn_scoped(s, read_ftrace).ok());
            let ((btf, btf_skipped), t_btf) = timed(|| read_btf(&paths.btf_dir));
            let (blacklist, t_black) = timed(|| {
                parse_file(
                    paths.blacklist.as_deref(),
                    "debugfs is not mounted: mount it with `mount -t debugfs nodev \
                     /sys/kernel/debug`",
                    KprobeBlacklist::parse,
                )
            });
            let (ftrace, t_ftrace) = match ftrace {
                Some(t) => t
                    .join()
                    .unwrap_or_else(|_| (Err("the ftrace reader panicked".into()), Duration::ZERO)),
                None => read_ftrace(),
            };
            let prepared = match (&btf, &ftrace) {
                (Ok(b), Ok(f)) => Some(Prepared::new(b, f)),
                _ => None,
            };
            let (kallsyms, t_kallsyms) = match kallsyms {
                Some(t) => {
                    pipe.help();
                    if t.join().is_err() {
                        pipe.fail("the kallsyms reader panicked".into());
                    }
                    (pipe.finish(), started.elapsed())
                }
                None => read_kallsyms(),
            };
            Sources {
                btf,
                btf_skipped,
                ftrace,
                kallsyms,
                blacklist,
                timings: [t_btf, t_ftrace, t_kallsyms, t_black],
                prepared,
            }
        })
    }
}

/// What the kernel offers regardless of the target: can a tracing or kprobe program load,
/// are kprobe_multi links there, may kprobes be created at all.
#[derive(Clone, Debug)]
pub struct KernelMechanisms {
    /// The kernel's release, for version-dependent limits (trampoline arguments).
    pub release: Option<crate::kernel::KernelRelease>,
    /// The architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Can a fentry program load (the `tracing` program type)?
    pub tracing: Answer,
    /// Can a kprobe program load, and may kprobes be created?
    pub kprobe: Answer,
    /// Are kprobe_multi links there?
    pub kprobe_multi: Answer,
    /// Whether kprobes need an ftrace location (CONFIG_FUNCTION_TRACER without
    /// CONFIG_KPROBE_EVENTS_ON_NOTRACE: `within_notrace_func` in trace_kprobe.c); true when
    /// the config is unknown, as on every distribution kernel.
    pub kprobe_needs_ftrace: bool,
}

impl KernelMechanisms {
    /// From a feature source's answers and the system's conditions.
    pub fn from_source(src: &dyn FeatureSource) -> Self {
        let sys = src.system();
        let mut kprobe = src.program_type(ProgramType::KPROBE);
        // The program type loading says nothing of attaching: a kprobe program loads on a
        // kernel without kprobe events, and under lockdown.
        if !matches!(kprobe.support, crate::support::Support::Unsupported { .. })
            && let Some(why) = verdict::kprobes_refused(sys)
            && (kprobe.is_supported() || matches!(why, crate::support::Support::Unsupported { .. }))
        {
            kprobe = Answer::probed(why);
        }
        KernelMechanisms {
            release: sys.release.clone(),
            arch: sys.arch.clone(),
            tracing: src.program_type(ProgramType::TRACING),
            kprobe,
            kprobe_multi: src.misc(Misc::KprobeMulti),
            kprobe_needs_ftrace: sys
                .config
                .get("CONFIG_KPROBE_EVENTS_ON_NOTRACE")
                .is_none_or(|v| v != "y")
                && sys
                    .config
                    .get("CONFIG_FUNCTION_TRACER")
                    .is_none_or(|v| v == "y"),
        }
    }
}

/// The resolver: the sources, read once, and the kernel's mechanisms.
#[derive(Debug)]
pub struct AttachPoints {
    /// The sources as read.
    pub sources: Sources,
    /// The kernel-level answers.
    pub kernel: KernelMechanisms,
}

/// One mechanism's counts over every BTF function.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MechanismCount {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// Functions it can trace.
    pub supported: usize,
    /// Functions it cannot.
    pub unsupported: usize,
    /// Functions nothing could tell about.
    pub unknown: usize,
}

/// How many functions each mechanism can trace, over every BTF function: the report's
/// attach-point section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Distinct function names in BTF.
    pub btf_functions: usize,
    /// Per mechanism, in [`Mechanism::ALL`] order.
    pub by_mechanism: Vec<MechanismCount>,
    /// Names with more than one instance in kallsyms or BTF.
    pub ambiguous: usize,
    /// BTF names whose only kallsyms symbols are compiler clones.
    pub only_clones: usize,
    /// Sources that could not be read, and why (answers that needed them are unknown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_problems: Vec<String>,
}

impl AttachPoints {
    /// Reads the running system's sources and asks `src` for the mechanisms.
    pub fn read(src: &dyn FeatureSource) -> Self {
        Self::new(
            Sources::read(&SourcePaths::system(src.system())),
            KernelMechanisms::from_source(src),
        )
    }

    /// Reads the running system's sources and asks `features` for the mechanisms, sharing
    /// the vmlinux BTF read: one query reads each source once.
    pub fn read_for(features: &crate::Features) -> Self {
        let sources = Sources::read(&SourcePaths::system(features.system()));
        if !features.btf_was_read()
            && let Ok(btf) = &sources.btf
            && let Some(blob) = btf.vmlinux_blob()
        {
            features.set_btf(crate::btf::KernelBtf::parse(blob));
        }
        let kernel = KernelMechanisms::from_source(features);
        Self::new(sources, kernel)
    }

    /// The resolver over sources already read.
    pub fn new(sources: Sources, kernel: KernelMechanisms) -> Self {
        AttachPoints { sources, kernel }
    }

    /// The BTF functions called `name` (several: in two modules, or two statics).
    pub fn btf_functions(&self, name: &str) -> Vec<&BtfFunction> {
        self.btf_functions_hashed(name, NameHash::of(name.as_bytes()))
            .to_vec()
    }

    pub(super) fn btf_functions_hashed(&self, name: &str, hash: NameHash) -> Named<'_> {
        self.sources
            .btf
            .as_ref()
            .map_or(Named::Many(Vec::new()), |b| {
                b.name_id(name, hash)
                    .map_or(Named::Many(Vec::new()), |id| b.named(id))
            })
    }

    /// Every distinct BTF function name, in BTF order (vmlinux first).
    pub fn function_names(&self) -> impl Iterator<Item = &str> {
        self.sources.btf.iter().flat_map(|b| b.names())
    }

    /// The parameter types of the one BTF function called `name`; `None` when BTF has
    /// none or several.
    pub fn params(&self, name: &str) -> Option<Vec<String>> {
        match (&self.sources.btf, self.btf_functions(name).as_slice()) {
            (Ok(btf), [f]) => Some(btf.param_types(f)),
            _ => None,
        }
    }

    /// Every mechanism's answer for `name`.
    pub fn can_trace(&self, name: &str) -> Result<CanTrace, BadName> {
        if !valid_symbol(name.as_bytes()) {
            return Err(BadName {
                name: name.to_string(),
            });
        }
        let facts = verdict::Facts::gather(self, name, false);
        Ok(CanTrace {
            function: name.to_string(),
            params: self.params(name),
            mechanisms: Mechanism::ALL
                .iter()
                .map(|m| verdict::answer(&facts, &self.kernel, *m))
                .collect(),
        })
    }

    /// Counts over every BTF function.
    pub fn summary(&self) -> Summary {
        let btf = self.sources.btf.as_ref().ok();
        let ids: Vec<u32> = (0..btf.map_or(0, |b| b.names().len() as u32)).collect();
        // Counts per mechanism (yes, no, unknown), ambiguous, only clones.
        type Counts = ([[usize; 3]; 5], usize, usize);
        let count = |ids: &[u32]| -> Counts {
            let mut c: Counts = Default::default();
            let Some(btf) = btf else { return c };
            let prepared = self.sources.prepared.as_ref();
            for id in ids {
                let name = btf.function_name(*id);
                let facts = match prepared.and_then(|p| p.get(*id)) {
                    Some((hash, count)) => {
                        verdict::Facts::gather_prepared(self, name, hash, count, btf.named(*id))
                    }
                    None => verdict::Facts::gather_with(self, name, btf.named(*id), true),
                };
                c.1 += usize::from(facts.ambiguous());
                c.2 += usize::from(facts.only_clones());
                for (i, class) in verdict::classes(&facts, &self.kernel)
                    .into_iter()
                    .enumerate()
                {
                    let slot = match class {
                        verdict::Class::Yes => 0,
                        verdict::Class::No => 1,
                        verdict::Class::Unknown => 2,
                    };
                    c.0[i][slot] += 1;
                }
            }
            c
        };
        // Two halves on two threads (one when a thread cannot start).
        let (a, b) = ids.split_at(ids.len() / 2);
        let (x, y) = crate::kernel::side_by_side(ADDRESS_SPACE, || count(a), || count(b));
        Summary {
            btf_functions: ids.len(),
            by_mechanism: Mechanism::ALL
                .iter()
                .enumerate()
                .map(|(i, m)| MechanismCount {
                    mechanism: *m,
                    supported: x.0[i][0] + y.0[i][0],
                    unsupported: x.0[i][1] + y.0[i][1],
                    unknown: x.0[i][2] + y.0[i][2],
                })
                .collect(),
            ambiguous: x.1 + y.1,
            only_clones: x.2 + y.2,
            source_problems: self.sources.problems(),
        }
    }
}

#[cfg(test)]
mod tests;
