//! The full report: the serde model of every answer (the `--json` schema), its replay as a
//! [`FeatureSource`] (a recorded kernel profile), and the plain-text and C-macro renderings.
//! Each rendering is one walk over the same sections, like bpftool's printers.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    kernel::SystemInfo,
    names::{AttachContext, Helper, MapType, Misc, ProgramType, Since},
    source::FeatureSource,
    support::{Answer, Origin, Support},
};

/// Bumped on any incompatible change of the JSON below.
pub const SCHEMA_VERSION: u32 = 1;

/// One program type or map type and its answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry<T> {
    /// The type, by libbpf's name.
    pub name: T,
    /// The release that added it, from this build's table (not read back from a recording).
    #[serde(skip_deserializing)]
    pub since: Option<Since>,
    /// Whether this kernel can load or create it.
    pub answer: Answer,
}

/// One helper and whether the kernel has it at all, whatever the context.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KernelHelper {
    /// The `enum bpf_func_id` value.
    pub id: u32,
    /// bpftool's name (`bpf_get_func_ip`).
    pub name: String,
    /// The release that added it, from this build's table (not read back from a recording).
    #[serde(skip_deserializing)]
    pub since: Option<Since>,
    /// Whether the kernel has it.
    pub answer: Answer,
}

/// The helpers one attach context may call.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HelperRow {
    /// The program type and attach context the row is about.
    pub context: AttachContext,
    /// Helper name → answer, for every helper the kernel knows.
    pub answers: BTreeMap<String, Answer>,
}

/// One miscellaneous feature and its answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MiscEntry {
    /// The feature, by its key name.
    pub name: Misc,
    /// The release that added it, from this build's table (0.0 when read back).
    #[serde(skip_deserializing, default = "no_since")]
    pub since: Since,
    /// One line for humans.
    pub description: String,
    /// Whether this kernel has it.
    pub answer: Answer,
}

/// The kfuncs one attach context may call (layer b).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KfuncRow {
    /// The program type and attach context the row is about.
    pub context: AttachContext,
    /// kfunc name → answer, for every vmlinux kfunc the kernel has.
    pub answers: BTreeMap<String, Answer>,
}

/// One kfunc the kernel has (layer a).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelKfuncEntry {
    /// Its name.
    pub name: String,
    /// Its BTF id (in its module's id space).
    pub btf_id: u32,
    /// The module whose BTF has it; absent for vmlinux.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Whether BTF tags it `bpf_kfunc` (else the table of known kfuncs says it is one).
    pub tagged: bool,
    /// The release it appeared in, from this build's table (not read back from a recording).
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub since: Option<Since>,
}

/// Layer (a) for kfuncs: every kfunc the kernel has, read from BTF (any caller may).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KernelKfuncs {
    /// Whether the kernel tags kfuncs in BTF (6.2+ with pahole 1.25+).
    pub tags: bool,
    /// The kfuncs, by name.
    pub kfuncs: Vec<KernelKfuncEntry>,
    /// Why BTF could not be read, when it could not (then `kfuncs` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything `bpf-features --json` prints (before the strategy layer adds its section).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`]; a report of another is refused when read back.
    #[serde(deserialize_with = "this_schema")]
    pub schema_version: u32,
    /// `bpf-features VERSION`, the build that wrote it.
    pub tool: String,
    /// The kernel and the conditions the answers hold for.
    pub system: SystemInfo,
    /// Set when answers were inferred from the kernel version: why probing was impossible.
    pub inferred: Option<String>,
    /// Why the kernel's BTF could not be read, if it could not.
    pub btf_error: Option<String>,
    /// Every program type of [`crate::names::PROG_TYPES`].
    pub program_types: Vec<Entry<ProgramType>>,
    /// Every map type of [`crate::names::MAP_TYPES`].
    pub map_types: Vec<Entry<MapType>>,
    /// Layer (a): which helpers the kernel knows at all.
    pub kernel_helpers: Vec<KernelHelper>,
    /// Layer (b): which helpers each program type, in each attach context, may call.
    pub helpers: Vec<HelperRow>,
    /// Every feature of [`Misc::ALL`].
    pub misc: Vec<MiscEntry>,
    /// Layer (a) for kfuncs (absent from reports recorded before kfuncs were read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_kfuncs: Option<KernelKfuncs>,
    /// Layer (b) for kfuncs, per context (absent from reports recorded before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kfuncs: Vec<KfuncRow>,
    /// What each mechanism can trace, over every BTF function (with `--attach-points`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_points: Option<crate::attach_points::Summary>,
    /// The BPF token the probes went through (`--token`), and what it allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<crate::token::TokenReport>,
    /// Whether the noisy helpers were probed too.
    pub full: bool,
    /// Probing threads used.
    pub threads: usize,
    /// `bpf(2)` calls the run made (see [`crate::sys::syscall_count`]).
    pub bpf_syscalls: u64,
    /// Wall time of the run.
    pub seconds: f64,
}

/// A report of another schema would be misread field by field: refuse it whole.
fn this_schema<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v != SCHEMA_VERSION {
        return Err(serde::de::Error::custom(format!(
            "schema_version {v}: this is bpf-features {}, which reads schema_version \
             {SCHEMA_VERSION} only; record the report again with this version",
            env!("CARGO_PKG_VERSION")
        )));
    }
    Ok(v)
}

impl Report {
    /// A recorded report (`bpf-features --json` output, plain or gzip-compressed), refused
    /// whole if it is of another `schema_version`.
    pub fn from_path(path: &std::path::Path) -> Result<Report, String> {
        use std::io::Read;
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut s = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut s)
                .map_err(|e| format!("{}: not a gzip-compressed report: {e}", path.display()))?;
            s
        } else {
            String::from_utf8(bytes)
                .map_err(|_| format!("{}: not a JSON report (not UTF-8)", path.display()))?
        };
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not a report of `bpf-features --json`: {e}",
                path.display()
            )
        })
    }

    /// Every answer of the report, with what it answers.
    pub fn answers(&self) -> impl Iterator<Item = (String, &Answer)> {
        let types = self
            .program_types
            .iter()
            .map(|e| (format!("prog_type {}", e.name), &e.answer));
        let maps = self
            .map_types
            .iter()
            .map(|e| (format!("map_type {}", e.name), &e.answer));
        let kernel = self
            .kernel_helpers
            .iter()
            .map(|k| (format!("helper {}", k.name), &k.answer));
        let helpers = self.helpers.iter().flat_map(|r| {
            r.answers
                .iter()
                .map(move |(h, a)| (format!("helper {h} in {}", r.context.name()), a))
        });
        let misc = self
            .misc
            .iter()
            .map(|e| (format!("misc {}", e.name.name()), &e.answer));
        let kfuncs = self.kfuncs.iter().flat_map(|r| {
            r.answers
                .iter()
                .map(move |(k, a)| (format!("kfunc {k} in {}", r.context.name()), a))
        });
        types
            .chain(maps)
            .chain(kernel)
            .chain(helpers)
            .chain(misc)
            .chain(kfuncs)
    }

    /// Answers left unknown by a resource limit of this process (fds, memory), which a
    /// later run may not hit: `(errno name, how many, the fix)`.
    pub fn starved(&self) -> Vec<(String, usize, &'static str)> {
        let mut by: BTreeMap<i32, usize> = BTreeMap::new();
        for (_, a) in self.answers() {
            if let Support::Unknown {
                evidence: Some(e), ..
            } = &a.support
                && let Some(n) = e.errno
                && [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::EAGAIN].contains(&n)
            {
                *by.entry(n).or_default() += 1;
            }
        }
        by.into_iter()
            .map(|(n, count)| {
                let fix = match n {
                    libc::EMFILE => "raise the open-file limit (`ulimit -n 1024`)",
                    libc::ENFILE => "the system's file table is full: close files or raise fs.file-max",
                    libc::ENOMEM => "raise the memory limits (`ulimit -v`, RLIMIT_MEMLOCK before 5.11, the cgroup's memory.max)",
                    _ => "the kernel was busy: run again",
                };
                (crate::sys::Errno(n).name(), count, fix)
            })
            .collect()
    }

    /// A replayed answer: origin `recorded`, the original origin kept in the reason.
    fn replayed(&self, a: &Answer) -> Answer {
        let release = self
            .system
            .release
            .as_ref()
            .map_or("an unknown kernel", |r| r.raw.as_str());
        let was = match a.origin {
            Origin::Probed => "probed".to_string(),
            Origin::Recorded => return a.clone(),
            o => format!(
                "{} there{}",
                o.name(),
                a.origin_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        };
        Answer::with_origin(
            a.support.clone(),
            Origin::Recorded,
            format!("recorded on {release} ({was})"),
        )
    }
}

fn missing(what: impl std::fmt::Display) -> Answer {
    Answer::with_origin(
        Support::unknown(format!("{what} is not in the recorded report"), None),
        crate::support::Origin::Recorded,
        "replayed report",
    )
}

/// A recorded report answers like the kernel it was recorded on.
impl FeatureSource for Report {
    fn system(&self) -> &SystemInfo {
        &self.system
    }
    fn program_type(&self, t: ProgramType) -> Answer {
        self.program_types
            .iter()
            .find(|e| e.name == t)
            .map_or_else(|| missing(t.name()), |e| self.replayed(&e.answer))
    }
    fn map_type(&self, t: MapType) -> Answer {
        self.map_types
            .iter()
            .find(|e| e.name == t)
            .map_or_else(|| missing(t.name()), |e| self.replayed(&e.answer))
    }
    fn helper(&self, ctx: AttachContext, h: Helper) -> Answer {
        let known = self.kernel_has_helper(h);
        if known.support.is_unsupported() {
            return known;
        }
        self.helpers
            .iter()
            .find(|r| r.context == ctx)
            .and_then(|r| r.answers.get(h.name()))
            .map_or_else(
                || missing(format!("{} in {}", h.name(), ctx.name())),
                |a| self.replayed(a),
            )
    }
    fn kernel_has_helper(&self, h: Helper) -> Answer {
        self.kernel_helpers
            .iter()
            .find(|k| k.id == h.id())
            .map_or_else(|| missing(h.name()), |k| self.replayed(&k.answer))
    }
    fn misc(&self, m: Misc) -> Answer {
        self.misc.iter().find(|e| e.name == m).map_or_else(
            || missing(m.name().to_string()),
            |e| self.replayed(&e.answer),
        )
    }
    fn kfunc(&self, ctx: AttachContext, name: &str) -> Answer {
        match self
            .kfuncs
            .iter()
            .find(|r| r.context == ctx)
            .and_then(|r| r.answers.get(name))
        {
            Some(a) => self.replayed(a),
            None => {
                let kernel = self.kernel_has_kfunc(name);
                if kernel.support.is_unsupported() {
                    kernel
                } else {
                    missing(format!("kfunc {name} in {}", ctx.name()))
                }
            }
        }
    }
    fn kernel_has_kfunc(&self, name: &str) -> Answer {
        let Some(k) = &self.kernel_kfuncs else {
            return missing(format!("kfunc {name}"));
        };
        let support = match (&k.error, k.kfuncs.iter().find(|e| e.name == name)) {
            (_, Some(e)) => Support::Supported {
                evidence: Some(crate::support::Evidence::probe("recorded BTF").with_detail(
                    format!(
                        "BTF id {} in {}, {}",
                        e.btf_id,
                        e.module.as_deref().unwrap_or("vmlinux"),
                        if e.tagged {
                            "tagged bpf_kfunc"
                        } else {
                            "from the table"
                        }
                    ),
                )),
            },
            (Some(err), None) => Support::unknown(format!("BTF was not read there: {err}"), None),
            (None, None) => Support::Unsupported {
                scope: crate::support::Scope::Kernel,
                evidence: crate::support::Evidence::probe("recorded BTF")
                    .with_detail(format!("{name} is not among the kernel's kfuncs")),
            },
        };
        self.replayed(&Answer::probed(support))
    }
}

mod render;
pub use render::Style;

fn no_since() -> Since {
    Since::new(0, 0)
}
