use super::*;

fn err(errno: i32, log: &str) -> LoadError {
    LoadError {
        errno: Errno(errno),
        log: log.to_string(),
    }
}

#[test]
fn helper_past_the_kernels_last_id_is_unsupported_by_the_kernel() {
    let e = err(
        libc::EINVAL,
        "0: R1=ctx() R10=fp0\n0: (85) call unknown#173\ninvalid func unknown#173\n",
    );
    match classify_helper_load(Err(&e), "p", 173) {
        Support::Unsupported { scope, evidence } => {
            assert_eq!(scope, Scope::Kernel);
            assert_eq!(
                evidence.verifier_line.as_deref(),
                Some("invalid func unknown#173")
            );
            assert_eq!(evidence.errno_name.as_deref(), Some("EINVAL"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn helper_unknown_to_the_type_is_unsupported_for_the_type() {
    let e = err(
        libc::EINVAL,
        "0: (85) call bpf_get_current_pid_tgid#14\nunknown func bpf_get_current_pid_tgid#14\n",
    );
    let s = classify_helper_load(Err(&e), "p", 14);
    assert!(
        matches!(
            s,
            Support::Unsupported {
                scope: Scope::ProgramType,
                ..
            }
        ),
        "{s:?}"
    );
    assert!(
        s.to_string()
            .contains("unknown func bpf_get_current_pid_tgid#14")
    );
}

#[test]
fn pwru_bug_context_refusal_is_context_scoped() {
    // 5.15-5.17: fentry on a BPF program was verified as the target's type.
    let e = err(
        ENOTSUPP,
        "0: (85) call bpf_get_func_ip#173\nfunc bpf_get_func_ip#173 not supported for program type 3\n",
    );
    let s = classify_helper_load(Err(&e), "p", 173);
    match &s {
        Support::Unsupported { scope, evidence } => {
            assert_eq!(*scope, Scope::Context);
            assert_eq!(
                evidence.verifier_line.as_deref(),
                Some("func bpf_get_func_ip#173 not supported for program type 3")
            );
            assert_eq!(evidence.errno_name.as_deref(), Some("ENOTSUPP"));
        }
        other => panic!("{other:?}"),
    }
    let e = err(
        libc::EINVAL,
        "func bpf_get_func_ip#173 supported only for fentry/fexit/fmod_ret programs\n",
    );
    assert!(matches!(
        classify_helper_load(Err(&e), "p", 173),
        Support::Unsupported {
            scope: Scope::Context,
            ..
        }
    ));
}

#[test]
fn eacces_and_success_mean_callable() {
    assert!(classify_helper_load(Ok(()), "p", 1).is_supported());
    let e = err(
        libc::EACCES,
        "0: (85) call bpf_map_lookup_elem#1\nR1 type=ctx expected=map_ptr\n",
    );
    match classify_helper_load(Err(&e), "p", 173) {
        Support::Supported { evidence: Some(ev) } => {
            assert_eq!(
                ev.verifier_line.as_deref(),
                Some("R1 type=ctx expected=map_ptr")
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn eperm_is_never_unsupported() {
    // This very machine: fentry refused with EPERM and an empty log.
    let e = err(libc::EPERM, "");
    for s in [
        classify_helper_load(Err(&e), "p", 173),
        classify_prog_load(Err(&e), "p"),
        classify_errno(Err(Errno(libc::EPERM)), "p"),
    ] {
        assert!(s.is_unknown(), "{s:?}");
        assert!(s.to_string().contains("EPERM"));
        assert!(s.to_string().contains("not the same as unsupported"));
    }
}

#[test]
fn other_einval_is_not_claimed_as_unsupported() {
    let e = err(libc::EINVAL, "R0 !read_ok\n");
    assert!(classify_helper_load(Err(&e), "p", 173).is_unknown());
}

#[test]
fn program_and_map_errnos() {
    assert!(classify_prog_load(Err(&err(libc::EINVAL, "")), "p").is_unsupported());
    assert!(classify_prog_load(Err(&err(libc::E2BIG, "")), "p").is_unsupported());
    assert!(classify_prog_load(Err(&err(libc::ENOMEM, "")), "p").is_unknown());
    assert!(classify_errno(Err(Errno(libc::EINVAL)), "p").is_unsupported());
    assert!(classify_errno(Ok(()), "p").is_supported());
}

#[test]
fn deciding_line_skips_statistics() {
    let log = "0: (b7) r0 = 0\nsome error here\nprocessed 2 insns (limit 1000000)\n";
    assert_eq!(deciding_line(log, &[]).as_deref(), Some("some error here"));
    assert_eq!(deciding_line("", &[]), None);
}

#[test]
fn answers_serialise_flat_and_round_trip() {
    let a = Answer::probed(Support::Unsupported {
        scope: Scope::Kernel,
        evidence: Evidence::probe("x").with_errno(Errno(libc::EINVAL)),
    });
    let j = serde_json::to_value(&a).unwrap();
    assert_eq!(j["status"], "unsupported");
    assert_eq!(j["origin"], "probed");
    assert_eq!(j["evidence"]["errno"], libc::EINVAL);
    let back: Answer = serde_json::from_value(j).unwrap();
    assert_eq!(back, a);
    assert!(a.cacheable());
    assert!(!Answer::probed(Support::unknown("x", None)).cacheable());
}

#[test]
fn a_type_probe_refused_after_the_verifier_ran_is_unknown() {
    // The verifier wrote a log, so it knows the type: a refused setup is no "not supported".
    let e = err(libc::EINVAL, "attach_btf_id 0 is not a supported struct\n");
    let s = classify_type_load(Err(&e), "p");
    assert!(
        s.is_unknown() && s.to_string().contains("refused the probe's setup"),
        "{s}"
    );
    // No log: the kernel does not know the type.
    assert!(classify_type_load(Err(&err(libc::EINVAL, "")), "p").is_unsupported());
    assert!(classify_type_load(Ok(()), "p").is_supported());
    // A feature probe's refusal with a log is the answer.
    assert!(classify_prog_load(Err(&e), "p").is_unsupported());
}
