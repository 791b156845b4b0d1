//! Placeholder until the researched table lands (being written).
use super::Since;

/// One kfunc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KfuncRow {
    /// Its name.
    pub name: &'static str,
    /// The release it appeared in.
    pub since: Since,
    /// Its module, `None` for vmlinux.
    pub module: Option<&'static str>,
}

/// The table.
pub const KFUNCS: &[KfuncRow] = &[KfuncRow {
    name: "bpf_task_from_pid",
    since: Since::new(6, 2),
    module: None,
}];
