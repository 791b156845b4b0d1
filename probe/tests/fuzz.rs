//! Bounded fuzzing of every parser of the probe crate (issue 8): random and mutated inputs,
//! no panic allowed, and whatever is accepted must make sense. Runs in CI within the
//! normal test run; `PROPTEST_CASES` raises the count for a longer session.
use std::io::Write;

use bpf_features_probe::{
    Report, Scope, Support,
    attach_points::{FtraceFunctions, KprobeBlacklist, TextSymbols},
    btf::{BtfBuilder, BtfProtos, KernelBtf},
    cache::{DiskCache, Identity},
    conditions, kernel, parse_assumptions,
    support::{classify_helper_load, classify_kfunc_load, classify_prog_load},
    sys::{Errno, LoadError},
};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn valid_btf() -> Vec<u8> {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4);
    let proto = b.func_proto(int, &[("ctx", int)]);
    b.func("bpf_fentry_test1", proto);
    b.enum64("bpf_func_id", "BPF_FUNC_x", 1 << 40);
    b.struct_("sk_buff", 16, &[("next", int, 0), ("len", int, 96)]);
    let var = b.var("x", int);
    b.datasec(".data", 4, &[(var, 0, 4)]);
    b.build()
}

/// A verifier line: real ones (about our kfunc `bpf_k`, another, helpers, statistics) and
/// noise.
fn verifier_line() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "calling kernel function bpf_k is not allowed",
            "calling kernel function bpf_other is not allowed",
            "program must be sleepable to call sleepable kfunc bpf_k",
            "0: (85) call bpf_k#123",
            "arg#0 pointer type STRUCT cgroup must point to scalar, or struct with scalar",
            "unknown func bpf_get_func_ip#173",
            "invalid func unknown#250",
            "cannot find address for kernel function bpf_k",
            "verification time 49 usec",
            "stack depth 0",
            "processed 0 insns (limit 1000000)",
            "processed 1 insns (limit 1000000) max_states_per_insn 0",
            "processed 99999999999999999999 insns",
        ])
        .prop_map(str::to_string),
        "\\PC{0,40}",
        "processed [0-9 ]{0,6}\\PC{0,10}",
    ]
}

/// A recorded report to mutate: the smallest one the schema accepts.
fn report_json() -> String {
    serde_json::json!({
        "schema_version": 1, "tool": "t", "system": {
            "release": null, "arch": "x86_64", "config_source": null, "config": {},
            "sysctls": {}, "lockdown": null, "btf_vmlinux": true, "tracefs": null,
            "debugfs": null, "bpffs": null, "privileges": {"euid": 0, "cap_bpf": true,
            "cap_perfmon": true, "cap_sys_admin": true, "cap_net_admin": true},
            "memlock": {"soft": null, "hard": null, "charged": false}},
        "inferred": null, "btf_error": null, "program_types": [], "map_types": [],
        "kernel_helpers": [], "helpers": [], "misc": [], "full": false, "threads": 1,
        "bpf_syscalls": 0, "seconds": 0.0
    })
    .to_string()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn btf_mutations_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut blob = valid_btf();
        for (at, byte) in flips {
            let i = at.index(blob.len());
            blob[i] = byte;
        }
        if truncate {
            blob.truncate(cut.index(blob.len()));
        }
        if let Ok(btf) = KernelBtf::parse(&blob) {
            // Accepted: the counts are within what the blob can hold.
            prop_assert!(btf.type_count as usize <= blob.len() / 12 + 1);
        }
    }

    #[test]
    fn btf_random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = KernelBtf::parse(&bytes);
        let _ = BtfProtos::from_blobs(bytes.clone(), vec![("m".into(), bytes)]);
    }

    /// The attach-point resolver's prototype reader (issue 12) on mutated BTF, and the
    /// resolver on what it accepts: no panic, whatever the answer.
    #[test]
    fn btf_protos_mutations_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut blob = valid_btf();
        for (at, byte) in flips {
            let i = at.index(blob.len());
            blob[i] = byte;
        }
        let module = blob[..cut.index(blob.len())].to_vec();
        if let Ok((protos, _)) = BtfProtos::from_blobs(blob, vec![("m".into(), module)]) {
            for f in &protos.functions {
                let _ = protos.param_types(f);
            }
        }
    }

    /// available_filter_functions, the kprobe blacklist and kallsyms text symbols: random
    /// lines, never a panic.
    #[test]
    fn attach_point_sources_never_panic(
        text in r"([0-9a-fx]{0,18}[ \t-]{0,2}[a-zA-Z_.$\[\] ]{0,30}\n?){0,20}",
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        for input in [text.as_bytes(), &bytes[..]] {
            let _ = FtraceFunctions::parse(input);
            let _ = KprobeBlacklist::parse(input);
            if let Ok(t) = TextSymbols::parse(input) {
                prop_assert!(t.len() <= input.len());
            }
        }
    }

    #[test]
    fn releases(raw in "\\PC{0,40}|[0-9]{1,12}\\.[0-9]{1,12}(\\.[0-9]{1,12})?[-+a-z0-9.]{0,12}") {
        if let Ok(r) = kernel::KernelRelease::parse(&raw) {
            prop_assert!(r.version.major <= 255 && r.version.minor <= 255, "{raw}");
            let code = r.version_code();
            prop_assert_eq!(code >> 16, r.version.major as u32);
            prop_assert_eq!((code >> 8) & 0xff, r.version.minor as u32);
        }
    }

    #[test]
    fn configs(text in "(CONFIG_[A-Z_]{1,12}=[ynm\"a-z0-9,]{0,8}\\n|# CONFIG_[A-Z]{1,8} is not set\\n|\\PC{0,30}\\n){0,20}") {
        for (k, _) in kernel::parse_config(&text) {
            prop_assert!(k.starts_with("CONFIG_"));
        }
    }

    #[test]
    fn assumptions(spec in "((prog_type|map_type|helper|misc|x)?:?[a-z_@/]{0,20}=?(yes|no|maybe)?[, ]?){0,4}|\\PC{0,60}") {
        // Either parsed, or an error that quotes the input's bad item.
        match parse_assumptions(&spec, "fuzz") {
            Ok(a) => prop_assert!(a.len() <= spec.len()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn lockdown_text(text in "\\PC{0,60}|(none|\\[none\\]) (integrity|\\[integrity\\]) (confidentiality|\\[confidentiality\\])") {
        let _ = conditions::parse_lockdown_file(&text);
        let _ = conditions::parse_cmdline(&text);
    }

    #[test]
    fn cap_status(text in "(CapEff:\\s*[0-9a-fx]{0,20}\\n|\\PC{0,30}\\n){0,4}") {
        let _ = kernel::parse_cap_eff(&text);
    }

    #[test]
    fn recorded_reports(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<char>()), 0..4),
    ) {
        let mut chars: Vec<char> = report_json().chars().collect();
        for (at, c) in flips {
            let i = at.index(chars.len());
            chars[i] = c;
        }
        let text: String = chars.into_iter().collect();
        if let Ok(r) = serde_json::from_str::<Report>(&text) {
            prop_assert_eq!(r.schema_version, bpf_features_probe::report::SCHEMA_VERSION);
        }
    }

    #[test]
    fn verifier_logs_never_panic_and_a_kfunc_refusal_names_the_kfunc(
        lines in prop::collection::vec(verifier_line(), 0..6),
        errno in prop::sample::select(vec![1, 7, 13, 14, 22, 95, 524]),
        id in 0u32..300,
    ) {
        let log = lines.join("\n");
        let e = LoadError { errno: Errno(errno), log: log.clone() };
        let _ = classify_helper_load(Err(&e), "p", id);
        let _ = classify_prog_load(Err(&e), "p");
        let s = classify_kfunc_load(Err(&e), "p", "bpf_k", Scope::ProgramType);
        if let Support::Unsupported { scope: Scope::ProgramType, evidence } = &s {
            let line = evidence.verifier_line.as_deref().unwrap_or("");
            prop_assert!(line.contains("bpf_k") || line.contains("__bpf_trap"), "{}", line);
        }
        if s.is_supported() {
            prop_assert!(log.contains("call bpf_k#") || log.contains("processed "), "{}", log);
        }
    }

    #[test]
    fn cache_files(body in "(([a-z_:@/]{0,20}\\t\\PC{0,40})?\\n){0,6}|\\PC{0,100}") {
        // The parser of a cache file, without the ownership rule (a temporary file here may
        // not be root's): an identity line, then whatever follows.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("answers");
        let identity = Identity::current();
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, "{}", serde_json::to_string(&identity).unwrap()).unwrap();
        f.write_all(body.as_bytes()).unwrap();
        drop(f);
        if let Ok(c) = DiskCache::load(&path, &identity) {
            for (k, _) in c.entries() {
                let _ = c.get(k);
            }
        }
    }
}

#[test]
fn a_report_of_another_schema_is_refused_whole() {
    let text = report_json().replace("\"schema_version\":1", "\"schema_version\":999");
    let e = serde_json::from_str::<Report>(&text).unwrap_err();
    assert!(e.to_string().contains("schema_version 999"), "{e}");
    let ok: Report = serde_json::from_str(&report_json()).unwrap();
    assert_eq!(ok.schema_version, 1);
}

#[test]
fn replayed_answers_are_recorded_not_probed() {
    // Issue 8: a replayed report kept origin `probed` for every answer it had.
    use bpf_features_probe::{FeatureSource, Origin};
    let mut v: serde_json::Value = serde_json::from_str(&report_json()).unwrap();
    v["system"]["release"] =
        serde_json::json!({"raw": "6.1.0-56-amd64", "version": "6.1.0", "suffix": "-56-amd64"});
    v["misc"] = serde_json::json!([{
        "name": "ringbuf", "description": "d",
        "answer": {"status": "supported", "origin": "probed"}
    }]);
    let r: Report = serde_json::from_value(v).unwrap();
    let a = r.misc(bpf_features_probe::Misc::RingBuffer);
    assert!(a.is_supported());
    assert_eq!(a.origin, Origin::Recorded);
    assert!(
        a.origin_reason
            .as_deref()
            .is_some_and(|w| w.contains("6.1.0-56-amd64") && w.contains("probed")),
        "{a}"
    );
    // Missing answers are recorded-unknown too.
    assert_eq!(
        r.misc(bpf_features_probe::Misc::BoundedLoops).origin,
        Origin::Recorded
    );
}
