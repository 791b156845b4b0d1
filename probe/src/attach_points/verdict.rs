//! The rules: how the sources' facts about one function, and the kernel's mechanisms,
//! become one answer per mechanism. Each rule cites the kernel code that enforces it.
use crate::interned::NameHash;
use crate::{
    btf::{BtfFunction, Linkage, Named, ValueKind},
    conditions::{LockdownMode, REFUSED_BY_LOCKDOWN},
    kernel::{KernelRelease, SystemInfo},
    support::{Answer, Evidence, Scope, Support},
};

use super::{
    AttachPoints, FtraceFunctions, Instance, KernelMechanisms, KprobeBlacklist, Mechanism,
    MechanismAnswer,
};

/// What the evidence says was consulted.
const PROBE: &str = "attach points: BTF, available_filter_functions, kallsyms, kprobe blacklist";

/// Functions the verifier refuses as fentry/fexit targets whatever their prototype
/// (`btf_id_deny` in kernel/bpf/verifier.c): they run inside the trampoline's own
/// bookkeeping, so tracing them would recurse. With the release that added each (the
/// first two rows were also backported to 5.10.y).
pub const TRAMPOLINE_DENIED: &[(&str, (u64, u64))] = &[
    ("migrate_disable", (5, 13)),
    ("migrate_enable", (5, 13)),
    ("rcu_read_unlock_strict", (5, 13)),
    ("preempt_count_add", (6, 4)),
    ("preempt_count_sub", (6, 4)),
    ("__rcu_read_lock", (6, 4)),
    ("__rcu_read_unlock", (6, 4)),
    ("__migrate_enable", (6, 18)),
];

/// Whether this kernel's verifier refuses `name` as a trampoline target (an unknown
/// release counts as the newest).
pub fn trampoline_denied(name: &str, release: Option<&KernelRelease>) -> bool {
    TRAMPOLINE_DENIED
        .iter()
        .any(|(n, (a, b))| *n == name && release.is_none_or(|r| r.at_least(*a, *b)))
}

/// `__noreturn` functions as the verifier lists them (`noreturn_deny`, 6.15, backported to
/// 6.6.y and 6.12.y): fexit on them is refused ("Attaching fexit/fmod_ret to __noreturn
/// function '%s' is rejected."). Earlier kernels attach it, and it never runs.
pub const NORETURN: &[&str] = &[
    "__ia32_sys_exit",
    "__ia32_sys_exit_group",
    "__kunit_abort",
    "kunit_try_catch_throw",
    "__module_put_and_kthread_exit",
    "__x64_sys_exit",
    "__x64_sys_exit_group",
    "do_exit",
    "do_group_exit",
    "kthread_complete_and_exit",
    "kthread_exit",
    "make_task_dead",
];

/// Whether `name` never returns.
pub fn noreturn(name: &str) -> bool {
    NORETURN.contains(&name)
}

/// How many arguments this kernel's trampoline passes on `arch`: x86-64 took 6 until 6.6
/// ("bpf, x86: allow function arguments up to 12 for TRACING"), arm64 8 (6.0). `None`
/// when unknown for the architecture. The verifier's own limit is 12
/// (MAX_BPF_FUNC_ARGS, "The function %s has %d arguments. Too many.").
pub fn max_trampoline_args(release: Option<&KernelRelease>, arch: &str) -> Option<usize> {
    let at_least = |a, b| release.is_some_and(|r| r.at_least(a, b));
    match arch {
        "x86_64" if at_least(6, 6) => Some(12),
        "x86_64" => Some(6),
        "aarch64" => Some(8),
        _ => None,
    }
}

/// Why kprobes cannot be created here, when the kernel-level facts say so: no kprobe PMU
/// (CONFIG_KPROBE_EVENTS) or lockdown (LOCKDOWN_KPROBES, integrity and above).
pub(crate) fn kprobes_refused(sys: &SystemInfo) -> Option<Support> {
    let devices = std::path::Path::new("/sys/bus/event_source/devices");
    // Without sysfs (a container) nothing is known of the PMUs.
    let pmu = devices.is_dir().then(|| devices.join("kprobe").exists());
    kprobes_refused_by(pmu, sys.lockdown)
}

/// [`kprobes_refused`] from its facts: whether the kprobe PMU is there (`None`: unknown),
/// and the lockdown mode. A kernel without the mechanism is a "no" whatever lockdown
/// says; lockdown only makes a mechanism the kernel has unusable, so it is "unknown".
pub(crate) fn kprobes_refused_by(
    pmu: Option<bool>,
    lockdown: Option<LockdownMode>,
) -> Option<Support> {
    if pmu == Some(false) {
        return Some(Support::Unsupported {
            scope: Scope::Kernel,
            evidence: Evidence::probe("/sys/bus/event_source/devices/kprobe")
                .with_detail("this kernel has no kprobe PMU (built without CONFIG_KPROBE_EVENTS)"),
        });
    }
    if let Some(mode @ (LockdownMode::Integrity | LockdownMode::Confidentiality)) = lockdown {
        return Some(Support::unknown(
            format!(
                "{REFUSED_BY_LOCKDOWN}{}: the kernel refuses to create kprobes \
                 (LOCKDOWN_KPROBES); boot without lockdown to use them",
                mode.name()
            ),
            None,
        ));
    }
    None
}

/// Words for an answer, or none when only its class is wanted (counting every function
/// must not format a quarter-million sentences).
macro_rules! msg {
    ($quiet:expr, $($t:tt)*) => {
        if $quiet { String::new() } else { format!($($t)*) }
    };
}

/// The facts about one name, from every source.
pub(super) struct Facts<'a> {
    name: &'a str,
    /// Only the class of each answer is wanted: no words.
    quiet: bool,
    btf: Result<Named<'a>, &'a str>,
    btf_modules: usize,
    kallsyms: Result<&'a [Instance], &'a str>,
    clones: Vec<(&'a str, &'a [Instance])>,
    ftrace: Result<&'a FtraceFunctions, &'a str>,
    own_ftrace_count: Result<u32, &'a str>,
    blacklist: Result<&'a KprobeBlacklist, &'a str>,
}

impl<'a> Facts<'a> {
    pub(super) fn gather(ap: &'a AttachPoints, name: &'a str, quiet: bool) -> Self {
        // One hash for every table's lookup: resolving every function is mostly lookups.
        let hash = NameHash::of(name.as_bytes());
        Self::gather_hashed(ap, name, hash, ap.btf_functions_hashed(name, hash), quiet)
    }

    /// [`gather`](Self::gather) for a name whose BTF functions are already known.
    pub(super) fn gather_with(
        ap: &'a AttachPoints,
        name: &'a str,
        btf: Named<'a>,
        quiet: bool,
    ) -> Self {
        Self::gather_hashed(ap, name, NameHash::of(name.as_bytes()), btf, quiet)
    }

    /// Quiet [`gather_with`](Self::gather_with) for a name whose hash and ftrace count
    /// were prepared while kallsyms was read.
    pub(super) fn gather_prepared(
        ap: &'a AttachPoints,
        name: &'a str,
        hash: NameHash,
        ftrace_count: u32,
        btf: Named<'a>,
    ) -> Self {
        Self::gather_counted(ap, name, hash, btf, true, Some(ftrace_count))
    }

    fn gather_hashed(
        ap: &'a AttachPoints,
        name: &'a str,
        hash: NameHash,
        btf: Named<'a>,
        quiet: bool,
    ) -> Self {
        Self::gather_counted(ap, name, hash, btf, quiet, None)
    }

    /// Every fact, with the name's own ftrace count when it is known already.
    fn gather_counted(
        ap: &'a AttachPoints,
        name: &'a str,
        hash: NameHash,
        btf: Named<'a>,
        quiet: bool,
        ftrace_count: Option<u32>,
    ) -> Self {
        let s = &ap.sources;
        let ftrace = s.ftrace.as_ref().map_err(String::as_str);
        let own_ftrace_count = match ftrace_count {
            Some(n) => ftrace.map(|_| n),
            None => ftrace.map(|ft| ft.count_hashed(name, hash)),
        };
        let kallsyms = s
            .kallsyms
            .as_ref()
            .map(|k| k.get_hashed(name, hash))
            .map_err(String::as_str);
        // Compiler clones are read only where the name itself falls short — not in BTF,
        // not in kallsyms, or not patchable (the rules and `only_clones` look at them
        // nowhere else): counting every function skips that lookup for most.
        let short = btf.is_empty()
            || kallsyms.is_ok_and(<[Instance]>::is_empty)
            || own_ftrace_count.is_ok_and(|n| n == 0);
        let clones = match &s.kallsyms {
            Ok(k) if short => k.clones_hashed(name, hash).map(|c| (c, k.get(c))).collect(),
            _ => Vec::new(),
        };
        Facts {
            name,
            quiet,
            btf: s.btf.as_ref().map(|_| btf).map_err(String::as_str),
            btf_modules: s.btf.as_ref().map_or(0, |b| b.modules().len()),
            kallsyms,
            clones,
            own_ftrace_count,
            ftrace,
            blacklist: s.blacklist.as_ref().map_err(String::as_str),
        }
    }

    /// How many functions called `symbol` ftrace can patch (`name`'s own count looked up
    /// once).
    fn ftrace_count(&self, symbol: &str) -> Result<u32, &'a str> {
        if symbol == self.name {
            self.own_ftrace_count
        } else {
            self.ftrace.map(|ft| ft.count(symbol))
        }
    }

    /// More than one function of this name.
    pub(super) fn ambiguous(&self) -> bool {
        self.kallsyms.is_ok_and(|k| k.len() > 1) || self.btf.as_ref().is_ok_and(|b| b.len() > 1)
    }

    /// kallsyms has only compiler clones of it.
    pub(super) fn only_clones(&self) -> bool {
        self.kallsyms.is_ok_and(<[Instance]>::is_empty) && !self.clones.is_empty()
    }
}

fn ev(detail: impl Into<String>) -> Evidence {
    let detail = detail.into();
    if detail.is_empty() {
        // A quiet answer: no words at all.
        return Evidence::probe(String::new());
    }
    Evidence::probe(PROBE).with_detail(detail)
}

fn not_for_this_function(detail: impl Into<String>) -> Support {
    Support::Unsupported {
        scope: Scope::Target,
        evidence: ev(detail),
    }
}

fn unknown(reason: impl Into<String>) -> Support {
    Support::unknown(reason, None)
}

fn list(names: &[(&str, &[Instance])]) -> String {
    let shown: Vec<&str> = names.iter().take(4).map(|(n, _)| *n).collect();
    let more = names.len().saturating_sub(4);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn addrs(instances: &[Instance]) -> String {
    let v: Vec<String> = instances
        .iter()
        .take(4)
        .map(|i| match &i.module {
            Some(m) => format!("{:#x} [{m}]", i.addr),
            None => format!("{:#x}", i.addr),
        })
        .collect();
    v.join(", ")
}

/// A mechanism's answer: the function-level verdict, then the kernel-level one. A
/// function-level "no" stands whatever the kernel offers; a kernel-level "no" or
/// "unknown" overrides a function-level "yes".
pub(super) fn answer(f: &Facts<'_>, k: &KernelMechanisms, m: Mechanism) -> MechanismAnswer {
    let (function_level, symbol, module) = match m {
        Mechanism::Fentry | Mechanism::Fexit => trampoline(f, k, m == Mechanism::Fexit),
        Mechanism::Kprobe | Mechanism::Kretprobe => kprobe(f, k),
        Mechanism::KprobeMulti => kprobe_multi(f),
    };
    let kernel_level = match m {
        Mechanism::Fentry | Mechanism::Fexit => &k.tracing,
        Mechanism::Kprobe | Mechanism::Kretprobe => &k.kprobe,
        Mechanism::KprobeMulti => &k.kprobe_multi,
    };
    // The kernel lacking the mechanism outranks everything; then the function's "no";
    // then any unknown (the function's first, it is the more specific).
    let answer = match (&function_level, &kernel_level.support) {
        (_, Support::Unsupported { .. }) => kernel_level.clone(),
        (Support::Unsupported { .. } | Support::Unknown { .. }, _) => {
            Answer::probed(function_level)
        }
        (_, Support::Unknown { reason, evidence }) => {
            let mut a = kernel_level.clone();
            a.support = Support::Unknown {
                reason: format!("{m} itself: {reason}"),
                evidence: evidence.clone(),
            };
            a
        }
        _ => Answer::probed(function_level),
    };
    let supported = answer.is_supported();
    MechanismAnswer {
        mechanism: m,
        answer,
        symbol: symbol.filter(|_| supported).map(str::to_string),
        module: module.filter(|_| supported).map(str::to_string),
    }
}

/// An answer's class, counted without words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Yes,
    No,
    Unknown,
}

fn class_of(s: &Support) -> Class {
    match s {
        Support::Supported { .. } => Class::Yes,
        Support::Unsupported { .. } => Class::No,
        Support::Unknown { .. } => Class::Unknown,
    }
}

/// [`answer`]'s class, by the same rules, without building its words (`f` gathered quiet).
pub(super) fn class(f: &Facts<'_>, k: &KernelMechanisms, m: Mechanism) -> Class {
    let function_level = match m {
        Mechanism::Fentry | Mechanism::Fexit => trampoline(f, k, m == Mechanism::Fexit).0,
        Mechanism::Kprobe | Mechanism::Kretprobe => kprobe(f, k).0,
        Mechanism::KprobeMulti => kprobe_multi(f).0,
    };
    let kernel_level = match m {
        Mechanism::Fentry | Mechanism::Fexit => &k.tracing,
        Mechanism::Kprobe | Mechanism::Kretprobe => &k.kprobe,
        Mechanism::KprobeMulti => &k.kprobe_multi,
    };
    match (class_of(&function_level), class_of(&kernel_level.support)) {
        (_, Class::No) => Class::No,
        (Class::No, _) => Class::No,
        (Class::Unknown, _) | (_, Class::Unknown) => Class::Unknown,
        _ => Class::Yes,
    }
}

/// Every mechanism's [`class`], in [`Mechanism::ALL`]'s order, each rule decided once:
/// kretprobe's rules are kprobe's, and fexit's are fentry's but for `__noreturn`.
pub(super) fn classes(f: &Facts<'_>, k: &KernelMechanisms) -> [Class; 5] {
    let fentry = class(f, k, Mechanism::Fentry);
    let fexit = if noreturn(f.name) {
        class(f, k, Mechanism::Fexit)
    } else {
        fentry
    };
    let kprobe = class(f, k, Mechanism::Kprobe);
    [
        fentry,
        fexit,
        kprobe,
        kprobe,
        class(f, k, Mechanism::KprobeMulti),
    ]
}

/// The function-level answer, and the symbol and module to attach to (borrowed: counting
/// every function builds no strings).
type Verdict<'a> = (Support, Option<&'a str>, Option<&'a str>);

fn trampoline<'a>(f: &Facts<'a>, k: &KernelMechanisms, fexit: bool) -> Verdict<'a> {
    let name = f.name;
    let btf = match &f.btf {
        Err(e) => {
            return (
                unknown(msg!(f.quiet, "BTF is not readable: {e}")),
                None,
                None,
            );
        }
        Ok(b) => b,
    };
    let func = match &btf[..] {
        [] => {
            let why = if let Some((base, _)) = super::clone_of(name) {
                msg!(
                    f.quiet,
                    "`{name}` is not in the kernel's BTF: it is a compiler clone of `{base}`, \
                     and BTF describes only original functions"
                )
            } else if !f.clones.is_empty() {
                msg!(
                    f.quiet,
                    "`{name}` is not in the kernel's BTF: the compiler changed its calling \
                     convention (kallsyms has only {})",
                    list(&f.clones)
                )
            } else if f.kallsyms.is_ok_and(|k| !k.is_empty()) {
                msg!(
                    f.quiet,
                    "`{name}` is in kallsyms but not in the kernel's BTF (pahole left it out: \
                     an inconsistent prototype, or an assembly function)"
                )
            } else {
                msg!(
                    f.quiet,
                    "`{name}` is not in the kernel's BTF (vmlinux and {} loaded modules): \
                     inlined everywhere, or in a module that is not loaded",
                    f.btf_modules
                )
            };
            return (not_for_this_function(why), None, None);
        }
        [one] => *one,
        many => {
            let modules: Vec<&str> = many
                .iter()
                .map(|b| b.module.as_deref().unwrap_or("vmlinux"))
                .collect();
            return (
                unknown(msg!(
                    f.quiet,
                    "{} functions named `{name}` in BTF ({}): ambiguous",
                    many.len(),
                    modules.join(", ")
                )),
                None,
                None,
            );
        }
    };
    if trampoline_denied(name, k.release.as_ref()) {
        return (
            not_for_this_function(msg!(
                f.quiet,
                "the verifier refuses `{name}` as a trampoline target (btf_id_deny: \
                 \"Attaching tracing programs to function '{name}' is rejected.\")"
            )),
            None,
            None,
        );
    }
    if fexit && noreturn(name) {
        return (
            not_for_this_function(msg!(
                f.quiet,
                "`{name}` never returns, so a fexit program on it never runs (6.15+ and \
                 stable backports refuse it: \"Attaching fexit/fmod_ret to __noreturn \
                 function '{name}' is rejected.\")"
            )),
            None,
            None,
        );
    }
    if func.linkage == Linkage::Extern {
        return (
            not_for_this_function(msg!(f.quiet, "`{name}` is only declared in BTF (extern)")),
            None,
            None,
        );
    }
    if let Some(why) = prototype_refused(func, k, f.quiet) {
        return (why, None, None);
    }
    if func.module.is_some() && k.release.as_ref().is_some_and(|r| !r.at_least(5, 11)) {
        return (
            not_for_this_function(msg!(
                f.quiet,
                "`{name}` is in module {}: fentry on module functions needs 5.11 \
                 (attach_btf_obj_fd)",
                func.module.as_deref().unwrap_or("?")
            )),
            None,
            None,
        );
    }
    match f.kallsyms {
        Err(e) => {
            return (
                unknown(msg!(f.quiet, "kallsyms is not readable: {e}")),
                None,
                None,
            );
        }
        Ok([]) => {
            return (
                not_for_this_function(msg!(
                    f.quiet,
                    "`{name}` is in BTF but not in kallsyms: the verifier cannot find its \
                     address (ENOENT, \"The address of function {name} cannot be found\")"
                )),
                None,
                None,
            );
        }
        Ok([_]) => {}
        Ok(many) => {
            return (
                unknown(msg!(
                    f.quiet,
                    "{} functions named `{name}` in kallsyms ({}): the verifier takes the \
                     first, which may not be the one BTF describes (ambiguous)",
                    many.len(),
                    addrs(many)
                )),
                None,
                None,
            );
        }
    }
    match f.own_ftrace_count {
        Err(e) => (
            unknown(msg!(
                f.quiet,
                "available_filter_functions is not readable ({e}): a trampoline needs \
                 `{name}` to be an ftrace location"
            )),
            None,
            None,
        ),
        Ok(0) => (
            not_for_this_function(msg!(
                f.quiet,
                "`{name}` is not in available_filter_functions (notrace, or not patchable): \
                 the trampoline has no call site to patch"
            )),
            None,
            None,
        ),
        Ok(_) => (
            Support::Supported {
                evidence: Some(ev(msg!(
                    f.quiet,
                    "`{name}` is in BTF ({} arguments), kallsyms and available_filter_functions",
                    func.params.len()
                ))),
            },
            Some(name),
            func.module.as_deref(),
        ),
    }
}

/// Whether the trampoline refuses the prototype (btf_distill_func_proto and the arch's
/// trampoline builder).
fn prototype_refused(func: &BtfFunction, k: &KernelMechanisms, quiet: bool) -> Option<Support> {
    let name = &func.name;
    if func.variadic {
        return Some(not_for_this_function(msg!(
            quiet,
            "`{name}` takes variable arguments (\"The function {name} with variable args is \
             unsupported.\")"
        )));
    }
    let n = func.params.len();
    if n > 12 {
        return Some(not_for_this_function(msg!(
            quiet,
            "`{name}` has {n} arguments; the verifier takes at most 12 (\"The function \
             {name} has {n} arguments. Too many.\")"
        )));
    }
    for (i, p) in func.params.iter().chain([&func.ret]).enumerate() {
        let what = if i == n {
            msg!(quiet, "its return value")
        } else {
            msg!(quiet, "argument {}", i + 1)
        };
        match p {
            ValueKind::Void | ValueKind::Scalar => {}
            ValueKind::Aggregate(size) => {
                let struct_args = k.arch == "x86_64"
                    && k.release.as_ref().is_some_and(|r| r.at_least(6, 1))
                    && i < n;
                if !struct_args || *size > 16 {
                    return Some(not_for_this_function(msg!(
                        quiet,
                        "{what} of `{name}` is a {size}-byte struct passed by value: \
                         trampolines take structs of at most 16 bytes, as arguments, on \
                         x86-64 from 6.1"
                    )));
                }
            }
            ValueKind::Float | ValueKind::Other => {
                return Some(not_for_this_function(msg!(
                    quiet,
                    "{what} of `{name}` has a type trampolines cannot pass (\"The function \
                     {name} arg{i} type … is unsupported.\")"
                )));
            }
        }
    }
    match max_trampoline_args(k.release.as_ref(), &k.arch) {
        Some(max) if n > max => Some(not_for_this_function(msg!(
            quiet,
            "`{name}` has {n} arguments; this kernel's {} trampoline passes at most {max}",
            k.arch
        ))),
        None if n > 6 => Some(unknown(msg!(
            quiet,
            "`{name}` has {n} arguments; the trampoline limit on {} is not known here",
            k.arch
        ))),
        _ => None,
    }
}

fn kprobe<'a>(f: &Facts<'a>, k: &KernelMechanisms) -> Verdict<'a> {
    let name = f.name;
    let inst = match f.kallsyms {
        Err(e) => {
            return (
                unknown(msg!(f.quiet, "kallsyms is not readable: {e}")),
                None,
                None,
            );
        }
        Ok(i) => i,
    };
    let (symbol, at, how) = match (inst, f.clones.as_slice()) {
        ([one], _) => (name, one, msg!(f.quiet, "`{name}` is in kallsyms")),
        ([], []) => {
            return (
                not_for_this_function(msg!(
                    f.quiet,
                    "`{name}` is not in kallsyms: inlined everywhere, or its module is not \
                     loaded"
                )),
                None,
                None,
            );
        }
        ([], [(clone, [one])]) => (
            *clone,
            one,
            msg!(f.quiet, "on `{clone}`, the only compiler clone of `{name}`"),
        ),
        ([], clones) => {
            return (
                unknown(msg!(
                    f.quiet,
                    "`{name}` is not in kallsyms, and it has {} compiler clones ({}): pick \
                     one, or attach by address",
                    clones.len(),
                    list(clones)
                )),
                None,
                None,
            );
        }
        (many, _) => {
            return (
                unknown(msg!(
                    f.quiet,
                    "{} functions named `{name}` in kallsyms ({}): kernels from 6.6 (and \
                     stable backports) refuse the name with EADDRNOTAVAIL, earlier ones probe \
                     the first; attach by address (ambiguous)",
                    many.len(),
                    addrs(many)
                )),
                None,
                None,
            );
        }
    };
    if k.kprobe_needs_ftrace {
        match f.ftrace_count(symbol) {
            Err(e) => {
                return (
                    unknown(msg!(
                        f.quiet,
                        "{how}, but available_filter_functions is not readable ({e}): the \
                         kernel refuses kprobes on functions ftrace cannot patch"
                    )),
                    None,
                    None,
                );
            }
            Ok(0) => {
                return (
                    not_for_this_function(msg!(
                        f.quiet,
                        "`{symbol}` is not in available_filter_functions: the kernel refuses \
                         kprobes on notrace functions (EINVAL, \"Could not probe notrace \
                         function\") unless built with CONFIG_KPROBE_EVENTS_ON_NOTRACE"
                    )),
                    None,
                    None,
                );
            }
            Ok(_) => {}
        }
    }
    match f.blacklist {
        Ok(b) if b.contains(symbol, at.addr) => (
            not_for_this_function(msg!(
                f.quiet,
                "`{symbol}` is on the kprobe blacklist (noinstr, entry code or \
                 NOKPROBE_SYMBOL)"
            )),
            None,
            None,
        ),
        Err(e) => (
            unknown(msg!(
                f.quiet,
                "{how}, but the kprobe blacklist is not readable ({e})"
            )),
            None,
            None,
        ),
        Ok(_) => (
            Support::Supported {
                evidence: Some(ev(msg!(f.quiet, "{how}, and not on the kprobe blacklist"))),
            },
            Some(symbol),
            at.module.as_deref(),
        ),
    }
}

fn kprobe_multi<'a>(f: &Facts<'a>) -> Verdict<'a> {
    let name = f.name;
    let ft = match f.ftrace {
        Err(e) => {
            return (
                unknown(msg!(
                    f.quiet,
                    "available_filter_functions is not readable ({e}): kprobe_multi attaches \
                     through ftrace"
                )),
                None,
                None,
            );
        }
        Ok(ft) => ft,
    };
    let module = |i: &'a [Instance]| i.first().and_then(|i| i.module.as_deref());
    match (f.ftrace_count(name).unwrap_or(0), f.kallsyms) {
        (1, Ok(inst)) if inst.len() <= 1 => (
            Support::Supported {
                evidence: Some(ev(msg!(
                    f.quiet,
                    "`{name}` is in available_filter_functions"
                ))),
            },
            Some(name),
            module(inst),
        ),
        (0, _) => {
            let patchable: Vec<(&str, &[Instance])> = f
                .clones
                .iter()
                .filter(|(c, _)| ft.count(c) == 1)
                .copied()
                .collect();
            match patchable.as_slice() {
                [(clone, ci)] => (
                    Support::Supported {
                        evidence: Some(ev(msg!(
                            f.quiet,
                            "on `{clone}`, the only patchable compiler clone of `{name}`"
                        ))),
                    },
                    Some(*clone),
                    module(ci),
                ),
                [] => (
                    not_for_this_function(msg!(
                        f.quiet,
                        "neither `{name}` nor a compiler clone of it is in \
                         available_filter_functions (inlined, notrace, or not loaded)"
                    )),
                    None,
                    None,
                ),
                many => (
                    unknown(msg!(
                        f.quiet,
                        "`{name}` is not patchable, and {} of its compiler clones are ({}): \
                         pick one, or attach by address",
                        many.len(),
                        list(many)
                    )),
                    None,
                    None,
                ),
            }
        }
        (n, _) => (
            unknown(msg!(
                f.quiet,
                "{} functions named `{name}` (available_filter_functions lists it {n} times): \
                 a name resolves to one of them; attach by address (ambiguous)",
                n.max(f.kallsyms.map_or(0, <[Instance]>::len) as u32)
            )),
            None,
            None,
        ),
    }
}
