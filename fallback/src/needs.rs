//! Further needs on the same mechanism as [`crate::func_ip`]: each is a list of
//! strategies, best first, and the probe answer that decides each.
use probe::{AttachContext, FeatureSource, Helper, MapType, Misc, ProgramType};

use crate::strategy::{Need, Refusal, runnable_if};

/// Getting events to user space: the ring buffer (5.8) or the per-CPU perf buffer.
pub struct EventOutput;

/// The strategies of [`EventOutput`], best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutputStrategy {
    /// `BPF_MAP_TYPE_RINGBUF` (5.8): one buffer shared by all CPUs, events kept in order.
    RingBuf,
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY` (4.3): one buffer per CPU.
    PerfBuffer,
}

impl Need for EventOutput {
    const NAME: &'static str = "event_output";
    const DESCRIPTION: &'static str = "send events to user space";
    type Strategy = EventOutputStrategy;
    fn candidates() -> &'static [Self::Strategy] {
        &[
            EventOutputStrategy::RingBuf,
            EventOutputStrategy::PerfBuffer,
        ]
    }
    fn name(s: Self::Strategy) -> &'static str {
        match s {
            EventOutputStrategy::RingBuf => "ringbuf",
            EventOutputStrategy::PerfBuffer => "perf_buffer",
        }
    }
    fn runnable(src: &dyn FeatureSource, s: Self::Strategy) -> Result<String, Refusal> {
        match s {
            EventOutputStrategy::RingBuf => {
                runnable_if(src.map_type(MapType::RINGBUF), "map type ringbuf")
            }
            EventOutputStrategy::PerfBuffer => runnable_if(
                src.map_type(MapType::PERF_EVENT_ARRAY),
                "map type perf_event_array",
            ),
        }
    }
}

/// Reading kernel memory from a kprobe: bpf_probe_read_kernel (5.5) or bpf_probe_read.
pub struct KernelRead;

/// The strategies of [`KernelRead`], best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelReadStrategy {
    /// `bpf_probe_read_kernel` (5.5): kernel addresses only.
    ProbeReadKernel,
    /// `bpf_probe_read`: the older helper, for kernel and user memory alike (ambiguous
    /// where the two address spaces overlap).
    ProbeRead,
}

impl Need for KernelRead {
    const NAME: &'static str = "kernel_read";
    const DESCRIPTION: &'static str = "read kernel memory from a kprobe";
    type Strategy = KernelReadStrategy;
    fn candidates() -> &'static [Self::Strategy] {
        &[
            KernelReadStrategy::ProbeReadKernel,
            KernelReadStrategy::ProbeRead,
        ]
    }
    fn name(s: Self::Strategy) -> &'static str {
        match s {
            KernelReadStrategy::ProbeReadKernel => "bpf_probe_read_kernel",
            KernelReadStrategy::ProbeRead => "bpf_probe_read",
        }
    }
    fn runnable(src: &dyn FeatureSource, s: Self::Strategy) -> Result<String, Refusal> {
        let h = match s {
            KernelReadStrategy::ProbeReadKernel => Helper::PROBE_READ_KERNEL,
            KernelReadStrategy::ProbeRead => {
                Helper(aya_obj::generated::bpf_func_id::BPF_FUNC_probe_read as u32)
            }
        };
        runnable_if(
            src.helper(AttachContext::KPROBE, h),
            &format!("{h} in kprobe"),
        )
    }
}

/// Attaching to many kernel functions: one kprobe_multi link (5.18) or one kprobe each.
pub struct ManyKprobes;

/// The strategies of [`ManyKprobes`], best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManyKprobesStrategy {
    /// One `BPF_LINK_TYPE_KPROBE_MULTI` link for every function (5.18).
    KprobeMulti,
    /// One kprobe per function: slower to attach, but on every kernel with kprobes.
    KprobeLoop,
}

impl Need for ManyKprobes {
    const NAME: &'static str = "many_kprobes";
    const DESCRIPTION: &'static str = "attach one program to many kernel functions";
    type Strategy = ManyKprobesStrategy;
    fn candidates() -> &'static [Self::Strategy] {
        &[
            ManyKprobesStrategy::KprobeMulti,
            ManyKprobesStrategy::KprobeLoop,
        ]
    }
    fn name(s: Self::Strategy) -> &'static str {
        match s {
            ManyKprobesStrategy::KprobeMulti => "kprobe_multi",
            ManyKprobesStrategy::KprobeLoop => "kprobe_loop",
        }
    }
    fn runnable(src: &dyn FeatureSource, s: Self::Strategy) -> Result<String, Refusal> {
        match s {
            ManyKprobesStrategy::KprobeMulti => {
                runnable_if(src.misc(Misc::KprobeMulti), "kprobe_multi links")
            }
            ManyKprobesStrategy::KprobeLoop => {
                runnable_if(src.program_type(ProgramType::KPROBE), "program type kprobe")
            }
        }
    }
}
