//! What every probe family shares: the setup a program type needs to load, the fixtures
//! some setups need (a BPF program to attach to), and the one load-and-classify function
//! every family uses.
// A setup that cannot be built returns the answer it implies (with its evidence) as the
// error; boxing it would only move the allocation.
#![allow(clippy::result_large_err)]

use std::{
    cell::RefCell,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    sync::OnceLock,
};

use aya_obj::generated::{bpf_attach_type, bpf_func_info, bpf_insn};

use crate::{
    btf::{BtfBuilder, KernelBtf},
    insn,
    kernel::KernelRelease,
    names::{AttachContext, ProgramType},
    support::{Evidence, Support, classify_prog_load},
    sys::{self, LoadError, LogLevel, ProgLoad},
};

/// Verifier log size: enough for the few lines a tiny probe produces.
const LOG_SIZE: usize = 64 * 1024;

thread_local! {
    // One reusable log buffer per probing thread.
    static LOG: RefCell<Vec<u8>> = RefCell::new(vec![0; LOG_SIZE]);
}

/// A BPF program with BTF (returning 0, its function named `probe_target`) that
/// fentry-on-a-program and `ext` probes attach to: a `sched_cls`, or a `kprobe`.
pub struct TargetProg {
    /// The loaded program: the `attach_prog_fd` of probes that attach to it.
    pub fd: OwnedFd,
    /// The BTF id of `probe_target` in the program's own BTF.
    pub func_btf_id: u32,
    _btf: OwnedFd,
}

/// The BTF both the target and `ext` probes use: `int probe_target(struct <ctx> *ctx)`, the
/// context struct being the target type's (`__sk_buff`, `pt_regs`).
fn target_btf(ctx: &str) -> (Vec<u8>, u32) {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4);
    let skb = b.struct_(ctx, 0, &[]);
    let ptr = b.ptr(skb);
    let proto = b.func_proto(int, &[("ctx", ptr)]);
    let func = b.func("probe_target", proto);
    (b.build(), func)
}

/// A loaded BTF blob and the `func_info` that ties instruction 0 to its function.
fn load_func_btf(ctx: &str) -> Result<(OwnedFd, [bpf_func_info; 1], u32), Support> {
    let (blob, func) = target_btf(ctx);
    let fd = sys::btf_load(&blob, None).map_err(|e| {
        let ev = Evidence::probe("BPF_BTF_LOAD of a one-function BTF").with_errno(e.errno);
        match e.errno.0 {
            libc::EINVAL | libc::E2BIG => Support::Unsupported {
                scope: crate::support::Scope::Kernel,
                evidence: ev.with_detail("the kernel cannot load BTF (4.18)"),
            },
            _ => Support::unknown(
                format!("could not load the BTF a probe needs ({})", e.errno),
                Some(ev),
            ),
        }
    })?;
    Ok((
        fd,
        [bpf_func_info {
            insn_off: 0,
            type_id: func,
        }],
        func,
    ))
}

/// Objects probes share within one probing run. Each is created on first need and freed
/// when the run ends, so nothing stays loaded.
#[derive(Default)]
pub struct Fixtures {
    target: OnceLock<Result<TargetProg, Support>>,
    kprobe_target: OnceLock<Result<TargetProg, Support>>,
    sleepable_fentry_target: OnceLock<Result<(u32, &'static str), Support>>,
}

impl Fixtures {
    /// The shared tc target program, loaded once per run.
    pub fn target(&self) -> Result<&TargetProg, Support> {
        self.target
            .get_or_init(|| load_target(ProgramType::SCHED_CLS, "__sk_buff", 0))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The shared kprobe target program, loaded once per run (`kern_version` for kernels
    /// before 5.0, which check it).
    pub fn kprobe_target(&self, kern_version: u32) -> Result<&TargetProg, Support> {
        self.kprobe_target
            .get_or_init(|| load_target(ProgramType::KPROBE, "pt_regs", kern_version))
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn load_target(t: ProgramType, ctx: &str, kern_version: u32) -> Result<TargetProg, Support> {
    let (btf, func_info, func_btf_id) = load_func_btf(ctx)?;
    let insns = insn::return_zero();
    let mut load = ProgLoad::new(t.0, &insns);
    load.prog_btf_fd = Some(btf.as_fd());
    load.func_info = &func_info;
    load.name = "probe_target";
    load.kern_version = kern_version;
    let what = format!("BPF_PROG_LOAD {t} with BTF");
    let fd = match load_and_classify(&load, &what, &classify_prog_load) {
        (_, Some(fd)) => fd,
        (s, None) => {
            let evidence = match s {
                Support::Unsupported { evidence, .. } => Some(evidence),
                Support::Unknown { evidence, .. } => evidence,
                Support::Supported { .. } => None,
            };
            return Err(Support::unknown(
                "could not load the BPF program that fentry/ext probes attach to",
                evidence,
            ));
        }
    };
    Ok(TargetProg {
        fd,
        func_btf_id,
        _btf: btf,
    })
}

/// Runs `f` with this thread's reusable verifier-log buffer.
pub fn with_log<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    LOG.with(|buf| f(&mut buf.borrow_mut()))
}

/// How a probe family turns a load's result into an answer (see [`crate::support`]).
pub type Classifier<'a> = &'a dyn Fn(Result<(), &LoadError>, &str) -> Support;

/// The one load of every probe family: `load` with this thread's verifier-log buffer in the
/// same load, at the statistics level (the refusal without the instruction trace: a log
/// then costs the kernel ~1 µs of a ~30 µs load, while a second load for a negative's
/// evidence would cost a whole load; see the bench), classified by `classify`. Returns the
/// answer and, when it loaded, the program (a link probe attaches it).
pub fn load_and_classify(
    load: &ProgLoad<'_>,
    what: &str,
    classify: Classifier<'_>,
) -> (Support, Option<OwnedFd>) {
    // The verifier's refusal is the answer; its instruction trace is not read.
    let load = &ProgLoad {
        log_level: LogLevel::Stats,
        ..*load
    };
    with_log(|log| match sys::prog_load(load, Some(log)) {
        Ok(fd) => (classify(Ok(()), what), Some(fd)),
        // The log outgrew its buffer (a large probe program): the verifier's answer is the
        // same without a log, so ask again without one.
        Err(e) if e.errno.0 == libc::ENOSPC => match sys::prog_load(load, None) {
            Ok(fd) => (classify(Ok(()), what), Some(fd)),
            Err(e) => (classify(Err(&e), what), None),
        },
        Err(e) => (classify(Err(&e), what), None),
    })
}

/// How one program type (in one attach context) is set up to load.
pub struct LoadSetup<'a> {
    /// The type loaded (a context's, see [`AttachContext::prog_type`]).
    pub prog_type: ProgramType,
    /// The attach type the verifier checks the program against; 0 when the type has none.
    pub expected_attach_type: u32,
    /// The BTF function attached to (tracing, lsm, ext), in vmlinux or `attach_prog`'s BTF.
    pub attach_btf_id: u32,
    /// The BPF program attached to: fentry on a program, and ext.
    pub attach_prog: Option<BorrowedFd<'a>>,
    /// ext programs need BTF of their own.
    pub prog_btf: Option<(OwnedFd, [bpf_func_info; 1])>,
    /// `LINUX_VERSION_CODE` for kprobes, which kernels before 5.0 check.
    pub kern_version: u32,
    /// `BPF_F_SLEEPABLE` for syscall programs, which must be sleepable, and for the
    /// sleepable contexts.
    pub prog_flags: u32,
    /// What the setup is, for evidence: `tracing (fentry on bpf_fentry_test1)`.
    pub desc: String,
}

impl<'a> LoadSetup<'a> {
    /// The type alone: no attach type, target, BTF or flags.
    pub fn plain(t: ProgramType) -> Self {
        LoadSetup {
            prog_type: t,
            expected_attach_type: 0,
            attach_btf_id: 0,
            attach_prog: None,
            prog_btf: None,
            kern_version: 0,
            prog_flags: 0,
            desc: t.name().to_string(),
        }
    }

    fn attach(mut self, a: bpf_attach_type) -> Self {
        self.expected_attach_type = a as u32;
        self
    }

    /// A `ProgLoad` for `insns` with this setup.
    pub fn load<'b>(&'b self, insns: &'b [bpf_insn]) -> ProgLoad<'b> {
        let mut l = ProgLoad::new(self.prog_type.0, insns);
        l.expected_attach_type = self.expected_attach_type;
        l.attach_btf_id = self.attach_btf_id;
        l.attach_prog_fd = self.attach_prog;
        l.kern_version = self.kern_version;
        l.prog_flags = self.prog_flags;
        if let Some((btf, fi)) = &self.prog_btf {
            l.prog_btf_fd = Some(btf.as_fd());
            l.func_info = fi;
        }
        l
    }
}

/// Everything a probe needs to know about the kernel, and the shared fixtures.
pub struct Prober<'a> {
    /// The kernel's BTF, where attach targets are looked up; `None` without it.
    pub btf: Option<&'a KernelBtf>,
    /// The running release, for kprobes' `kern_version`; `None` when it does not parse.
    pub release: Option<&'a KernelRelease>,
    /// The run's shared target programs.
    pub fixtures: &'a Fixtures,
}

/// Kernel functions a sleepable fentry program may attach to, best first:
/// `bpf_fentry_test1` is in the fmod_ret set with `KF_SLEEPABLE` from 6.2; before, only
/// functions in the error-injection list may (syscalls, with CONFIG_FUNCTION_ERROR_INJECTION,
/// which Debian's kernels lack), as the kernel's selftests attach `fentry.s`.
const SLEEPABLE_FENTRY_TARGETS: &[&str] = &[
    "bpf_fentry_test1",
    "__x64_sys_getpgid",
    "__arm64_sys_getpgid",
    "__s390x_sys_getpgid",
    "__riscv_sys_getpgid",
];

fn vmlinux_func<'b>(btf: Option<&KernelBtf>, names: &[&'b str]) -> Result<(u32, &'b str), Support> {
    let Some(btf) = btf else {
        return Err(Support::unknown(
            "this program type attaches by BTF id, and the kernel exposes no BTF \
             (/sys/kernel/btf/vmlinux)",
            None,
        ));
    };
    names
        .iter()
        .find_map(|n| btf.func_id(n).map(|id| (id, *n)))
        .ok_or_else(|| {
            Support::unknown(
                format!("none of {names:?} is in the kernel's BTF to attach to"),
                None,
            )
        })
}

impl<'a> Prober<'a> {
    /// The first of [`SLEEPABLE_FENTRY_TARGETS`] in BTF that the verifier does not call
    /// "not sleepable", found once per run by loading `r0 = 0; exit` on each. A refusal
    /// for any other reason (EPERM) ends the search there: the context's own probes meet
    /// it and say so. When every one is "not sleepable", the first stands, and the
    /// context's probes carry that refusal.
    fn sleepable_fentry_target(&self) -> Result<(u32, &'static str), Support> {
        self.fixtures
            .sleepable_fentry_target
            .get_or_init(|| {
                let candidates: Vec<(u32, &'static str)> = SLEEPABLE_FENTRY_TARGETS
                    .iter()
                    .filter_map(|n| vmlinux_func(self.btf, &[n]).ok())
                    .collect();
                let first = match candidates.first() {
                    Some(c) => *c,
                    None => return vmlinux_func(self.btf, SLEEPABLE_FENTRY_TARGETS),
                };
                let insns = insn::return_zero();
                for (id, name) in &candidates {
                    let mut l = ProgLoad::new(ProgramType::TRACING.0, &insns);
                    l.expected_attach_type = bpf_attach_type::BPF_TRACE_FENTRY as u32;
                    l.attach_btf_id = *id;
                    l.prog_flags = aya_obj::generated::BPF_F_SLEEPABLE;
                    match with_log(|log| sys::prog_load(&l, Some(log))) {
                        Ok(_) => return Ok((*id, *name)),
                        Err(e) if e.log.contains(&format!("{name} is not sleepable")) => {}
                        Err(_) => return Ok((*id, *name)),
                    }
                }
                Ok(first)
            })
            .clone()
    }

    /// The setup for a program type in an attach context (libbpf's `probe_prog_load`
    /// choices, plus BTF targets for the types that need one).
    pub fn setup(&self, ctx: AttachContext) -> Result<LoadSetup<'a>, Support> {
        use aya_obj::generated::bpf_prog_type::*;
        let t = ctx.prog_type();
        let s = LoadSetup::plain(t);
        Ok(match ctx {
            AttachContext::KprobeMulti => {
                let mut s = s.attach(bpf_attach_type::BPF_TRACE_KPROBE_MULTI);
                s.desc = "kprobe (kprobe_multi)".into();
                s
            }
            AttachContext::FexitKernelFn => {
                let (id, name) = vmlinux_func(self.btf, &["bpf_fentry_test1"])?;
                let mut s = s.attach(bpf_attach_type::BPF_TRACE_FEXIT);
                s.attach_btf_id = id;
                s.desc = format!("tracing (fexit on {name})");
                s
            }
            AttachContext::FentryKprobeProg => {
                let kern_version = self.release.map_or(0, KernelRelease::version_code);
                let target = self.fixtures.kprobe_target(kern_version)?;
                let mut s = s.attach(bpf_attach_type::BPF_TRACE_FENTRY);
                s.attach_btf_id = target.func_btf_id;
                s.attach_prog = Some(target.fd.as_fd());
                s.desc = "tracing (fentry on a kprobe BPF program, attach_prog_fd)".into();
                s
            }
            AttachContext::FentrySleepable => {
                let (id, name) = self.sleepable_fentry_target()?;
                let mut s = s.attach(bpf_attach_type::BPF_TRACE_FENTRY);
                s.attach_btf_id = id;
                s.prog_flags = aya_obj::generated::BPF_F_SLEEPABLE;
                s.desc = format!("tracing (sleepable fentry on {name})");
                s
            }
            AttachContext::LsmSleepable => {
                let (id, name) = vmlinux_func(self.btf, &["bpf_lsm_bprm_committed_creds"])?;
                let mut s = s.attach(bpf_attach_type::BPF_LSM_MAC);
                s.attach_btf_id = id;
                s.prog_flags = aya_obj::generated::BPF_F_SLEEPABLE;
                s.desc = format!("lsm (sleepable, on {name})");
                s
            }
            AttachContext::FentryBpfProg => {
                let target = self.fixtures.target()?;
                let mut s = s.attach(bpf_attach_type::BPF_TRACE_FENTRY);
                s.attach_btf_id = target.func_btf_id;
                s.attach_prog = Some(target.fd.as_fd());
                s.desc = "tracing (fentry on a BPF program, attach_prog_fd)".into();
                s
            }
            AttachContext::Default(t) => match t.0 {
                x if x == BPF_PROG_TYPE_KPROBE as u32 => {
                    let mut s = s;
                    s.kern_version = self.release.map_or(0, KernelRelease::version_code);
                    s
                }
                x if x == BPF_PROG_TYPE_CGROUP_SOCK_ADDR as u32 => {
                    s.attach(bpf_attach_type::BPF_CGROUP_INET4_CONNECT)
                }
                x if x == BPF_PROG_TYPE_CGROUP_SOCKOPT as u32 => {
                    s.attach(bpf_attach_type::BPF_CGROUP_GETSOCKOPT)
                }
                x if x == BPF_PROG_TYPE_SK_LOOKUP as u32 => {
                    s.attach(bpf_attach_type::BPF_SK_LOOKUP)
                }
                x if x == BPF_PROG_TYPE_NETFILTER as u32 => {
                    s.attach(bpf_attach_type::BPF_NETFILTER)
                }
                // "Syscall programs can only be sleepable" (5.14).
                x if x == BPF_PROG_TYPE_SYSCALL as u32 => {
                    let mut s = s;
                    s.prog_flags = aya_obj::generated::BPF_F_SLEEPABLE;
                    s.desc = "syscall (sleepable)".into();
                    s
                }
                x if x == BPF_PROG_TYPE_TRACING as u32 => {
                    let (id, name) = vmlinux_func(self.btf, &["bpf_fentry_test1"])?;
                    let mut s = s.attach(bpf_attach_type::BPF_TRACE_FENTRY);
                    s.attach_btf_id = id;
                    s.desc = format!("tracing (fentry on {name})");
                    s
                }
                x if x == BPF_PROG_TYPE_LSM as u32 => {
                    let (id, name) = vmlinux_func(self.btf, &["bpf_lsm_bpf", "bpf_lsm_file_open"])?;
                    let mut s = s.attach(bpf_attach_type::BPF_LSM_MAC);
                    s.attach_btf_id = id;
                    s.desc = format!("lsm (on {name})");
                    s
                }
                x if x == BPF_PROG_TYPE_EXT as u32 => {
                    let target = self.fixtures.target()?;
                    let (btf, fi, _) = load_func_btf("__sk_buff")?;
                    let mut s = s;
                    s.attach_btf_id = target.func_btf_id;
                    s.attach_prog = Some(target.fd.as_fd());
                    s.prog_btf = Some((btf, fi));
                    s.desc = "ext (replacing a function of a BPF program)".into();
                    s
                }
                _ => s,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{Errno, fake};

    #[test]
    fn every_target_a_setup_names_is_kept_from_btf() {
        for n in SLEEPABLE_FENTRY_TARGETS.iter().chain(&[
            "bpf_lsm_bprm_committed_creds",
            "bpf_lsm_bpf",
            "bpf_fentry_test1",
        ]) {
            assert!(crate::btf::WANTED_FUNCS.contains(n), "{n}");
        }
    }

    #[test]
    fn a_log_that_outgrows_its_buffer_does_not_decide_the_answer() {
        // Found in the restructuring: a 4097-instruction probe's log overflows the buffer
        // (ENOSPC), while the same load without a log succeeds.
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = calls.clone();
        let _door = fake::replace(move |_| {
            seen.set(seen.get() + 1);
            if seen.get() == 1 {
                Err(Errno(libc::ENOSPC))
            } else {
                fake::fd()
            }
        });
        let insns = insn::return_zero();
        let load = ProgLoad::new(ProgramType::SOCKET_FILTER.0, &insns);
        let (s, fd) = load_and_classify(&load, "p", &classify_prog_load);
        assert!(s.is_supported() && fd.is_some(), "{s}");
        assert_eq!(calls.get(), 2);
    }

    type Levels = std::rc::Rc<std::cell::RefCell<Vec<u32>>>;

    /// A fake kernel answering with `answer`, and the log level of every load it saw.
    fn levels_asked(
        answer: impl Fn(&mut fake::Call<'_>) -> Result<i64, Errno> + 'static,
    ) -> (Levels, fake::Guard) {
        let levels = Levels::default();
        let seen = levels.clone();
        let door = fake::replace(move |call| {
            seen.borrow_mut().push(call.log_level());
            answer(call)
        });
        (levels, door)
    }

    /// A kernel before 5.2: log level 4 alone is EINVAL before any word; at level 1 the
    /// verifier refuses the program in words.
    fn before_5_2(call: &mut fake::Call<'_>) -> Result<i64, Errno> {
        if call.log_level() == 4 {
            return Err(Errno(libc::EINVAL));
        }
        call.write_log("unknown opcode 8d\nprocessed 1 insns\n");
        Err(Errno(libc::EINVAL))
    }

    #[test]
    fn probes_ask_for_statistics_and_fall_back_where_the_kernel_refuses_them() {
        // The first probe asks twice, every later one once.
        let (levels, _door) = levels_asked(before_5_2);
        let insns = insn::return_zero();
        let load = ProgLoad::new(ProgramType::SOCKET_FILTER.0, &insns);
        for _ in 0..2 {
            let (s, _) = load_and_classify(&load, "p", &classify_prog_load);
            assert!(s.is_unsupported(), "{s}");
        }
        assert_eq!(*levels.borrow(), [4, 1, 1]);
    }

    #[test]
    fn a_refusal_without_words_says_nothing_of_the_level() {
        // The first load is refused for privileges (EPERM, no log): the next probe still
        // finds out that this kernel (before 5.2) takes only level 1.
        let (levels, _door) = levels_asked(|call| {
            if call.prog_type() != ProgramType::SOCKET_FILTER.0 {
                return Err(Errno(libc::EPERM));
            }
            before_5_2(call)
        });
        let insns = insn::return_zero();
        let kprobe = ProgLoad::new(ProgramType::KPROBE.0, &insns);
        assert!(
            load_and_classify(&kprobe, "p", &classify_prog_load)
                .0
                .is_unknown()
        );
        let load = ProgLoad::new(ProgramType::SOCKET_FILTER.0, &insns);
        let (s, _) = load_and_classify(&load, "p", &classify_prog_load);
        assert!(s.is_unsupported(), "{s}");
        assert_eq!(*levels.borrow(), [4, 4, 1]);
    }

    #[test]
    fn an_error_before_the_verifier_is_not_taken_for_a_refused_level() {
        // An unknown program type is EINVAL before any word at every level: later probes
        // still ask for statistics.
        let (levels, _door) = levels_asked(|call| {
            if call.prog_type() == ProgramType::SOCKET_FILTER.0 {
                return fake::fd();
            }
            Err(Errno(libc::EINVAL))
        });
        let insns = insn::return_zero();
        let unknown = ProgLoad::new(999, &insns);
        assert!(
            load_and_classify(&unknown, "p", &classify_prog_load)
                .0
                .is_unsupported()
        );
        let load = ProgLoad::new(ProgramType::SOCKET_FILTER.0, &insns);
        assert!(
            load_and_classify(&load, "p", &classify_prog_load)
                .0
                .is_supported()
        );
        assert_eq!(*levels.borrow(), [4, 1, 4]);
    }
}
