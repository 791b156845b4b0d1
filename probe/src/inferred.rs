//! Answers from the version table, for when probing is impossible (no CAP_BPF or
//! CAP_SYS_ADMIN and unprivileged BPF disabled). Every answer here has origin `inferred`
//! and says why; per-type helper availability cannot be inferred from a version, except
//! for the few context-dependent helpers tracers ask about, listed below.
use crate::{
    FeatureKey,
    btf::KernelBtf,
    kernel::{KernelRelease, SystemInfo},
    names::{AttachContext, Helper, Since},
    support::{Answer, Evidence, Origin, Scope, Support},
};

/// Helpers whose availability in a context has a known first release.
pub const CONTEXT_SINCE: &[(Helper, AttachContext, Since)] = &[
    (
        Helper::GET_FUNC_IP,
        AttachContext::KPROBE,
        Since::new(5, 15),
    ),
    (
        Helper::GET_FUNC_IP,
        AttachContext::FENTRY_KERNEL_FN,
        Since::new(5, 15),
    ),
    (
        Helper::GET_FUNC_IP,
        AttachContext::FexitKernelFn,
        Since::new(5, 15),
    ),
    (
        Helper::GET_FUNC_IP,
        AttachContext::KprobeMulti,
        Since::new(5, 18),
    ),
    (
        Helper::GET_FUNC_IP,
        AttachContext::FentryBpfProg,
        Since::new(5, 18),
    ),
    // 5.15-5.17 verify it as its kprobe target, which may call the helper (5.15).
    (
        Helper::GET_FUNC_IP,
        AttachContext::FentryKprobeProg,
        Since::new(5, 15),
    ),
    (
        Helper::GET_ATTACH_COOKIE,
        AttachContext::KPROBE,
        Since::new(5, 15),
    ),
];

/// Features the kernel has only when built with a config option (bpf_types.h, the
/// Kconfig of each): `(feature key, option)`. Without privileges, an inferred "supported"
/// must not contradict the config the report read.
pub const NEEDS_CONFIG: &[(&str, &str)] = &[
    ("prog_type:lirc_mode2", "CONFIG_BPF_LIRC_MODE2"),
    ("prog_type:lsm", "CONFIG_BPF_LSM"),
    ("prog_type:kprobe", "CONFIG_BPF_EVENTS"),
    ("prog_type:tracepoint", "CONFIG_BPF_EVENTS"),
    ("prog_type:perf_event", "CONFIG_BPF_EVENTS"),
    ("prog_type:raw_tracepoint", "CONFIG_BPF_EVENTS"),
    ("prog_type:raw_tracepoint_writable", "CONFIG_BPF_EVENTS"),
    ("prog_type:cgroup_skb", "CONFIG_CGROUP_BPF"),
    ("prog_type:cgroup_sock", "CONFIG_CGROUP_BPF"),
    ("prog_type:cgroup_device", "CONFIG_CGROUP_BPF"),
    ("prog_type:sock_ops", "CONFIG_CGROUP_BPF"),
    ("prog_type:cgroup_sock_addr", "CONFIG_CGROUP_BPF"),
    ("prog_type:cgroup_sysctl", "CONFIG_CGROUP_BPF"),
    ("prog_type:cgroup_sockopt", "CONFIG_CGROUP_BPF"),
    ("prog_type:lwt_seg6local", "CONFIG_IPV6_SEG6_BPF"),
    ("misc:kprobe_multi", "CONFIG_FPROBE"),
];

/// `Some(not supported)` when `key` needs a config option that the read config says is
/// not set; `None` when the config says nothing against it (or was not read).
pub fn by_config(key: &str, sys: &SystemInfo, why: &str) -> Option<Answer> {
    let source = sys.config_source.as_deref()?;
    let (_, option) = NEEDS_CONFIG.iter().find(|(k, _)| *k == key)?;
    (sys.config.get(*option).map(String::as_str) == Some("n")).then(|| {
        Answer::with_origin(
            Support::Unsupported {
                scope: Scope::Kernel,
                evidence: Evidence::probe(format!("{option} in {source}"))
                    .with_detail(format!("the kernel is built without {option}")),
            },
            Origin::Inferred,
            why,
        )
    })
}

/// Features that need a config option only on kernels older than a release:
/// `(feature key, option, the release from which it does not)`. Before 6.2 a sleepable
/// fentry program needs a target in the error-injection list; from 6.2
/// `bpf_fentry_test1` is allowed without it.
pub const NEEDS_CONFIG_BEFORE: &[(&str, &str, Since)] = &[(
    "misc:fentry_sleepable",
    "CONFIG_FUNCTION_ERROR_INJECTION",
    Since::new(6, 2),
)];

/// For a key of [`NEEDS_CONFIG_BEFORE`] on an older kernel: not supported when the read
/// config lacks the option, unknown when no config could be read; `None` (the release
/// decides) otherwise.
pub fn by_config_before(key: &str, sys: &SystemInfo, why: &str) -> Option<Answer> {
    let (_, option, until) = NEEDS_CONFIG_BEFORE.iter().find(|(k, _, _)| *k == key)?;
    if sys.release.as_ref().is_none_or(|r| r.reached(*until)) {
        return None;
    }
    let support = match sys.config_source.as_deref() {
        None => Support::unknown(
            format!("before {until} it needs {option}, and the kernel's config could not be read"),
            None,
        ),
        Some(source) => match sys.config.get(*option).map(String::as_str) {
            Some("y") => return None,
            _ => Support::Unsupported {
                scope: Scope::Kernel,
                evidence: Evidence::probe(format!("{option} in {source}")).with_detail(format!(
                    "before {until} it needs {option}, which is not set"
                )),
            },
        },
    };
    Some(Answer::with_origin(support, Origin::Inferred, why))
}

/// Features whose code exists in vmlinux only when built, found by a function of that code
/// in the kernel's BTF (readable by any caller): `(feature key, function, option)`. Where
/// the config cannot be read (a VM, a container), this keeps an inferred answer from
/// saying "supported" for what is not built.
pub const NEEDS_BTF_FUNC: &[(&str, &str, &str)] = &[
    // drivers/media/rc/bpf-lirc.c (4.18), which needs RC_CORE=y.
    (
        "prog_type:lirc_mode2",
        "lirc_mode2_func_proto",
        "CONFIG_BPF_LIRC_MODE2",
    ),
    // kernel/trace/fprobe.c (5.18): kprobe_multi links are built on it.
    ("misc:kprobe_multi", "register_fprobe_ips", "CONFIG_FPROBE"),
];

/// `Some(not supported)` when `key` (or, for a helper in the kprobe_multi context, its
/// context) needs code the kernel's BTF does not have; `None` without BTF or when it has.
pub fn by_btf(key: &FeatureKey, btf: Option<&KernelBtf>, why: &str) -> Option<Answer> {
    let btf = btf?;
    let key = match key {
        FeatureKey::Helper(_, Some(AttachContext::KprobeMulti)) => "misc:kprobe_multi".to_string(),
        k => k.to_string(),
    };
    let (_, func, option) = NEEDS_BTF_FUNC.iter().find(|(k, _, _)| *k == key)?;
    btf.func_id(func).is_none().then(|| {
        Answer::with_origin(
            Support::Unsupported {
                scope: Scope::Kernel,
                evidence: Evidence::probe(format!("/sys/kernel/btf/vmlinux function {func}"))
                    .with_detail(format!(
                        "the kernel's BTF has no {func}: it is built without {option}"
                    )),
            },
            Origin::Inferred,
            why,
        )
    })
}

/// Compares `since` with the running release.
pub fn by_version(
    since: Option<Since>,
    release: Option<&KernelRelease>,
    why: &str,
    what: &str,
) -> Answer {
    let support = match (since, release) {
        (Some(s), Some(r)) if r.reached(s) => Support::supported(),
        (Some(s), Some(r)) => Support::Unsupported {
            scope: Scope::Kernel,
            evidence: Evidence::probe(what).with_detail(format!(
                "kernel {} is older than {s}, where it appeared",
                r.version
            )),
        },
        (None, _) => Support::unknown("no release is known for it", None),
        (_, None) => Support::unknown("the kernel release is unknown", None),
    };
    Answer::with_origin(support, Origin::Inferred, why)
}

/// A helper in a context, inferred.
pub fn helper(
    ctx: AttachContext,
    h: Helper,
    release: Option<&KernelRelease>,
    btf: Option<&KernelBtf>,
    why: &str,
) -> Answer {
    if let Some((_, _, since)) = CONTEXT_SINCE
        .iter()
        .find(|(hh, c, _)| *hh == h && *c == ctx)
    {
        return by_version(
            Some(*since),
            release,
            why,
            &format!("{} in {}", h.name(), ctx.name()),
        );
    }
    let known = match btf.and_then(|b| b.enum_members("bpf_func_id")) {
        Some(_) => Some(
            btf.and_then(|b| b.enum_value("bpf_func_id", &format!("BPF_FUNC_{}", h.short_name())))
                .is_some(),
        ),
        None => release.zip(h.since()).map(|(r, s)| r.reached(s)),
    };
    let support = match known {
        Some(false) => Support::Unsupported {
            scope: Scope::Kernel,
            evidence: Evidence::probe(format!("{} in the kernel's helper list", h.name()))
                .with_detail("this kernel does not have the helper"),
        },
        _ => Support::unknown(
            "whether this program type may call it cannot be known without loading a program",
            None,
        ),
    };
    Answer::with_origin(support, Origin::Inferred, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleepable_fentry_before_6_2_needs_error_injection() {
        let key = "misc:fentry_sleepable";
        let mut sys = SystemInfo {
            release: KernelRelease::parse("6.1.0").ok(),
            ..Default::default()
        };
        let a = by_config_before(key, &sys, "w").unwrap();
        assert!(a.support.is_unknown(), "{a}");
        sys.config_source = Some("/boot/config-6.1.0".into());
        let a = by_config_before(key, &sys, "w").unwrap();
        assert!(a.support.is_unsupported(), "{a}");
        sys.config
            .insert("CONFIG_FUNCTION_ERROR_INJECTION".into(), "y".into());
        assert!(by_config_before(key, &sys, "w").is_none());
        sys.release = KernelRelease::parse("6.12.0").ok();
        sys.config.clear();
        assert!(by_config_before(key, &sys, "w").is_none());
    }

    #[test]
    fn the_config_read_overrides_the_version() {
        let mut sys = SystemInfo::default();
        assert!(
            by_config("misc:kprobe_multi", &sys, "w").is_none(),
            "no config read"
        );
        sys.config_source = Some("/boot/config-x".into());
        sys.config.insert("CONFIG_FPROBE".into(), "n".into());
        sys.config
            .insert("CONFIG_BPF_LIRC_MODE2".into(), "y".into());
        let a = by_config("misc:kprobe_multi", &sys, "w").unwrap();
        assert!(a.support.is_unsupported());
        assert_eq!(a.origin, Origin::Inferred);
        assert!(a.to_string().contains("CONFIG_FPROBE"), "{a}");
        assert!(by_config("prog_type:lirc_mode2", &sys, "w").is_none());
        assert!(by_config("prog_type:socket_filter", &sys, "w").is_none());
        for (k, _) in NEEDS_CONFIG {
            k.parse::<crate::FeatureKey>().unwrap();
        }
    }

    #[test]
    fn btf_without_the_code_says_not_built() {
        let key: FeatureKey = "prog_type:lirc_mode2".parse().unwrap();
        assert!(by_btf(&key, None, "w").is_none(), "no BTF: no answer");
        let without = KernelBtf::synthetic(&[], &[("bpf_fentry_test1", 5)]);
        let a = by_btf(&key, Some(&without), "w").unwrap();
        assert!(a.support.is_unsupported() && a.to_string().contains("CONFIG_BPF_LIRC_MODE2"));
        let with = KernelBtf::synthetic(&[], &[("lirc_mode2_func_proto", 7)]);
        assert!(by_btf(&key, Some(&with), "w").is_none());
        let multi =
            FeatureKey::Helper(crate::Helper::GET_FUNC_IP, Some(AttachContext::KprobeMulti));
        assert!(by_btf(&multi, Some(&without), "w").is_some());
        for (k, _, _) in NEEDS_BTF_FUNC {
            k.parse::<FeatureKey>().unwrap();
            assert!(
                crate::btf::WANTED_FUNCS
                    .iter()
                    .any(|f| NEEDS_BTF_FUNC.iter().any(|n| n.1 == *f))
            );
        }
    }
}
