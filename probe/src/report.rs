//! The full report: the serde model of every answer (the `--json` schema), its replay as a
//! [`FeatureSource`] (a recorded kernel profile), and the plain-text and C-macro renderings.
//! Each rendering is one walk over the same sections, like bpftool's printers.
use std::{collections::BTreeMap, fmt::Write as _};

use serde::{Deserialize, Serialize};

use crate::{
    kernel::SystemInfo,
    misc::Misc,
    names::{AttachContext, Helper, MapType, ProgramType, Since},
    source::FeatureSource,
    support::{Answer, Origin, Support},
};

/// Bumped on any incompatible change of the JSON below.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry<T> {
    pub name: T,
    #[serde(skip_deserializing)]
    pub since: Option<Since>,
    pub answer: Answer,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KernelHelper {
    pub id: u32,
    pub name: String,
    #[serde(skip_deserializing)]
    pub since: Option<Since>,
    pub answer: Answer,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HelperRow {
    pub context: AttachContext,
    /// Helper name → answer, for every helper the kernel knows.
    pub answers: BTreeMap<String, Answer>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MiscEntry {
    pub name: Misc,
    #[serde(skip_deserializing, default = "no_since")]
    pub since: Since,
    pub description: String,
    pub answer: Answer,
}

/// Everything `bpf-features --json` prints (before the strategy layer adds its section).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    #[serde(deserialize_with = "this_schema")]
    pub schema_version: u32,
    pub tool: String,
    pub system: SystemInfo,
    /// Set when answers were inferred from the kernel version: why probing was impossible.
    pub inferred: Option<String>,
    pub btf_error: Option<String>,
    pub program_types: Vec<Entry<ProgramType>>,
    pub map_types: Vec<Entry<MapType>>,
    /// Layer (a): which helpers the kernel knows at all.
    pub kernel_helpers: Vec<KernelHelper>,
    /// Layer (b): which helpers each program type, in each attach context, may call.
    pub helpers: Vec<HelperRow>,
    pub misc: Vec<MiscEntry>,
    /// Whether the noisy helpers were probed too.
    pub full: bool,
    pub threads: usize,
    pub bpf_syscalls: u64,
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
        types.chain(maps).chain(kernel).chain(helpers).chain(misc)
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
                serde_json::to_value(o)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
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
}

/// Terminal colours, only when asked for (a terminal).
#[derive(Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, a: &Answer, text: &str) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match a.support {
            Support::Supported { .. } => "32",
            Support::Unsupported { .. } => "31",
            Support::Unknown { .. } => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
    fn head(self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// One line of a text section: name, `since`, answer.
type SectionRow<'a> = (&'static str, String, &'a Answer);

fn short(a: &Answer) -> &'static str {
    match a.support {
        Support::Supported { .. } => "yes",
        Support::Unsupported { .. } => "no",
        Support::Unknown { .. } => "unknown",
    }
}

fn line(out: &mut String, style: Style, name: &str, since: &str, a: &Answer) {
    let mark = style.paint(a, &format!("{:<8}", short(a)));
    let detail = match &a.support {
        Support::Supported { .. } => String::new(),
        s => format!("  {s}"),
    };
    // The header says why answers are inferred; each line only says that it is.
    let origin = match a.origin {
        crate::support::Origin::Probed => String::new(),
        crate::support::Origin::Inferred => "  [inferred]".to_string(),
        _ => format!("  [{}]", a.origin_reason.as_deref().unwrap_or("")),
    };
    let _ = writeln!(out, "  {name:<28} {since:>6}  {mark}{detail}{origin}");
}

fn wrap(names: &[String], width: usize) -> String {
    let mut out = String::new();
    let mut col = 0;
    for n in names {
        if col > 0 && col + n.len() + 2 > width {
            out.push_str("\n      ");
            col = 0;
        } else if col > 0 {
            out.push_str(", ");
            col += 2;
        }
        out.push_str(n);
        col += n.len();
    }
    out
}

impl Report {
    /// The readable report.
    pub fn to_text(&self, style: Style) -> String {
        let mut o = String::new();
        let s = &self.system;
        let _ = writeln!(o, "{}", style.head("System"));
        let rel = s.release.as_ref().map_or_else(
            || s.release_error.clone().unwrap_or_default(),
            |r| format!("{} (version {})", r.raw, r.version),
        );
        let _ = writeln!(o, "  kernel                      {rel}, {}", s.arch);
        if let Some(why) = &self.inferred {
            let _ = writeln!(
                o,
                "  {}",
                style.head(&format!(
                    "ANSWERS ARE INFERRED FROM THE KERNEL VERSION, NOT PROBED: {why}"
                ))
            );
        }
        let _ = writeln!(
            o,
            "  BTF (/sys/kernel/btf/vmlinux) {}",
            if s.btf_vmlinux { "present" } else { "absent" }
        );
        for (k, v) in &s.sysctls {
            let _ = writeln!(o, "  {k:<28} {v}");
        }
        let _ = writeln!(
            o,
            "  lockdown                    {} ({})",
            s.lockdown.as_deref().unwrap_or("unknown"),
            s.lockdown_source.as_deref().unwrap_or("not recorded")
        );
        let _ = writeln!(
            o,
            "  kernel addresses            {}",
            match s.addresses_visible() {
                Ok(why) => format!("visible ({why})"),
                Err(why) => why,
            }
        );
        let _ = writeln!(
            o,
            "  tracefs                     {}",
            s.tracefs.as_deref().unwrap_or("not mounted")
        );
        let _ = writeln!(
            o,
            "  bpffs                       {}",
            s.bpffs.as_deref().unwrap_or("not mounted")
        );
        let p = &s.privileges;
        let _ = writeln!(
            o,
            "  privileges                  euid {} CAP_BPF={} CAP_PERFMON={} CAP_SYS_ADMIN={} CAP_NET_ADMIN={}",
            p.euid, p.cap_bpf, p.cap_perfmon, p.cap_sys_admin, p.cap_net_admin
        );
        let lim = |v: Option<u64>| v.map_or("unlimited".to_string(), |b| b.to_string());
        let _ = writeln!(
            o,
            "  RLIMIT_MEMLOCK              {} (charged for BPF: {}){}",
            lim(s.memlock.soft),
            if s.memlock.charged {
                "yes, kernel < 5.11"
            } else {
                "no"
            },
            s.memlock
                .raised
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default()
        );
        match &s.config_source {
            Some(src) => {
                let on: Vec<String> = s
                    .config
                    .iter()
                    .filter(|(_, v)| *v != "n")
                    .map(|(k, v)| format!("{}={v}", k.trim_start_matches("CONFIG_")))
                    .collect();
                let _ = writeln!(o, "  config ({src}):\n      {}", wrap(&on, 90));
            }
            None => {
                let _ = writeln!(
                    o,
                    "  config                      not found (/proc/config.gz, /boot/config-*)"
                );
            }
        }

        let since = |s: Option<Since>| s.map(|s| s.to_string()).unwrap_or_default();
        let sections: [(&str, Vec<SectionRow<'_>>); 3] = [
            (
                "Program types",
                self.program_types
                    .iter()
                    .map(|e| (e.name.name(), since(e.since), &e.answer))
                    .collect(),
            ),
            (
                "Map types",
                self.map_types
                    .iter()
                    .map(|e| (e.name.name(), since(e.since), &e.answer))
                    .collect(),
            ),
            (
                "Misc",
                self.misc
                    .iter()
                    .map(|e| (e.name.name(), e.since.to_string(), &e.answer))
                    .collect(),
            ),
        ];
        for (title, rows) in sections {
            let _ = writeln!(o, "\n{}", style.head(&format!("{title:<29} since  answer")));
            for (name, since, answer) in rows {
                line(&mut o, style, name, &since, answer);
            }
        }
        let known = self
            .kernel_helpers
            .iter()
            .filter(|k| k.answer.is_supported())
            .count();
        let _ = writeln!(
            o,
            "\n{}",
            style.head(&format!(
                "Helpers: the kernel knows {known} of {}; per program type and attach context:",
                self.kernel_helpers.len()
            ))
        );
        for row in &self.helpers {
            let yes: Vec<String> = row
                .answers
                .iter()
                .filter(|(_, a)| a.is_supported())
                .map(|(n, _)| n.clone())
                .collect();
            let no = row
                .answers
                .values()
                .filter(|a| a.support.is_unsupported())
                .count();
            let unknown: Vec<&Answer> = row
                .answers
                .values()
                .filter(|a| a.support.is_unknown())
                .collect();
            let _ = writeln!(
                o,
                "  {} — {} callable, {} not, {} unknown",
                style.head(row.context.name()),
                yes.len(),
                no,
                unknown.len()
            );
            if !yes.is_empty() {
                let _ = writeln!(o, "      {}", wrap(&yes, 90));
            }
            if !unknown.is_empty() && yes.is_empty() {
                let _ = writeln!(o, "      unknown: {}", unknown[0].support);
            }
        }
        if !self.full {
            let _ = writeln!(
                o,
                "\n  (bpf_trace_printk, bpf_trace_vprintk and bpf_probe_write_user are not probed by default: they write to the kernel log; --full probes them)"
            );
        }
        let _ = writeln!(
            o,
            "\n  {} bpf() calls on {} threads in {:.3} s",
            self.bpf_syscalls, self.threads, self.seconds
        );
        o
    }

    /// A C header of `#define`s, in bpftool's `feature probe macros` style.
    pub fn to_macros(&self) -> String {
        let mut o =
            String::from("/* Generated by bpf-features: what BPF can do on this kernel. */\n");
        let _ = writeln!(
            o,
            "/* kernel {} */\n",
            self.system
                .release
                .as_ref()
                .map_or("unknown", |r| r.raw.as_str())
        );
        let def = |o: &mut String, name: String, a: &Answer| {
            let _ = match &a.support {
                Support::Supported { .. } => writeln!(o, "#define {name}"),
                Support::Unsupported { .. } => writeln!(o, "/* {name} is not set */"),
                Support::Unknown { reason, .. } => writeln!(
                    o,
                    "/* {name} is unknown: {} */",
                    reason.replace("*/", "* /")
                ),
            };
        };
        for e in &self.program_types {
            def(
                &mut o,
                format!("HAVE_{}_PROG_TYPE", e.name.name().to_uppercase()),
                &e.answer,
            );
        }
        for e in &self.map_types {
            def(
                &mut o,
                format!("HAVE_{}_MAP_TYPE", e.name.name().to_uppercase()),
                &e.answer,
            );
        }
        for e in &self.misc {
            def(
                &mut o,
                format!("HAVE_{}", e.name.name().to_uppercase()),
                &e.answer,
            );
        }
        o.push_str(
            "\n#define HAVE_PROG_TYPE_HELPER(prog_type, helper) \\\n\tBPF__PROG_TYPE_ ## prog_type ## __HELPER_ ## helper\n",
        );
        for row in &self.helpers {
            let ctx = row.context.name().replace('/', "__");
            for (h, a) in &row.answers {
                let _ = writeln!(
                    o,
                    "#define BPF__PROG_TYPE_{ctx}__HELPER_{h} {}",
                    a.is_supported() as u8
                );
            }
        }
        o
    }
}

fn no_since() -> Since {
    Since::new(0, 0)
}
