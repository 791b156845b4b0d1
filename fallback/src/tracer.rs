//! A ready tracer of one BPF program's calls, built on [`crate::func_ip`] and the
//! programs of [`ebpf::FUNC_IP`]: chooses the strategy, rewrites the object's globals,
//! attaches fentry and fexit to the target, and hands back decoded events. This is what
//! a pwru-style `--filter-trace-tc` needs from the framework; see `ebpf/examples`.
use std::{
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, RingBuf},
    programs::SchedClassifier,
};
use ebpf::Event;
use probe::FeatureSource;
use serde::Serialize;

use crate::{
    func_ip::{FuncIpError, FuncIpGlobals, FuncIpPlan, FuncIpStrategy},
    prog_addr::{self, AddrError},
    strategy::{Choice, Need},
    trace::{self, Trace, TraceError, TraceSpec},
};

pub use crate::trace::KALLSYMS;

/// Why the bundled tracer could not run.
#[derive(Debug, thiserror::Error)]
pub enum TracerError {
    /// No strategy, or no address.
    #[error(transparent)]
    Plan(#[from] FuncIpError),
    /// The generic path refused.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// aya could not load one of the bundled objects.
    #[error("cannot load the bundled object: {0}")]
    Load(String),
    /// The target's address could not be resolved.
    #[error(transparent)]
    Address(#[from] AddrError),
    /// BPF_PROG_TEST_RUN failed.
    #[error("cannot run the target with BPF_PROG_TEST_RUN: {0}")]
    TestRun(probe::sys::Errno),
}

/// How to build a [`Tracer`].
#[derive(Clone, Debug)]
pub struct TracerOptions {
    /// A strategy to use instead of the best one the kernel allows.
    pub force: Option<FuncIpStrategy>,
    /// Where to read kallsyms from.
    pub kallsyms: PathBuf,
    /// Also attach fexit (return values).
    pub fexit: bool,
}

impl Default for TracerOptions {
    fn default() -> Self {
        TracerOptions {
            force: None,
            kallsyms: PathBuf::from(KALLSYMS),
            fexit: true,
        }
    }
}

fn vmlinux_btf() -> Option<aya::Btf> {
    aya::Btf::from_sys_fs().ok()
}

/// `offsetof(struct sk_buff, len)` from the kernel's BTF; 0 (unknown) without BTF. Read
/// once per process: it cannot change while the kernel runs, and the BTF is 5-6 MB.
pub fn skb_len_offset() -> u32 {
    static OFFSET: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        probe::btf::KernelBtf::from_sys_fs()
            .ok()
            .and_then(|b| b.member_offset("sk_buff", "len"))
            .unwrap_or(0)
    })
}

/// Loads [`ebpf::FUNC_IP`] with aya, the strategy's globals rewritten (for `self_check`).
fn load_object(globals: &FuncIpGlobals) -> Result<Ebpf, TracerError> {
    let btf = vmlinux_btf();
    let skb_len_off = skb_len_offset();
    let mut loader = EbpfLoader::new();
    loader.btf(btf.as_ref());
    globals.apply(&mut loader);
    loader.override_global("skb_len_off", &skb_len_off, true);
    loader
        .load(ebpf::FUNC_IP)
        .map_err(|e| TracerError::Load(describe(&e)))
}

fn drain(events: &mut RingBuf<MapData>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(item) = events.next() {
        if let Some(e) = Event::parse(&item) {
            out.push(e);
        }
    }
    out
}

/// fentry (and fexit) of [`ebpf::FUNC_IP`] on one BPF program, reporting its calls: the
/// generic [`trace::trace`] with the bundled object.
pub struct Tracer {
    /// The strategy and why.
    pub choice: Choice<FuncIpPlan>,
    /// The target's id.
    pub target_id: u32,
    /// The traced function.
    pub target_name: String,
    events: RingBuf<MapData>,
    _trace: Trace,
}

impl Tracer {
    /// Chooses the strategy for `target` on this kernel, loads and attaches.
    pub fn attach(
        src: &dyn FeatureSource,
        target: BorrowedFd<'_>,
        opts: &TracerOptions,
    ) -> Result<Self, TracerError> {
        let programs: &[&str] = if opts.fexit {
            &["trace_entry", "trace_exit"]
        } else {
            &["trace_entry"]
        };
        let mut spec = TraceSpec::new(ebpf::FUNC_IP, programs)
            .global("skb_len_off", &skb_len_offset().to_ne_bytes());
        spec.force = opts.force;
        spec.kallsyms = opts.kallsyms.clone();
        let mut t = trace::trace(src, &spec, &[target])?;
        let map = t
            .maps
            .take("events")
            .ok_or_else(|| TracerError::Load("the bundled object has no events map".into()))?;
        let events = RingBuf::try_from(map).map_err(|e| TracerError::Load(describe(&e)))?;
        let first = t.targets.remove(0);
        let (choice, target_id, target_name) = (first.choice.clone(), first.id, first.name.clone());
        t.targets.insert(0, first);
        Ok(Tracer {
            choice,
            target_id,
            target_name,
            events,
            _trace: t,
        })
    }

    /// The events recorded since the last call.
    pub fn events(&mut self) -> Vec<Event> {
        drain(&mut self.events)
    }
}

/// Loads the classifier `name` of `ebpf` and returns its fd.
fn load_classifier<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<BorrowedFd<'a>, TracerError> {
    let prog: &mut SchedClassifier = ebpf
        .program_mut(name)
        .ok_or_else(|| TracerError::Load(format!("no {name} program")))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| TracerError::Load(e.to_string()))?;
    prog.load().map_err(|e| TracerError::Load(describe(&e)))?;
    let prog: &'a SchedClassifier = prog;
    Ok(prog
        .fd()
        .map_err(|e| TracerError::Load(describe(&e)))?
        .as_fd())
}

/// An error and its sources in one line, with the fix for a refusal by privileges.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut eperm = false;
    let mut cur = e.source();
    while let Some(s) = cur {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            eperm |= io.raw_os_error() == Some(libc::EPERM);
        }
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cur = s.source();
    }
    if eperm {
        text.push_str(
            " (EPERM: loading BPF programs needs CAP_BPF with CAP_NET_ADMIN and CAP_PERFMON, \
             or CAP_SYS_ADMIN; run as root)",
        );
    }
    text
}

/// Rewrites the globals for `strategy`, runs the object's `self_check` classifier once and
/// returns what it reported: the injection checked without fentry.
pub fn self_check(strategy: FuncIpPlan) -> Result<Event, TracerError> {
    let globals = FuncIpGlobals::new(strategy)?;
    let mut ebpf = load_object(&globals)?;
    run_packet(load_classifier(&mut ebpf, "self_check")?)?;
    let map = ebpf
        .take_map("events")
        .ok_or_else(|| TracerError::Load("no events map".into()))?;
    let mut events = RingBuf::try_from(map).map_err(|e| TracerError::Load(describe(&e)))?;
    drain(&mut events)
        .into_iter()
        .next()
        .ok_or_else(|| TracerError::Load("self_check reported nothing".into()))
}

/// Runs a program once on a zeroed 64-byte Ethernet frame.
pub fn run_packet(prog: BorrowedFd<'_>) -> Result<u32, TracerError> {
    probe::sys::prog_test_run(prog, &[0u8; 64]).map_err(TracerError::TestRun)
}

/// A throw-away target: [`ebpf::TC_TARGET`] loaded (with its BTF) and nothing else.
pub struct ThrowawayTarget {
    _ebpf: Ebpf,
    /// The loaded `tc_target` classifier, to trace and to run.
    pub fd: OwnedFd,
}

impl ThrowawayTarget {
    /// Loads it; it is unloaded when dropped, as nothing attaches it.
    pub fn load() -> Result<Self, TracerError> {
        let btf = vmlinux_btf();
        let mut ebpf = EbpfLoader::new()
            .btf(btf.as_ref())
            .load(ebpf::TC_TARGET)
            .map_err(|e| TracerError::Load(describe(&e)))?;
        let fd = load_classifier(&mut ebpf, "tc_target")?
            .try_clone_to_owned()
            .map_err(|e| TracerError::Load(describe(&e)))?;
        Ok(ThrowawayTarget { _ebpf: ebpf, fd })
    }
}

/// One strategy's run in a calibration.
#[derive(Clone, Debug, Serialize)]
pub struct CalibrationRun {
    /// The func_ip strategy's name.
    pub strategy: &'static str,
    /// The IPs the tracer reported (entry and exit).
    pub reported: Vec<u64>,
    /// Why it could not run on this kernel; `None` when it ran.
    pub error: Option<String>,
}

/// Both paths against one throw-away target: they must report its true address.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    /// The target's true address, which every run must report.
    pub target_addr: u64,
    /// Where that address was read.
    pub target_addr_source: prog_addr::AddrSource,
    /// One per strategy: the helper, then the constant rewrite.
    pub runs: Vec<CalibrationRun>,
}

impl Calibration {
    /// `Some(true)` when every run that could run reported the target's address, and at
    /// least one could; `None` when none could run.
    pub fn agrees(&self) -> Option<bool> {
        let ran: Vec<&CalibrationRun> = self.runs.iter().filter(|r| r.error.is_none()).collect();
        if ran.is_empty() {
            return None;
        }
        Some(
            ran.iter().all(|r| {
                !r.reported.is_empty() && r.reported.iter().all(|ip| *ip == self.target_addr)
            }),
        )
    }
}

/// Runs every func_ip strategy the kernel allows against a throw-away target.
pub fn calibrate(src: &dyn FeatureSource, kallsyms: &Path) -> Result<Calibration, TracerError> {
    let target = ThrowawayTarget::load()?;
    let addr = prog_addr::resolve_fd(target.fd.as_fd(), kallsyms)?;
    let mut runs = Vec::new();
    for kind in [FuncIpStrategy::Helper, FuncIpStrategy::RewriteConstant] {
        let opts = TracerOptions {
            force: Some(kind),
            kallsyms: kallsyms.to_path_buf(),
            fexit: true,
        };
        let run = Tracer::attach(src, target.fd.as_fd(), &opts).and_then(|mut t| {
            run_packet(target.fd.as_fd())?;
            Ok(t.events().into_iter().map(|e| e.ip).collect())
        });
        runs.push(match run {
            Ok(reported) => CalibrationRun {
                strategy: crate::func_ip::FuncIp::name(kind),
                reported,
                error: None,
            },
            Err(e) => CalibrationRun {
                strategy: crate::func_ip::FuncIp::name(kind),
                reported: Vec::new(),
                error: Some(e.to_string()),
            },
        });
    }
    Ok(Calibration {
        target_addr: addr.addr,
        target_addr_source: addr.source,
        runs,
    })
}
