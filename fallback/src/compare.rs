//! Reports side by side: features × kernels, and the strategy each kernel's answers pick.
//! `bpf-features compare A.json B.json …` prints it; the kernel matrix builds its table with
//! the same rows (and adds its own, such as `--verify`).
use std::collections::BTreeMap;

use probe::{Answer, AttachContext, FeatureSource, Helper, Report, Support};

/// A table cell for one answer: `yes`, `no`, `unknown (EPERM)`, `unknown`.
pub fn cell(a: &Answer) -> String {
    match &a.support {
        Support::Supported { .. } => "yes".into(),
        Support::Unsupported { .. } => "no".into(),
        Support::Unknown { reason, .. } if reason.contains("EPERM") => "unknown (EPERM)".into(),
        Support::Unknown { .. } => "unknown".into(),
    }
}

/// The contexts whose `bpf_get_func_ip` answer gets a row of its own.
const FUNC_IP_CONTEXTS: [AttachContext; 5] = [
    AttachContext::KPROBE,
    AttachContext::KprobeMulti,
    AttachContext::FENTRY_KERNEL_FN,
    AttachContext::FentryBpfProg,
    AttachContext::FentryKprobeProg,
];

/// kfuncs that get a row of their own (with the program type asked), chosen because their
/// fate differs between the matrix kernels: the generic set (6.2), the iterators (6.4),
/// a tracepoint's access to the generic set (6.12), and a sleepable kfunc (6.12) refused in
/// fentry and callable in fentry.s.
const NAMED_KFUNCS: [(&str, &str); 6] = [
    ("bpf_task_from_pid", "sched_cls"),
    ("bpf_task_from_pid", "tracepoint"),
    ("bpf_iter_num_new", "sched_cls"),
    ("bpf_rcu_read_lock", "sched_cls"),
    ("bpf_copy_from_user_str", "tracing/fentry"),
    ("bpf_copy_from_user_str", "tracing/fentry.s"),
];

/// One kernel's rows, in report order: every type, map and misc feature, the helper counts,
/// `bpf_get_func_ip` per context, and the strategy each need picks from these answers.
pub fn rows(r: &Report) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in &r.program_types {
        out.push((format!("prog_type {}", e.name), cell(&e.answer)));
    }
    for e in &r.map_types {
        out.push((format!("map_type {}", e.name), cell(&e.answer)));
    }
    for e in &r.misc {
        out.push((format!("misc {}", e.name.name()), cell(&e.answer)));
    }
    let known = r
        .kernel_helpers
        .iter()
        .filter(|h| h.answer.is_supported())
        .count();
    out.push(("helpers the kernel knows".into(), known.to_string()));
    for ctx in FUNC_IP_CONTEXTS {
        out.push((
            format!("bpf_get_func_ip in {}", ctx.name()),
            cell(&r.helper(ctx, Helper::GET_FUNC_IP)),
        ));
    }
    for row in &r.helpers {
        let n = row.answers.values().filter(|a| a.is_supported()).count();
        out.push((
            format!("helpers callable in {}", row.context.name()),
            n.to_string(),
        ));
    }
    if let Some(k) = &r.kernel_kfuncs {
        out.push((
            "kfuncs the kernel has".into(),
            match &k.error {
                Some(_) => "unknown".into(),
                None => format!(
                    "{} ({} tagged)",
                    k.kfuncs.len(),
                    k.kfuncs.iter().filter(|e| e.tagged).count()
                ),
            },
        ));
    }
    for (name, ctx) in NAMED_KFUNCS {
        let ctx: AttachContext = ctx.parse().expect("a known context");
        out.push((
            format!("kfunc {name} in {}", ctx.name()),
            cell(&r.kfunc(ctx, name)),
        ));
    }
    for row in &r.kfuncs {
        let n = row.answers.values().filter(|a| a.is_supported()).count();
        out.push((
            format!("kfuncs callable in {}", row.context.name()),
            n.to_string(),
        ));
    }
    if let Some(a) = &r.attach_points {
        out.push(("BTF functions".into(), a.btf_functions.to_string()));
        for c in &a.by_mechanism {
            out.push((
                format!("functions traceable by {}", c.mechanism.name()),
                format!(
                    "{} ({} not, {} unknown)",
                    c.supported, c.unsupported, c.unknown
                ),
            ));
        }
        out.push((
            "functions with an ambiguous name".into(),
            a.ambiguous.to_string(),
        ));
        out.push((
            "functions only as compiler clones".into(),
            a.only_clones.to_string(),
        ));
    }
    for n in crate::all_needs(r, &crate::strategy::Forced::default()) {
        out.push((
            format!("strategy {}", n.need),
            n.chosen.unwrap_or_else(|| "none".into()),
        ));
    }
    out
}

/// Features × kernels.
#[derive(Clone, Debug)]
pub struct Table {
    /// The column labels, one per kernel (its release for recorded reports).
    pub kernels: Vec<String>,
    /// `(feature, one value per kernel)`, rows that differ between kernels first.
    pub rows: Vec<(String, Vec<String>)>,
    /// How many of the rows differ.
    pub differ: usize,
}

impl Table {
    /// Builds the table from each kernel's `(label, rows)`; a row missing in a kernel's
    /// report (an older bpf-features) shows `-`.
    pub fn new(columns: Vec<(String, Vec<(String, String)>)>) -> Table {
        let n = columns.len();
        let mut order: Vec<String> = Vec::new();
        let mut by_row: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, (_, rows)) in columns.iter().enumerate() {
            for (r, v) in rows {
                by_row.entry(r.clone()).or_insert_with(|| {
                    order.push(r.clone());
                    vec!["-".into(); n]
                })[i] = v.clone();
            }
        }
        let (differ, same): (Vec<String>, Vec<String>) = order
            .into_iter()
            .partition(|r| by_row[r].iter().any(|x| x != &by_row[r][0]));
        let differ_count = differ.len();
        Table {
            kernels: columns.into_iter().map(|(label, _)| label).collect(),
            rows: differ
                .into_iter()
                .chain(same)
                .map(|r| {
                    let v = by_row.remove(&r).unwrap_or_default();
                    (r, v)
                })
                .collect(),
            differ: differ_count,
        }
    }

    /// Recorded reports, each labelled by its kernel release.
    pub fn of_reports(reports: &[Report]) -> Table {
        Table::new(
            reports
                .iter()
                .map(|r| {
                    let label = r
                        .system
                        .release
                        .as_ref()
                        .map_or_else(|| "unknown kernel".into(), |k| k.raw.clone());
                    (label, rows(r))
                })
                .collect(),
        )
    }

    /// `{"kernels": […], "rows": [{"feature", "values"}], "differ": N}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kernels": self.kernels,
            "rows": self
                .rows
                .iter()
                .map(|(r, v)| serde_json::json!({"feature": r, "values": v}))
                .collect::<Vec<_>>(),
            "differ": self.differ,
        })
    }

    /// A markdown table.
    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "| feature | {} |\n|---|{}\n",
            self.kernels.join(" | "),
            "---|".repeat(self.kernels.len())
        );
        for (r, v) in &self.rows {
            md.push_str(&format!("| {r} | {} |\n", v.join(" | ")));
        }
        md
    }

    /// Plain text in aligned columns.
    pub fn to_text(&self) -> String {
        let first = self
            .rows
            .iter()
            .map(|(r, _)| r.len())
            .max()
            .unwrap_or(7)
            .max(7);
        let widths: Vec<usize> = (0..self.kernels.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|(_, v)| v[i].len())
                    .chain([self.kernels[i].len()])
                    .max()
                    .unwrap_or(1)
            })
            .collect();
        let line = |name: &str, cells: &[String]| {
            let mut l = format!("{name:<first$}");
            for (c, w) in cells.iter().zip(&widths) {
                l.push_str(&format!("  {c:<w$}"));
            }
            l.trim_end().to_string() + "\n"
        };
        let mut out = line("feature", &self.kernels);
        for (i, (r, v)) in self.rows.iter().enumerate() {
            if i == self.differ {
                out.push_str(&format!(
                    "-- the same on every kernel ({} rows) --\n",
                    self.rows.len() - self.differ
                ));
            }
            out.push_str(&line(r, v));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_that_differ_come_first_and_missing_ones_show_a_dash() {
        let t = Table::new(vec![
            (
                "a".into(),
                vec![("x".into(), "yes".into()), ("y".into(), "no".into())],
            ),
            (
                "b".into(),
                vec![
                    ("x".into(), "yes".into()),
                    ("y".into(), "yes".into()),
                    ("z".into(), "1".into()),
                ],
            ),
        ]);
        assert_eq!(t.differ, 2);
        assert_eq!(t.rows[0], ("y".into(), vec!["no".into(), "yes".into()]));
        assert_eq!(t.rows[1], ("z".into(), vec!["-".into(), "1".into()]));
        assert_eq!(t.rows[2].0, "x");
        assert!(
            t.to_markdown()
                .starts_with("| feature | a | b |\n|---|---|---|\n| y | no | yes |")
        );
        let text = t.to_text();
        assert!(text.contains("the same on every kernel (1 rows)"), "{text}");
    }
}
