//! The report's renderings: plain text (optionally coloured) and bpftool-style C macros,
//! each one walk over the same sections.
use std::fmt::Write as _;

use super::Report;
use crate::{
    names::Since,
    support::{Answer, Support},
};

/// Terminal colours, only when asked for (a terminal).
#[derive(Clone, Copy)]
pub struct Style {
    /// ANSI colours: green supported, red not supported, yellow unknown; bold headings.
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
        if let Some(t) = &self.token {
            let names = |n: &crate::token::Names| match n {
                crate::token::Names::Any(_) => "any".to_string(),
                crate::token::Names::Some(v) if v.is_empty() => "none".to_string(),
                crate::token::Names::Some(v) => v.join(":"),
            };
            let _ = writeln!(
                o,
                "  BPF token                   from {}: every load carries it; what it does not \
                 allow is refused, and answered unknown",
                t.path
            );
            for (what, n) in [
                ("cmds", &t.cmds),
                ("progs", &t.progs),
                ("maps", &t.maps),
                ("attachs", &t.attachs),
            ] {
                let _ = writeln!(o, "    delegate_{what:<20} {}", names(n));
            }
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
            s.lockdown.map_or("unknown", |m| m.name()),
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
        if let Some(k) = &self.kernel_kfuncs {
            let text = match &k.error {
                Some(e) => format!("kfuncs: BTF could not be read: {e}"),
                None => format!(
                    "kfuncs: the kernel has {} ({} tagged bpf_kfunc in BTF, {} from the table \
                     of known kfuncs; `bpf-features has kfunc NAME --prog-type T` asks a context)",
                    k.kfuncs.len(),
                    k.kfuncs.iter().filter(|e| e.tagged).count(),
                    k.kfuncs.iter().filter(|e| !e.tagged).count()
                ),
            };
            let _ = writeln!(o, "\n{}", style.head(&text));
        }
        if let Some(a) = &self.attach_points {
            let _ = writeln!(
                o,
                "\n{}",
                style.head(&format!(
                    "Attach points: {} functions in BTF ({} ambiguous, {} only as compiler \
                     clones); `bpf-features can-trace F` asks one",
                    a.btf_functions, a.ambiguous, a.only_clones
                ))
            );
            for c in &a.by_mechanism {
                let _ = writeln!(
                    o,
                    "  {:<14} {:>6} traceable, {:>6} not, {:>6} unknown",
                    c.mechanism.name(),
                    c.supported,
                    c.unsupported,
                    c.unknown
                );
            }
            for p in &a.source_problems {
                let _ = writeln!(o, "  note: {p}");
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
            context_row(&mut o, style, row.context.name(), &row.answers);
        }
        if !self.kfuncs.is_empty() {
            let _ = writeln!(
                o,
                "\n{}",
                style.head("kfuncs per program type and attach context:")
            );
        }
        for row in &self.kfuncs {
            context_row(&mut o, style, row.context.name(), &row.answers);
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
            context_macros(&mut o, row.context, "HELPER", &row.answers);
        }
        // kfuncs: the kernel's (layer a), then per context with --kfuncs (layer b), in the
        // helpers' style.
        if let Some(k) = &self.kernel_kfuncs {
            o.push('\n');
            for e in &k.kfuncs {
                let _ = writeln!(o, "#define HAVE_KFUNC_{}", e.name.to_uppercase());
            }
        }
        if !self.kfuncs.is_empty() {
            o.push_str(
                "\n#define HAVE_PROG_TYPE_KFUNC(prog_type, kfunc) \\\n\tBPF__PROG_TYPE_ ## prog_type ## __KFUNC_ ## kfunc\n",
            );
        }
        for row in &self.kfuncs {
            context_macros(&mut o, row.context, "KFUNC", &row.answers);
        }
        o
    }
}

/// `#define BPF__PROG_TYPE_<ctx>__<KIND>_<name> 0|1` for one context's answers; `<ctx>` is
/// the context's name as a C identifier (`tracing__fentry_s` for `tracing/fentry.s`).
fn context_macros(
    o: &mut String,
    context: crate::names::AttachContext,
    kind: &str,
    answers: &std::collections::BTreeMap<String, Answer>,
) {
    let ctx = context.name().replace('/', "__").replace('.', "_");
    for (name, a) in answers {
        let _ = writeln!(
            o,
            "#define BPF__PROG_TYPE_{ctx}__{kind}_{name} {}",
            a.is_supported() as u8
        );
    }
}

/// One context's row of callable names (helpers or kfuncs): counts, the callable names, and
/// why when nothing is known.
fn context_row(
    o: &mut String,
    style: Style,
    context: &str,
    answers: &std::collections::BTreeMap<String, Answer>,
) {
    let yes: Vec<String> = answers
        .iter()
        .filter(|(_, a)| a.is_supported())
        .map(|(n, _)| n.clone())
        .collect();
    let no = answers
        .values()
        .filter(|a| a.support.is_unsupported())
        .count();
    let unknown: Vec<&Answer> = answers
        .values()
        .filter(|a| a.support.is_unknown())
        .collect();
    let _ = writeln!(
        o,
        "  {} — {} callable, {} not, {} unknown",
        style.head(context),
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
