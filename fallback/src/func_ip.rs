//! The first need: "which function am I in?" inside an fentry/fexit program attached to a
//! BPF program (pwru's `--filter-trace-tc`).
//!
//! - [`FuncIpPlan::Helper`]: `bpf_get_func_ip(ctx)`, only when the probe layer says it
//!   is callable *in that context* — fentry on a BPF program, 5.18. On 5.15–5.17 the helper
//!   exists and fentry on a kernel function may call it, but fentry on a BPF program is
//!   verified as the target's type and refused; checking that the helper exists (the BTF
//!   enum, as pwru did) is not enough.
//! - [`FuncIpPlan::RewriteConstant`]: resolve the target's address in user space
//!   (jited_ksyms, then kallsyms) and inject it as a read-only constant before load.
use std::{os::fd::BorrowedFd, path::Path};

use aya::EbpfLoader;
use probe::{AttachContext, FeatureSource, Helper, Misc, ProgramType};
use serde::Serialize;

use crate::{
    prog_addr::{self, AddrError, AddrSource},
    strategy::{self, Choice, Need, Refusal, StrategyError, runnable_if},
};

/// The need, for [`strategy::choose`].
pub struct FuncIp;

/// The strategy: which path, before any address is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuncIpStrategy {
    /// `bpf_get_func_ip(ctx)`: fentry on a BPF program may call it from 5.18.
    Helper,
    /// The target's address, resolved in user space and injected as a constant.
    RewriteConstant,
}

impl Need for FuncIp {
    const NAME: &'static str = "func_ip";
    const DESCRIPTION: &'static str = "the function IP inside fentry/fexit on a BPF program";
    type Strategy = FuncIpStrategy;
    fn candidates() -> &'static [FuncIpStrategy] {
        &[FuncIpStrategy::Helper, FuncIpStrategy::RewriteConstant]
    }
    fn name(s: FuncIpStrategy) -> &'static str {
        match s {
            FuncIpStrategy::Helper => "helper",
            FuncIpStrategy::RewriteConstant => "rewrite_constant",
        }
    }
    /// The report's question: fentry on a tc program (pwru's case).
    fn runnable(src: &dyn FeatureSource, s: FuncIpStrategy) -> Result<String, Refusal> {
        FuncIp::runnable_in(src, s, AttachContext::FentryBpfProg)
    }
}

impl FuncIp {
    /// Whether `s` can run in fentry on a BPF program whose answers are `ctx`'s
    /// ([`AttachContext::fentry_on`] the target's type): the verifier's answer can differ
    /// between a tc and a kprobe target on the same kernel (5.15-5.17).
    pub fn runnable_in(
        src: &dyn FeatureSource,
        s: FuncIpStrategy,
        ctx: AttachContext,
    ) -> Result<String, Refusal> {
        let on = if ctx == AttachContext::FentryKprobeProg {
            "a kprobe BPF program"
        } else {
            "a BPF program"
        };
        match s {
            FuncIpStrategy::Helper => {
                let a = src.helper(ctx, Helper::GET_FUNC_IP);
                let why = format!("bpf_get_func_ip is callable in fentry on {on}: {a}");
                runnable_if(a, &format!("bpf_get_func_ip in fentry on {on}")).map(|_| why)
            }
            FuncIpStrategy::RewriteConstant => {
                runnable_if(src.misc(Misc::RodataFrozen), "read-only frozen globals")?;
                // The address comes from jited_ksyms or kallsyms, both shown under the same
                // rule (kptr_restrict, CAP_SYSLOG): a hidden one is no address at all.
                let visible = src.system().addresses_visible().map_err(|why| {
                    Refusal::from(format!("the target's address cannot be read: {why}"))
                })?;
                Ok(format!(
                    "the target's address is injected as a frozen read-only constant \
                     (rodata_frozen supported; addresses visible: {visible})"
                ))
            }
        }
    }
}

impl std::str::FromStr for FuncIpStrategy {
    type Err = StrategyError;
    /// `helper` or `rewrite_constant`.
    fn from_str(s: &str) -> Result<Self, StrategyError> {
        strategy::parse::<FuncIp>(s, "API")
    }
}

/// The resolved plan: the chosen path, with the address when it is the constant rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum FuncIpPlan {
    /// `bpf_get_func_ip(ctx)`: no address needed.
    Helper,
    /// The target's address, injected before load.
    RewriteConstant {
        /// The target's address; 0 is refused ([`FuncIpError::ZeroAddress`]).
        addr: u64,
        /// Where it was read.
        source: AddrSource,
    },
}

impl std::fmt::Display for FuncIpPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FuncIpPlan::Helper => f.write_str("helper (bpf_get_func_ip)"),
            FuncIpPlan::RewriteConstant { addr, source } => {
                let source = match source {
                    AddrSource::JitedKsyms => "jited_ksyms",
                    AddrSource::Kallsyms => "kallsyms",
                };
                write!(f, "rewrite_constant ({addr:#x} from {source})")
            }
        }
    }
}

/// Why no func_ip plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum FuncIpError {
    /// No strategy can run, or the forced one cannot.
    #[error(transparent)]
    Strategy(#[from] StrategyError),
    /// The constant rewrite was chosen but the target's address is unknown.
    #[error("cannot resolve the target program's address for the constant rewrite: {0}")]
    Address(#[from] AddrError),
    /// A plan carried address 0, which would make every event report 0.
    #[error(
        "refusing to inject address 0 as the target's address: a hidden (kptr_restrict) or \
         unresolved address is never a valid one"
    )]
    ZeroAddress,
}

/// The strategy for fentry on a program of type `target`, from the answers of that
/// context ([`AttachContext::fentry_on`]).
pub fn choose_for(
    src: &dyn FeatureSource,
    target: ProgramType,
    force: Option<&str>,
) -> Result<Choice<FuncIpStrategy>, StrategyError> {
    let ctx = AttachContext::fentry_on(target);
    strategy::choose_by::<FuncIp>(force, |s| FuncIp::runnable_in(src, s, ctx))
}

/// Chooses the strategy for tracing `target`, resolving its address when needed.
/// `force`: `Some("helper")` or `Some("rewrite_constant")` instead of the best one.
pub fn plan(
    src: &dyn FeatureSource,
    target: BorrowedFd<'_>,
    kallsyms: &Path,
    force: Option<&str>,
) -> Result<Choice<FuncIpPlan>, FuncIpError> {
    // The answers that hold are those of fentry on a program of the target's type.
    let info = probe::sys::prog_info(target).map_err(AddrError::Info)?;
    let c = choose_for(src, ProgramType(info.prog_type), force)?;
    let strategy = match c.strategy {
        FuncIpStrategy::Helper => FuncIpPlan::Helper,
        FuncIpStrategy::RewriteConstant => {
            let a = prog_addr::resolve_fd(target, kallsyms)?;
            FuncIpPlan::RewriteConstant {
                addr: a.addr,
                source: a.source,
            }
        }
    };
    let why = match strategy {
        FuncIpPlan::RewriteConstant { addr, source } => {
            format!("{}; target address {addr:#x} from {source:?}", c.why)
        }
        FuncIpPlan::Helper => c.why,
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
    /// 1 for the helper, 0 for the constant.
    pub use_helper: u8,
    /// The target's address under the constant rewrite, else 0.
    pub target_addr: u64,
}

impl FuncIpGlobals {
    /// The globals for the plan `s`.
    ///
    /// # Errors
    /// [`FuncIpError::ZeroAddress`] for a rewrite to address 0 (prog_addr never returns
    /// one; a hand-built strategy might).
    pub fn new(s: FuncIpPlan) -> Result<Self, FuncIpError> {
        match s {
            FuncIpPlan::Helper => Ok(FuncIpGlobals {
                use_helper: 1,
                target_addr: 0,
            }),
            FuncIpPlan::RewriteConstant { addr: 0, .. } => Err(FuncIpError::ZeroAddress),
            FuncIpPlan::RewriteConstant { addr, .. } => Ok(FuncIpGlobals {
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
