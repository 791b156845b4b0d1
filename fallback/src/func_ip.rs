//! The first need: "which function am I in?" inside an fentry/fexit program attached to a
//! BPF program (pwru's `--filter-trace-tc`).
//!
//! - [`FuncIpStrategy::Helper`]: `bpf_get_func_ip(ctx)`, only when the probe layer says it
//!   is callable *in that context* — fentry on a BPF program, 5.18. On 5.15–5.17 the helper
//!   exists and fentry on a kernel function may call it, but fentry on a BPF program is
//!   verified as the target's type and refused; checking that the helper exists (the BTF
//!   enum, as pwru did) is not enough.
//! - [`FuncIpStrategy::RewriteConstant`]: resolve the target's address in user space
//!   (jited_ksyms, then kallsyms) and inject it as a read-only constant before load.
use std::{os::fd::BorrowedFd, path::Path};

use aya::EbpfLoader;
use probe::{AttachContext, FeatureSource, Helper, Misc};
use serde::Serialize;

use crate::{
    prog_addr::{self, AddrError, AddrSource},
    strategy::{self, Choice, Need, StrategyError},
};

/// The need, for [`strategy::choose`].
pub struct FuncIp;

/// Which path, before the address is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuncIpKind {
    Helper,
    RewriteConstant,
}

impl Need for FuncIp {
    const NAME: &'static str = "func_ip";
    const DESCRIPTION: &'static str = "the function IP inside fentry/fexit on a BPF program";
    type Strategy = FuncIpKind;
    fn candidates() -> &'static [FuncIpKind] {
        &[FuncIpKind::Helper, FuncIpKind::RewriteConstant]
    }
    fn name(s: FuncIpKind) -> &'static str {
        match s {
            FuncIpKind::Helper => "helper",
            FuncIpKind::RewriteConstant => "rewrite_constant",
        }
    }
    fn runnable(src: &dyn FeatureSource, s: FuncIpKind) -> Result<String, String> {
        match s {
            FuncIpKind::Helper => {
                let a = src.helper(AttachContext::FentryBpfProg, Helper::GET_FUNC_IP);
                if a.is_supported() {
                    Ok(format!(
                        "bpf_get_func_ip is callable in fentry on a BPF program: {a}"
                    ))
                } else {
                    Err(format!("bpf_get_func_ip in fentry on a BPF program: {a}"))
                }
            }
            FuncIpKind::RewriteConstant => {
                let a = src.misc(Misc::RodataFrozen);
                if !a.is_supported() {
                    return Err(format!("read-only frozen globals: {a}"));
                }
                // The address comes from jited_ksyms or kallsyms, both shown under the same
                // rule (kptr_restrict, CAP_SYSLOG): a hidden one is no address at all.
                let visible = src
                    .system()
                    .addresses_visible()
                    .map_err(|why| format!("the target's address cannot be read: {why}"))?;
                Ok(format!(
                    "the target's address is injected as a frozen read-only constant \
                     (rodata_frozen supported; addresses visible: {visible})"
                ))
            }
        }
    }
}

/// The chosen path, with the address when it is the constant rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum FuncIpStrategy {
    Helper,
    RewriteConstant { addr: u64, source: AddrSource },
}

impl std::fmt::Display for FuncIpStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FuncIpStrategy::Helper => f.write_str("helper (bpf_get_func_ip)"),
            FuncIpStrategy::RewriteConstant { addr, source } => {
                let source = match source {
                    AddrSource::JitedKsyms => "jited_ksyms",
                    AddrSource::Kallsyms => "kallsyms",
                };
                write!(f, "rewrite_constant ({addr:#x} from {source})")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FuncIpError {
    #[error(transparent)]
    Strategy(#[from] StrategyError),
    #[error("cannot resolve the target program's address for the constant rewrite: {0}")]
    Address(#[from] AddrError),
    #[error(
        "refusing to inject address 0 as the target's address: a hidden (kptr_restrict) or \
         unresolved address is never a valid one"
    )]
    ZeroAddress,
}

/// Chooses the strategy for tracing `target`, resolving its address when needed.
/// `force`: `Some("helper")` or `Some("rewrite_constant")` (else `BPF_FEATURES_STRATEGY`).
pub fn plan(
    src: &dyn FeatureSource,
    target: BorrowedFd<'_>,
    kallsyms: &Path,
    force: Option<&str>,
) -> Result<Choice<FuncIpStrategy>, FuncIpError> {
    let c = strategy::choose::<FuncIp>(src, force)?;
    let strategy = match c.strategy {
        FuncIpKind::Helper => FuncIpStrategy::Helper,
        FuncIpKind::RewriteConstant => {
            let a = prog_addr::resolve_fd(target, kallsyms)?;
            FuncIpStrategy::RewriteConstant {
                addr: a.addr,
                source: a.source,
            }
        }
    };
    let why = match strategy {
        FuncIpStrategy::RewriteConstant { addr, source } => {
            format!("{}; target address {addr:#x} from {source:?}", c.why)
        }
        FuncIpStrategy::Helper => c.why,
    };
    Ok(Choice {
        strategy,
        why,
        forced: c.forced,
    })
}

/// The values of the object's `const volatile` globals for a strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncIpGlobals {
    pub use_helper: u8,
    pub target_addr: u64,
}

impl FuncIpGlobals {
    /// # Errors
    /// [`FuncIpError::ZeroAddress`] for a rewrite to address 0 (prog_addr never returns
    /// one; a hand-built strategy might).
    pub fn new(s: FuncIpStrategy) -> Result<Self, FuncIpError> {
        match s {
            FuncIpStrategy::Helper => Ok(FuncIpGlobals {
                use_helper: 1,
                target_addr: 0,
            }),
            FuncIpStrategy::RewriteConstant { addr: 0, .. } => Err(FuncIpError::ZeroAddress),
            FuncIpStrategy::RewriteConstant { addr, .. } => Ok(FuncIpGlobals {
                use_helper: 0,
                target_addr: addr,
            }),
        }
    }

    /// Rewrites `use_helper` and `target_addr` in the object's .rodata before load
    /// (aya's `override_global`, the twin of cilium/ebpf's `RewriteConstants`).
    pub fn apply<'a>(&'a self, loader: &mut EbpfLoader<'a>) {
        loader
            .override_global("use_helper", &self.use_helper, true)
            .override_global("target_addr", &self.target_addr, true);
    }
}
