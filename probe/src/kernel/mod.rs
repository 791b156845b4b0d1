//! The system around BPF: kernel release, BPF-related config, sysctls, lockdown, BTF,
//! tracefs, privileges and RLIMIT_MEMLOCK. Parsers take text; the /proc and /sys readers are
//! thin callers, so every parser is unit-tested on fixtures.
use std::{collections::BTreeMap, fs, io::Read, path::Path};

use serde::{Deserialize, Serialize};

use crate::conditions::{Lockdown, LockdownMode};

/// A kernel release as `uname -r` prints it, and the version inside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelRelease {
    /// Verbatim, trimmed.
    pub raw: String,
    /// MAJOR.MINOR.PATCH, a missing patch level being 0.
    #[serde(with = "version_str")]
    pub version: semver::Version,
    /// Everything after the version: `-46-amd64`, `+deb13-amd64`, `-513.el8.x86_64`.
    pub suffix: String,
}

mod version_str {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &semver::Version, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<semver::Version, D::Error> {
        semver::Version::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A release that does not start with MAJOR.MINOR (or a failed uname), with the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read a kernel version from release '{0}': expected it to start with MAJOR.MINOR")]
pub struct ReleaseError(pub String);

impl KernelRelease {
    /// Parses `5.10.0-46-amd64`, `6.12.107+deb13-amd64`, `5.15.0-1034-aws`,
    /// `4.18.0-513.5.1.el8_9.x86_64`, `6.8.0-rc3`, `6.18.44-fc-v669`, `6.1`.
    pub fn parse(raw: &str) -> Result<Self, ReleaseError> {
        let raw = raw.trim();
        let mut nums = [0u64; 3];
        let mut count = 0;
        let mut rest = raw;
        while count < 3 {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                break;
            }
            nums[count] = rest[..digits]
                .parse()
                .map_err(|_| ReleaseError(raw.into()))?;
            count += 1;
            rest = &rest[digits..];
            match rest.strip_prefix('.') {
                Some(r) if count < 3 && r.starts_with(|c: char| c.is_ascii_digit()) => rest = r,
                _ => break,
            }
        }
        // KERNEL_VERSION() packs major and minor in a byte each: anything larger is no
        // kernel's release, and would wrap in version_code().
        if count < 2 || nums[0] > 255 || nums[1] > 255 {
            return Err(ReleaseError(raw.chars().take(128).collect()));
        }
        Ok(KernelRelease {
            raw: raw.to_string(),
            version: semver::Version::new(nums[0], nums[1], nums[2]),
            suffix: rest.to_string(),
        })
    }

    /// The running kernel's release (uname).
    pub fn current() -> Result<Self, ReleaseError> {
        let u = nix::sys::utsname::uname().map_err(|e| ReleaseError(format!("uname: {e}")))?;
        Self::parse(&u.release().to_string_lossy())
    }

    /// `LINUX_VERSION_CODE`, which kprobe programs had to carry before 5.0.
    pub fn version_code(&self) -> u32 {
        let v = &self.version;
        ((v.major.min(255) as u32) << 16)
            | ((v.minor.min(255) as u32) << 8)
            | (v.patch.min(255) as u32)
    }

    /// Whether this is MAJOR.MINOR or later. The patch level is ignored: features land in
    /// x.y.0 releases.
    pub fn at_least(&self, major: u64, minor: u64) -> bool {
        (self.version.major, self.version.minor) >= (major, minor)
    }

    /// Whether this release is at or past `since`.
    pub fn reached(&self, since: crate::names::Since) -> bool {
        self.at_least(since.major, since.minor)
    }
}

/// The kernel config options that matter to BPF users (bpftool's list, plus tracing ones).
pub const BPF_CONFIG_KEYS: &[&str] = &[
    "CONFIG_BPF",
    "CONFIG_BPF_SYSCALL",
    "CONFIG_HAVE_EBPF_JIT",
    "CONFIG_BPF_JIT",
    "CONFIG_BPF_JIT_ALWAYS_ON",
    "CONFIG_DEBUG_INFO_BTF",
    "CONFIG_DEBUG_INFO_BTF_MODULES",
    "CONFIG_CGROUPS",
    "CONFIG_CGROUP_BPF",
    "CONFIG_CGROUP_NET_CLASSID",
    "CONFIG_SOCK_CGROUP_DATA",
    "CONFIG_BPF_EVENTS",
    "CONFIG_KPROBE_EVENTS",
    "CONFIG_KPROBE_EVENTS_ON_NOTRACE",
    "CONFIG_FUNCTION_TRACER",
    "CONFIG_UPROBE_EVENTS",
    "CONFIG_TRACING",
    "CONFIG_FTRACE_SYSCALLS",
    "CONFIG_FUNCTION_ERROR_INJECTION",
    "CONFIG_BPF_KPROBE_OVERRIDE",
    "CONFIG_FPROBE",
    "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS",
    "CONFIG_NET",
    "CONFIG_XDP_SOCKETS",
    "CONFIG_LWTUNNEL_BPF",
    "CONFIG_NET_ACT_BPF",
    "CONFIG_NET_CLS_BPF",
    "CONFIG_NET_CLS_ACT",
    "CONFIG_NET_SCH_INGRESS",
    "CONFIG_XFRM",
    "CONFIG_IP_ROUTE_CLASSID",
    "CONFIG_IPV6_SEG6_BPF",
    "CONFIG_BPF_LIRC_MODE2",
    "CONFIG_BPF_STREAM_PARSER",
    "CONFIG_NETFILTER_XT_MATCH_BPF",
    "CONFIG_BPFILTER",
    "CONFIG_BPFILTER_UMH",
    "CONFIG_TEST_BPF",
    "CONFIG_HZ",
    "CONFIG_BPF_LSM",
    "CONFIG_LSM",
    "CONFIG_SECURITY_LOCKDOWN_LSM",
    "CONFIG_BPF_UNPRIV_DEFAULT_OFF",
    "CONFIG_PREEMPT_RT",
];

/// Parses a kernel config (`.config` syntax). `# CONFIG_X is not set` becomes `n`.
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(key) = rest.strip_suffix(" is not set") {
                out.insert(key.to_string(), "n".to_string());
            }
        } else if let Some((k, v)) = line.split_once('=')
            && k.starts_with("CONFIG_")
        {
            out.insert(k.to_string(), v.trim_matches('"').to_string());
        }
    }
    out
}

/// Reads the running kernel's config: /proc/config.gz, else `/boot/config-<release>`.
/// Returns the source path and the BPF-related options.
pub fn read_config(release: &str) -> Option<(String, BTreeMap<String, String>)> {
    let text = fs::read("/proc/config.gz")
        .ok()
        .and_then(|gz| {
            let mut s = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut s)
                .ok()
                .map(|_| ("/proc/config.gz".to_string(), s))
        })
        .or_else(|| {
            let p = format!("/boot/config-{release}");
            fs::read_to_string(&p).ok().map(|s| (p, s))
        })?;
    let all = parse_config(&text.1);
    let picked = BPF_CONFIG_KEYS
        .iter()
        .map(|k| {
            (
                k.to_string(),
                all.get(*k).cloned().unwrap_or_else(|| "n".to_string()),
            )
        })
        .collect();
    Some((text.0, picked))
}

/// Effective capabilities from a `/proc/<pid>/status` `CapEff:` line.
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYSLOG: u32 = 34;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The capabilities that decide what BPF may load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privileges {
    /// Effective uid, for the report: capabilities, not uid 0, decide.
    pub euid: u32,
    /// CAP_BPF (5.8): loading and map creation without CAP_SYS_ADMIN.
    pub cap_bpf: bool,
    /// CAP_PERFMON (5.8): with CAP_BPF, tracing programs and reads of kernel memory.
    pub cap_perfmon: bool,
    /// CAP_SYS_ADMIN: everything, and the only way before 5.8.
    pub cap_sys_admin: bool,
    /// CAP_NET_ADMIN: with CAP_BPF, networking programs and their attachment.
    pub cap_net_admin: bool,
    /// Decides, with kernel.kptr_restrict, whether kernel addresses are visible.
    #[serde(default)]
    pub cap_syslog: bool,
}

impl Privileges {
    /// From an euid and a `CapEff:` mask.
    pub fn from_cap_eff(euid: u32, caps: u64) -> Self {
        let has = |c: u32| caps & (1u64 << c) != 0;
        Privileges {
            euid,
            cap_bpf: has(CAP_BPF),
            cap_perfmon: has(CAP_PERFMON),
            cap_sys_admin: has(CAP_SYS_ADMIN),
            cap_net_admin: has(CAP_NET_ADMIN),
            cap_syslog: has(CAP_SYSLOG),
        }
    }
    /// This process's, from /proc/self/status.
    pub fn current() -> Self {
        let caps = fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| parse_cap_eff(&s))
            .unwrap_or(0);
        Self::from_cap_eff(nix::unistd::geteuid().as_raw(), caps)
    }
    /// Whether privileged program types can be loaded at all.
    pub fn may_load_bpf(&self) -> bool {
        self.cap_sys_admin || self.cap_bpf
    }
}

/// RLIMIT_MEMLOCK, before and after we raised it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memlock {
    /// Soft limit in bytes; `None` is unlimited.
    pub soft: Option<u64>,
    /// Hard limit in bytes; `None` is unlimited.
    pub hard: Option<u64>,
    /// Whether this kernel charges BPF memory to RLIMIT_MEMLOCK (before 5.11).
    pub charged: bool,
    /// What raising it did, if we tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raised: Option<String>,
}

impl Memlock {
    /// The current limits, without changing them.
    pub fn read(release: Option<&KernelRelease>) -> Memlock {
        use nix::sys::resource::{Resource, getrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_MEMLOCK).unwrap_or((0, 0));
        Memlock {
            soft: limit(soft),
            hard: limit(hard),
            charged: release.is_some_and(|r| !r.at_least(5, 11)),
            raised: None,
        }
    }
}

fn limit(v: nix::libc::rlim_t) -> Option<u64> {
    (v != nix::libc::RLIM_INFINITY).then_some(v)
}

/// Before 5.11 every map and program is charged to RLIMIT_MEMLOCK, whose default (64 KiB
/// or 8 MiB) fails probes with EPERM. Raise it to infinity there, as libbpf and aya do.
pub fn raise_memlock_if_charged(release: &KernelRelease) -> Memlock {
    use nix::sys::resource::{Resource, setrlimit};
    let mut m = Memlock::read(Some(release));
    if m.charged && m.soft.is_some() {
        let inf = nix::libc::RLIM_INFINITY;
        m.raised = Some(match setrlimit(Resource::RLIMIT_MEMLOCK, inf, inf) {
            Ok(()) => {
                m.soft = None;
                m.hard = None;
                "raised to unlimited".to_string()
            }
            Err(e) => format!("could not raise it ({e}); probes may fail with EPERM"),
        });
    }
    m
}

/// The soft RLIMIT_AS (`ulimit -v`) in bytes, when there is one.
pub fn address_space_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_AS)
        .ok()
        .and_then(|(soft, _)| limit(soft))
}

/// Address space the full report needs with one probing thread (measured: the report
/// aborts in allocation under ~96 MiB), and what each further thread adds (its stack and
/// the allocator's per-thread arena, which reserves 64 MiB).
pub const REPORT_ADDRESS_SPACE: u64 = 128 << 20;
/// What each further probing thread adds to [`REPORT_ADDRESS_SPACE`].
pub const THREAD_ADDRESS_SPACE: u64 = 80 << 20;

/// How many threads beyond the caller's fit under the address-space limit when the work
/// itself needs `base` bytes; unlimited without a limit.
pub fn extra_threads_that_fit(base: u64) -> usize {
    match address_space_limit() {
        None => usize::MAX,
        Some(l) => (l.saturating_sub(base) / THREAD_ADDRESS_SPACE) as usize,
    }
}

/// Runs `here` on this thread and `there` on another, when one fits under the
/// address-space limit (with `base` bytes for the work) and starts; otherwise, or when it
/// panics, `there` runs here after `here`.
pub fn side_by_side<A, B: Send>(
    base: u64,
    here: impl FnOnce() -> A,
    there: impl Fn() -> B + Sync,
) -> (A, B) {
    std::thread::scope(|s| {
        let other = (extra_threads_that_fit(base) >= 1)
            .then(std::thread::Builder::new)
            .and_then(|t| t.spawn_scoped(s, &there).ok());
        let a = here();
        let b = match other.map(|t| t.join()) {
            Some(Ok(b)) => b,
            _ => there(),
        };
        (a, b)
    })
}

fn read_trim(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn mount_point(mounts: &str, fstype: &str) -> Option<String> {
    mounts.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let (_, at, ty) = (it.next()?, it.next()?, it.next()?);
        (ty == fstype).then(|| at.to_string())
    })
}

/// Everything the report's "system" section shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// The running kernel's release; `None` when it does not parse.
    pub release: Option<KernelRelease>,
    /// Why `release` is `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_error: Option<String>,
    /// The architecture this binary was built for (`x86_64`, `aarch64`, …).
    pub arch: String,
    /// Where the config was read from; `None` when neither file is readable.
    pub config_source: Option<String>,
    /// Each of [`BPF_CONFIG_KEYS`] with its value, `n` when unset.
    pub config: BTreeMap<String, String>,
    /// net.core.bpf_jit_* , kernel.unprivileged_bpf_disabled, kernel.kptr_restrict, …
    pub sysctls: BTreeMap<String, String>,
    /// The lockdown mode (`none`, `integrity`, `confidentiality`); `None` when nothing
    /// could tell (see `lockdown_source`).
    pub lockdown: Option<LockdownMode>,
    /// How the mode was learned, or why it could not be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockdown_source: Option<String>,
    /// Whether /sys/kernel/btf/vmlinux exists (`CONFIG_DEBUG_INFO_BTF`, 5.4).
    pub btf_vmlinux: bool,
    /// Where tracefs is mounted, if it is (kprobe and uprobe events need it).
    pub tracefs: Option<String>,
    /// Where debugfs is mounted, if it is (older kernels reach tracefs through it).
    pub debugfs: Option<String>,
    /// Where a bpf filesystem is mounted, if one is (pinning needs it).
    pub bpffs: Option<String>,
    /// This process's euid and BPF-related capabilities.
    pub privileges: Privileges,
    /// RLIMIT_MEMLOCK, and what raising it did.
    pub memlock: Memlock,
}

/// The sysctls the report shows, with the file each is read from.
pub const SYSCTLS: &[(&str, &str)] = &[
    (
        "kernel.unprivileged_bpf_disabled",
        "/proc/sys/kernel/unprivileged_bpf_disabled",
    ),
    (
        "net.core.bpf_jit_enable",
        "/proc/sys/net/core/bpf_jit_enable",
    ),
    (
        "net.core.bpf_jit_harden",
        "/proc/sys/net/core/bpf_jit_harden",
    ),
    (
        "net.core.bpf_jit_kallsyms",
        "/proc/sys/net/core/bpf_jit_kallsyms",
    ),
    ("net.core.bpf_jit_limit", "/proc/sys/net/core/bpf_jit_limit"),
    ("kernel.kptr_restrict", "/proc/sys/kernel/kptr_restrict"),
    (
        "kernel.perf_event_paranoid",
        "/proc/sys/kernel/perf_event_paranoid",
    ),
];

impl SystemInfo {
    /// Reads the running system; changes nothing (RLIMIT_MEMLOCK is only read here:
    /// [`crate::Features`] raises it where the kernel charges it).
    pub fn read() -> Self {
        let (release, release_error) = match KernelRelease::current() {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
        let (config_source, config) = release
            .as_ref()
            .and_then(|r| read_config(&r.raw))
            .map_or((None, BTreeMap::new()), |(s, c)| (Some(s), c));
        let memlock = Memlock::read(release.as_ref());
        let lockdown = Lockdown::read();
        SystemInfo {
            arch: std::env::consts::ARCH.to_string(),
            config_source,
            config,
            sysctls: SYSCTLS
                .iter()
                .filter_map(|(k, p)| read_trim(p).map(|v| (k.to_string(), v)))
                .collect(),
            lockdown: lockdown.mode,
            lockdown_source: Some(lockdown.source),
            btf_vmlinux: Path::new("/sys/kernel/btf/vmlinux").exists(),
            tracefs: mount_point(&mounts, "tracefs"),
            debugfs: mount_point(&mounts, "debugfs"),
            bpffs: mount_point(&mounts, "bpf"),
            privileges: Privileges::current(),
            memlock,
            release,
            release_error,
        }
    }

    /// A sysctl of [`SYSCTLS`] as a number; `None` when unread or not a number.
    pub fn sysctl(&self, key: &str) -> Option<i64> {
        self.sysctls.get(key).and_then(|v| v.parse().ok())
    }

    /// Whether this process can read kernel addresses (kallsyms, jited_ksyms): `Ok(why)`
    /// or `Err(why not, naming the sysctl and the fix)`.
    pub fn addresses_visible(&self) -> Result<String, String> {
        crate::conditions::addresses_visible(
            self.sysctl("kernel.kptr_restrict"),
            self.sysctl("kernel.perf_event_paranoid"),
            self.privileges.cap_syslog,
        )
    }

    /// Whether this caller is unprivileged and the kernel lets it load some programs
    /// (kernel.unprivileged_bpf_disabled = 0: socket_filter and cgroup_skb, and maps).
    pub fn unprivileged_bpf_allowed(&self) -> bool {
        !self.privileges.may_load_bpf()
            && self.sysctl("kernel.unprivileged_bpf_disabled") == Some(0)
    }

    /// Why probing is impossible here, if it is: then answers come from the version table.
    pub fn why_probing_is_impossible(&self) -> Option<String> {
        if self.privileges.may_load_bpf() {
            return None;
        }
        let unpriv = self.sysctl("kernel.unprivileged_bpf_disabled").unwrap_or(1);
        if unpriv == 0 {
            return Some(format!(
                "no CAP_BPF or CAP_SYS_ADMIN (euid {}), and kernel.unprivileged_bpf_disabled = \
                 0: socket_filter and cgroup_skb programs, their helpers and map types are \
                 probed as this caller may load them; the rest is inferred. Run as root or \
                 grant CAP_BPF+CAP_PERFMON+CAP_NET_ADMIN to probe everything",
                self.privileges.euid
            ));
        }
        Some(format!(
            "no CAP_BPF or CAP_SYS_ADMIN (euid {}) and kernel.unprivileged_bpf_disabled = {unpriv}: \
             run as root or grant CAP_BPF+CAP_PERFMON+CAP_NET_ADMIN to probe for real",
            self.privileges.euid
        ))
    }
}

#[cfg(test)]
mod tests;
