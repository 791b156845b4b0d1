//! kfuncs on the running kernel (issue 11): layer (a) from BTF against the table's
//! releases (a version oracle), module BTF read as split BTF, and layer (b) classified by
//! the verifier's real words — every answer for a kfunc the kernel has must be conclusive.
use probe::{
    AttachContext, FeatureSource, KernelRelease, ProgramType,
    kfuncs::{BTF_DIR, KfuncIndex},
    names::kfunc_table::KFUNCS,
};

fn index(test: &str) -> Option<KfuncIndex> {
    match KfuncIndex::read() {
        Ok(i) => Some(i),
        Err(e) => {
            integration::skip(test, &format!("no kernel BTF: {e}"));
            None
        }
    }
}

#[test]
fn the_kfunc_table_agrees_with_this_kernel() {
    let test = "the_kfunc_table_agrees_with_this_kernel";
    let Some(idx) = index(test) else {
        return;
    };
    let release = KernelRelease::current().unwrap();
    let f = probe::Features::new(probe::Options::default());
    let loaded: Vec<&str> = idx.modules().collect();
    let (mut checked, mut not_built) = (0, Vec::new());
    for row in KFUNCS {
        if row.module.is_some_and(|m| !loaded.contains(&m)) {
            continue;
        }
        let a = f.kernel_has_kfunc(row.name);
        if release.reached(row.since) {
            // A kfunc of a subsystem this kernel was built without (CONFIG_BPF_LSM,
            // CONFIG_KEYS, …) is not in its BTF at all, or (a kernel that tags kfuncs)
            // there untagged: not the table's error.
            match idx.find(row.name, Some(&release)) {
                probe::kfuncs::Found::Absent | probe::kfuncs::Found::NotKfunc => {
                    not_built.push(row.name)
                }
                _ => assert!(
                    a.is_supported(),
                    "{}: the table says since {}, this is {}: {a}",
                    row.name,
                    row.since,
                    release.raw
                ),
            }
        } else {
            // The oracle: a kfunc the kernel has below the table's release means the
            // table is wrong.
            assert!(
                !a.is_supported(),
                "{}: the table says since {}, yet {} has it: {a}",
                row.name,
                row.since,
                release.raw
            );
        }
        checked += 1;
    }
    eprintln!("{test}: not built into this kernel: {not_built:?}");
    let kfuncs = f.kernel_kfuncs().unwrap();
    eprintln!(
        "{test}: {} rows checked on {}; {} kfuncs ({} tagged), {} module BTF blobs",
        checked,
        release.raw,
        kfuncs.len(),
        kfuncs.iter().filter(|k| k.tagged).count(),
        loaded.len()
    );
    if !release.at_least(5, 13) {
        assert!(kfuncs.is_empty(), "kfunc calls are 5.13: {kfuncs:?}");
    }
}

#[test]
fn every_module_blob_reads_as_split_btf() {
    let test = "every_module_blob_reads_as_split_btf";
    let Some(idx) = index(test) else {
        return;
    };
    let files = std::fs::read_dir(BTF_DIR)
        .unwrap()
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name() != "vmlinux"))
        .count();
    assert_eq!(idx.modules().count(), files);
}

#[test]
fn kfunc_calls_are_classified_by_the_verifiers_words() {
    let test = "kfunc_calls_are_classified_by_the_verifiers_words";
    let Some(_) = integration::need_bpf(test) else {
        return;
    };
    let Some(_) = index(test) else {
        return;
    };
    let before = integration::bpf_objects();
    let f = probe::Features::new(probe::Options::default());
    let release = KernelRelease::current().unwrap();
    let contexts = [
        AttachContext::Default(ProgramType::SCHED_CLS),
        AttachContext::Default(ProgramType::KPROBE),
        AttachContext::Default("tracepoint".parse::<ProgramType>().unwrap()),
        AttachContext::Default(ProgramType::SOCKET_FILTER),
        AttachContext::Default("xdp".parse::<ProgramType>().unwrap()),
    ];
    let mut seen = 0;
    let all = f.kernel_kfuncs().unwrap();
    let modules = all.iter().filter(|k| k.module.is_some()).count();
    eprintln!("{test}: {modules} module kfuncs, asked through fd_array");
    for k in &all {
        for ctx in contexts {
            let a = f.kfunc(ctx, &k.name);
            assert!(
                !a.support.is_unknown(),
                "{} in {}: the verifier's words were not understood: {a}",
                k.name,
                ctx.name()
            );
            seen += 1;
        }
    }
    // The generic kfuncs (kernel/bpf/helpers.c) are registered for tc from 6.2.
    if release.at_least(6, 2) {
        let a = f.kfunc(
            AttachContext::Default(ProgramType::SCHED_CLS),
            "bpf_task_from_pid",
        );
        assert!(a.is_supported(), "{a}");
    }
    eprintln!(
        "{test}: {seen} kfunc answers on {}, all conclusive",
        release.raw
    );
    assert!(integration::bpf_objects_left(&before).is_empty());
}

/// fentry.s and lsm.s (5.10): what may sleep is refused in the plain context and callable in
/// the sleepable one — the helper `bpf_copy_from_user` (5.10) and, where the kernel has it,
/// the kfunc `bpf_copy_from_user_str` (6.12). Runs where the sleepable context loads.
#[test]
fn sleepable_contexts_take_what_may_sleep() {
    let test = "sleepable_contexts_take_what_may_sleep";
    let Some(_) = integration::need_bpf(test) else {
        return;
    };
    let before = integration::bpf_objects();
    let f = probe::Features::new(probe::Options::default());
    let copy: probe::Helper = "bpf_copy_from_user".parse().unwrap();
    let has_str = f.kernel_has_kfunc("bpf_copy_from_user_str").is_supported();
    let mut checked = 0;
    for (plain, base) in [
        (
            AttachContext::FENTRY_KERNEL_FN,
            probe::Misc::FentrySleepable,
        ),
        (
            AttachContext::Default(ProgramType::LSM),
            probe::Misc::LsmSleepable,
        ),
    ] {
        let sleepable = plain.sleepable().unwrap();
        let loads = f.misc(base);
        if !loads.is_supported() {
            integration::skip(
                &format!("{test} ({})", sleepable.name()),
                &format!("{} does not load here: {loads}", sleepable.name()),
            );
            continue;
        }
        // What may sleep: refused in the plain context, callable in the sleepable one.
        let refused_then_callable = |name: &str, p: probe::Answer, s: probe::Answer| {
            assert!(s.is_supported(), "{name} in {}: {s}", sleepable.name());
            assert!(
                p.support.is_unsupported(),
                "{name} in {}: {p}",
                plain.name()
            );
            p
        };
        refused_then_callable(
            copy.name(),
            f.helper(plain, copy),
            f.helper(sleepable, copy),
        );
        if has_str {
            let name = "bpf_copy_from_user_str";
            let p = refused_then_callable(name, f.kfunc(plain, name), f.kfunc(sleepable, name));
            assert!(p.to_string().contains("sleepable"), "{p}");
        }
        checked += 1;
    }
    eprintln!("{test}: {checked} sleepable contexts checked");
    assert!(integration::bpf_objects_left(&before).is_empty());
}
