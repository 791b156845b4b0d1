//! How a kfunc-calling probe's load becomes an answer. For kfuncs the errno says little
//! (EACCES is the *refusal* here, where for helpers it is the acceptance): the verifier's
//! words decide, and a "not supported" must name the kfunc.
use super::{Evidence, Scope, Support, deciding_line, not_permitted};
use crate::sys::{ENOTSUPP, LoadError};

/// Lines that mean the kernel cannot call kfuncs, or this one, at all (`add_kfunc_call`,
/// `fetch_kfunc_meta`; before 5.13 `BPF_CALL uses reserved fields` for `src_reg = 2`).
const KERNEL_REFUSALS: &[&str] = &[
    "calling kernel function is not supported without CONFIG_DEBUG_INFO_BTF",
    "JIT does not support calling kernel function",
    "is not a function",
    "failed to find BTF for kernel function",
    "BPF_CALL uses reserved fields",
    "kernel function calls are not supported",
];

/// Classifies the load of `call <kfunc>; r0 = 0; exit`. `refused_scope` is what a
/// registration refusal means in this context (the program type, or the attach context).
pub fn classify_kfunc_load(
    result: Result<(), &LoadError>,
    probe: &str,
    name: &str,
    refused_scope: Scope,
) -> Support {
    let Err(err) = result else {
        return Support::supported();
    };
    let log = &err.log;
    let line = |pat: &str| {
        log.lines()
            .map(str::trim)
            .find(|l| l.contains(pat))
            .map(str::to_string)
    };
    let ev = |l: Option<String>| Evidence::probe(probe).with_errno(err.errno).with_line(l);
    if let Some(l) = line(&format!("calling kernel function {name} is not allowed")) {
        return Support::Unsupported {
            scope: refused_scope,
            evidence: ev(Some(l)),
        };
    }
    // 7.x (KF_IMPLICIT_ARGS): the `_impl` twin of a kfunc with implicit arguments stays in
    // BTF as a declaration, with nothing to call ("cannot find address for kernel function
    // X"): this kernel does not let programs call it, under that name, anywhere.
    let own_address_line = log.lines().map(str::trim).find(|l| {
        l.strip_prefix("cannot find address for kernel function ")
            .is_some_and(|n| n == name)
    });
    if let Some(l) = own_address_line.map(str::to_string) {
        return Support::Unsupported {
            scope: Scope::Kernel,
            evidence: ev(Some(l)).with_detail(
                "declared in BTF, with no function to call (an `_impl` name the kernel \
                 replaced by its implicit-argument form)",
            ),
        };
    }
    if let Some(l) = line(&format!("to call sleepable kfunc {name}")) {
        return Support::Unsupported {
            scope: Scope::Context,
            evidence: ev(Some(l)).with_detail("callable only from sleepable programs"),
        };
    }
    // `__bpf_trap` is the call clang emits for an uninitialized variable (6.16): the
    // verifier refuses every call of it, in every program.
    if let Some(l) = line("unexpected __bpf_trap()") {
        return Support::Unsupported {
            scope: Scope::ProgramType,
            evidence: ev(Some(l)).with_detail("the compiler's trap, never callable"),
        };
    }
    // XDP metadata kfuncs (6.3) are checked before the hook: only a program bound to a
    // device (`prog_ifindex`) may call them.
    if let Some(l) = line("metadata kfuncs require device-bound program") {
        return Support::Unsupported {
            scope: Scope::Context,
            evidence: ev(Some(l)).with_detail("only device-bound XDP programs may call it"),
        };
    }
    if let Some(l) = line("destructive kfunc calls require CAP_SYS_BOOT") {
        return Support::unknown(
            "a destructive kfunc needs CAP_SYS_BOOT to be loaded; run with it to probe",
            Some(ev(Some(l))),
        );
    }
    if let Some(l) = line("JIT is required for calling kernel function") {
        return Support::unknown(
            "kfunc calls need the JIT, and it is off (net.core.bpf_jit_enable=0; set it to 1)",
            Some(ev(Some(l))),
        );
    }
    if let Some(l) = KERNEL_REFUSALS.iter().find_map(|p| line(p)) {
        return Support::Unsupported {
            scope: Scope::Kernel,
            evidence: ev(Some(l)),
        };
    }
    // The verifier walked to our call, the program's first instruction: its trace names
    // it (`call <name>#<id>`); its statistics count it (`processed 1 insns`; 0 when it
    // refused the program before the walk, where kfunc calls are resolved), and then no
    // refusal of a kfunc may name another.
    let refuses_a_kfunc = ["calling kernel function ", "to call sleepable kfunc "]
        .iter()
        .any(|p| log.contains(p));
    let reached_call = log.contains(&format!("call {name}#"))
        || (!refuses_a_kfunc && super::processed_insns(log).is_some_and(|n| n >= 1));
    match err.errno.0 {
        // The verifier reached our call and refused something the refusals above do not
        // name: the probe's unset arguments, or a reference it did not release.
        libc::EACCES | libc::EINVAL | ENOTSUPP if reached_call => Support::Supported {
            evidence: Some(ev(deciding_line(log, &[])).with_detail(
                "kfunc call accepted; only the probe's unset arguments or unreleased \
                         reference were rejected",
            )),
        },
        libc::EACCES | libc::EINVAL | ENOTSUPP => Support::unknown(
            "the verifier refused the probe without naming this kfunc",
            Some(ev(deciding_line(log, &[]))),
        ),
        _ => Support::unknown(not_permitted(err.errno), Some(ev(deciding_line(log, &[])))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Errno;

    fn err(errno: i32, log: &str) -> LoadError {
        LoadError {
            errno: Errno(errno),
            log: log.into(),
        }
    }

    fn classify(e: &LoadError, name: &str) -> Support {
        classify_kfunc_load(Err(e), "p", name, Scope::ProgramType)
    }

    // Verifier lines as 6.1, 6.12 and 6.18 print them (kernel/bpf/verifier.c).
    #[test]
    fn registration_refusal_names_the_kfunc() {
        let e = err(
            libc::EACCES,
            "0: R1=ctx() R10=fp0\n0: (85) call bpf_task_from_pid#74938\ncalling kernel function bpf_task_from_pid is not allowed\nprocessed 1 insns",
        );
        let s = classify(&e, "bpf_task_from_pid");
        assert!(
            matches!(&s, Support::Unsupported { scope: Scope::ProgramType, evidence } if evidence.verifier_line.as_deref() == Some("calling kernel function bpf_task_from_pid is not allowed")),
            "{s}"
        );
        // The same line about another kfunc decides nothing about ours.
        assert!(classify(&e, "bpf_task_acquire").is_unknown());
    }

    // Debian's 7.2 (sid), verbatim: an `_impl` kfunc replaced by implicit arguments.
    #[test]
    fn a_declared_kfunc_without_an_address_is_not_callable_on_this_kernel() {
        let e = err(
            libc::EINVAL,
            "cannot find address for kernel function bpf_wq_set_callback_impl\n",
        );
        let s = classify(&e, "bpf_wq_set_callback_impl");
        assert!(
            matches!(
                &s,
                Support::Unsupported {
                    scope: Scope::Kernel,
                    ..
                }
            ),
            "{s}"
        );
        assert!(classify(&e, "bpf_wq_set_callback").is_unknown());
    }

    #[test]
    fn argument_errors_after_the_call_mean_supported() {
        for line in [
            "R1 !read_ok",
            "arg#0 pointer type STRUCT task_struct must point to scalar, or struct with scalar",
            "Unreleased reference id=2 alloc_insn=0",
            "arg#0 expected pointer to an iterator on stack",
        ] {
            let e = err(
                libc::EACCES,
                &format!("0: (85) call bpf_task_acquire#12345\n{line}\n"),
            );
            assert!(classify(&e, "bpf_task_acquire").is_supported(), "{line}");
        }
    }

    // The statistics-only log probes load with (`BPF_LOG_STATS`), verbatim from 6.18.
    #[test]
    fn statistics_logs_without_the_trace() {
        let stats = "verification time 49 usec\nstack depth 0\nprocessed 1 insns (limit 1000000) \
                     max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";
        let accepted = err(
            libc::EINVAL,
            &format!(
                "arg#0 pointer type STRUCT cgroup must point to scalar, or struct with scalar\n{stats}"
            ),
        );
        let s = classify(&accepted, "bpf_cgroup_acquire");
        assert!(
            matches!(&s, Support::Supported { evidence: Some(e) } if e.verifier_line.as_deref().is_some_and(|l| l.starts_with("arg#0"))),
            "{s}"
        );
        let refused = err(
            libc::EACCES,
            &format!("calling kernel function bpf_cgroup_acquire is not allowed\n{stats}"),
        );
        assert!(classify(&refused, "bpf_cgroup_acquire").is_unsupported());
        // A refusal naming another kfunc, or one before the walk, proves nothing of ours.
        assert!(classify(&refused, "bpf_task_acquire").is_unknown());
        let before_walk = err(
            libc::EINVAL,
            "some refusal before the walk\nprocessed 0 insns (limit 1000000)\n",
        );
        assert!(classify(&before_walk, "bpf_cgroup_acquire").is_unknown());
    }

    #[test]
    fn kernel_scope_and_policy() {
        let old = err(libc::EINVAL, "BPF_CALL uses reserved fields\n");
        assert!(matches!(
            classify(&old, "bpf_x"),
            Support::Unsupported {
                scope: Scope::Kernel,
                ..
            }
        ));
        let not_func = err(libc::EINVAL, "kernel btf_id 42 is not a function\n");
        assert!(classify(&not_func, "bpf_x").is_unsupported());
        let sleep = err(
            libc::EACCES,
            "0: (85) call bpf_copy_from_user_str#1\nprogram must be sleepable to call sleepable kfunc bpf_copy_from_user_str\n",
        );
        assert!(matches!(
            classify(&sleep, "bpf_copy_from_user_str"),
            Support::Unsupported {
                scope: Scope::Context,
                ..
            }
        ));
        let jit = err(ENOTSUPP, "JIT is required for calling kernel function\n");
        assert!(classify(&jit, "bpf_x").is_unknown());
        let boot = err(
            libc::EACCES,
            "0: (85) call bpf_crash_kexec#1\ndestructive kfunc calls require CAP_SYS_BOOT capability\n",
        );
        assert!(classify(&boot, "bpf_crash_kexec").is_unknown());
        assert!(classify(&err(libc::EPERM, ""), "bpf_x").is_unknown());
        assert!(classify(&err(libc::EINVAL, ""), "bpf_x").is_unknown());
    }
}
