//! Attach contexts: where a program runs, beyond its type.

use super::{ProgramType, UnknownName, closest, serde_by_name};

/// Where a program runs, for the questions that depend on more than the program type.
///
/// The verifier checks some helpers against the attach context, not the type alone:
/// `bpf_get_func_ip` is allowed in kprobe (5.15), kprobe_multi (5.18), fentry/fexit on a
/// kernel function (5.15), but in fentry on a *BPF program* only from 5.18 — before that
/// the program was verified as its target's type (`not supported for program type 3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttachContext {
    /// The plain setup of a program type (for tracing: fentry on a kernel function; for
    /// lsm: `BPF_LSM_MAC`; for ext: replacing a function of a BPF program).
    Default(ProgramType),
    /// kprobe with `BPF_TRACE_KPROBE_MULTI` (5.18).
    KprobeMulti,
    /// tracing with `BPF_TRACE_FEXIT` on a kernel function.
    FexitKernelFn,
    /// tracing with `BPF_TRACE_FENTRY` and `attach_prog_fd` on a tc (sched_cls) program:
    /// fentry on a BPF program, as pwru's `--filter-trace-tc` does.
    FentryBpfProg,
    /// The same on a kprobe program. The target's type is part of the question: 5.15-5.17
    /// verify such a program as its target's type (`resolve_prog_type`), so
    /// `bpf_get_func_ip` is accepted on a kprobe target there and refused on a tc one.
    FentryKprobeProg,
    /// tracing with `BPF_TRACE_FENTRY` and `BPF_F_SLEEPABLE` (libbpf's `fentry.s`, 5.10) on
    /// a kernel function that may sleep: `bpf_fentry_test1` (6.2+), else a syscall in the
    /// error-injection list (CONFIG_FUNCTION_ERROR_INJECTION).
    FentrySleepable,
    /// lsm with `BPF_F_SLEEPABLE` (libbpf's `lsm.s`, 5.10) on a sleepable hook
    /// (`bprm_committed_creds`).
    LsmSleepable,
}

impl AttachContext {
    /// fentry on a kernel function: the tracing type's default.
    pub const FENTRY_KERNEL_FN: Self = Self::Default(ProgramType::TRACING);
    /// A plain kprobe.
    pub const KPROBE: Self = Self::Default(ProgramType::KPROBE);

    /// The program type loaded for this context.
    pub fn prog_type(self) -> ProgramType {
        match self {
            Self::Default(t) => t,
            Self::KprobeMulti => ProgramType::KPROBE,
            Self::FexitKernelFn
            | Self::FentryBpfProg
            | Self::FentryKprobeProg
            | Self::FentrySleepable => ProgramType::TRACING,
            Self::LsmSleepable => ProgramType::LSM,
        }
    }
    /// The extra contexts probed beside each program type's default.
    pub const EXTRA: [Self; 6] = [
        Self::KprobeMulti,
        Self::FexitKernelFn,
        Self::FentryBpfProg,
        Self::FentryKprobeProg,
        Self::FentrySleepable,
        Self::LsmSleepable,
    ];

    /// Whether programs loaded in this context are sleepable (`BPF_F_SLEEPABLE`; syscall
    /// programs must be).
    pub fn is_sleepable(self) -> bool {
        matches!(self, Self::FentrySleepable | Self::LsmSleepable)
            || self == Self::Default(ProgramType::SYSCALL)
    }

    /// The sleepable variant of this context (`--sleepable`): fentry.s for fentry, lsm.s
    /// for lsm, itself when already sleepable; `None` where the kernel has no sleepable
    /// programs.
    pub fn sleepable(self) -> Option<Self> {
        match self {
            c if c.is_sleepable() => Some(c),
            Self::FENTRY_KERNEL_FN => Some(Self::FentrySleepable),
            Self::Default(t) if t == ProgramType::LSM => Some(Self::LsmSleepable),
            _ => None,
        }
    }

    /// fentry on a BPF program of `target`'s type: the context whose answers hold there.
    pub fn fentry_on(target: ProgramType) -> Self {
        if target == ProgramType::KPROBE {
            Self::FentryKprobeProg
        } else {
            Self::FentryBpfProg
        }
    }

    /// The context's own name (`kprobe_multi`, `fentry_bpf_prog`), or `None` for a default.
    pub fn attach_name(self) -> Option<&'static str> {
        match self {
            Self::Default(t) if t == ProgramType::TRACING => Some("fentry"),
            Self::Default(_) => None,
            Self::KprobeMulti => Some("kprobe_multi"),
            Self::FexitKernelFn => Some("fexit"),
            Self::FentryBpfProg => Some("fentry_bpf_prog"),
            Self::FentryKprobeProg => Some("fentry_kprobe_prog"),
            Self::FentrySleepable => Some("fentry.s"),
            Self::LsmSleepable => Some("lsm.s"),
        }
    }
    /// `kprobe`, `kprobe/kprobe_multi`, `tracing/fentry_bpf_prog`: type, then context.
    pub fn name(self) -> &'static str {
        match self {
            Self::Default(t) if t == ProgramType::TRACING => "tracing/fentry",
            Self::Default(t) => t.name(),
            Self::KprobeMulti => "kprobe/kprobe_multi",
            Self::FexitKernelFn => "tracing/fexit",
            Self::FentryBpfProg => "tracing/fentry_bpf_prog",
            Self::FentryKprobeProg => "tracing/fentry_kprobe_prog",
            Self::FentrySleepable => "tracing/fentry.s",
            Self::LsmSleepable => "lsm/lsm.s",
        }
    }
    /// Builds a context from a program type and an optional attach name.
    pub fn new(prog_type: ProgramType, attach: Option<&str>) -> Result<Self, UnknownName> {
        let valid: &[(&str, Self)] = &[
            ("kprobe_multi", Self::KprobeMulti),
            ("fentry", Self::FENTRY_KERNEL_FN),
            ("fexit", Self::FexitKernelFn),
            ("fentry_bpf_prog", Self::FentryBpfProg),
            ("fentry_kprobe_prog", Self::FentryKprobeProg),
            ("fentry.s", Self::FentrySleepable),
            ("lsm.s", Self::LsmSleepable),
        ];
        let Some(a) = attach else {
            return Ok(Self::Default(prog_type));
        };
        valid
            .iter()
            .find(|(n, c)| *n == a && c.prog_type() == prog_type)
            .map(|(_, c)| *c)
            .ok_or_else(|| UnknownName {
                what: "attach context for this program type",
                given: a.to_string(),
                suggestion: closest(
                    a,
                    valid
                        .iter()
                        .filter(|(_, c)| c.prog_type() == prog_type)
                        .map(|(n, _)| *n),
                ),
            })
    }
    /// Every context of the helper matrix: each program type's default, then the extras.
    pub fn all() -> impl Iterator<Item = Self> {
        ProgramType::all().map(Self::Default).chain(Self::EXTRA)
    }
}

impl std::str::FromStr for AttachContext {
    type Err = UnknownName;
    /// `kprobe`, `kprobe/kprobe_multi`, or a bare context name (`fentry_bpf_prog`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((t, a)) => Self::new(t.parse()?, Some(a)),
            None => match s {
                "kprobe_multi" => Ok(Self::KprobeMulti),
                "fexit" => Ok(Self::FexitKernelFn),
                "fentry_bpf_prog" => Ok(Self::FentryBpfProg),
                "fentry_kprobe_prog" => Ok(Self::FentryKprobeProg),
                "fentry.s" => Ok(Self::FentrySleepable),
                "lsm.s" => Ok(Self::LsmSleepable),
                _ => Ok(Self::Default(s.parse()?)),
            },
        }
    }
}
serde_by_name!(AttachContext);
