//! Bounded fuzzing of the kallsyms parser (issue 8): mixes of real-looking lines, program
//! symbols and random bytes; no panic, and what it returns is what was asked for.
use bpf_features::kallsyms::{Target, parse_bpf_prog_name, resolve};
use proptest::prelude::*;

const TAG: u64 = 0x6deef7357e7b4530;

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{16} [tTdDbBrR] [a-z_]{1,30}\n",
        "[0-9a-f]{16} t bpf_prog_[0-9a-f]{16}(_[a-z_]{0,20})?\t\\[bpf\\]\n",
        Just("ffffffffc0a0b000 t bpf_prog_6deef7357e7b4530_tc_target\t[bpf]\n".to_string()),
        Just("0000000000000000 t bpf_prog_6deef7357e7b4530_tc_target\t[bpf]\n".to_string()),
        "\\PC{0,40}\n",
        "[0-9a-f ]{0,20}\r?\n",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn kallsyms_never_panics(lines in prop::collection::vec(line(), 0..30), tail in "\\PC{0,20}") {
        let text = lines.concat() + &tail;
        let targets = [Target { tag: TAG, name: Some("tc_target".into()) }];
        if let Ok(found) = resolve(text.as_bytes(), &targets) {
            for s in &found[&targets[0]] {
                prop_assert_eq!(s.tag, TAG);
                prop_assert_ne!(s.addr, 0);
                prop_assert!(s.name.starts_with("tc_target"));
            }
        }
    }

    #[test]
    fn kallsyms_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = resolve(&bytes[..], &[Target { tag: TAG, name: None }]);
    }

    #[test]
    fn program_names(sym in "bpf_prog_[0-9a-fA-Fx]{0,18}(_\\PC{0,10})?|\\PC{0,30}") {
        if let Some((_, name)) = parse_bpf_prog_name(&sym) {
            prop_assert!(sym.ends_with(name));
        }
    }
}
