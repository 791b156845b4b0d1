//! # bpf-features-ebpf: the BPF-side programs, compiled from C by clang at build time.
//!
//! - [`TC_TARGET`]: a tc classifier (`tc_target`) that serves as the traced program.
//! - [`FUNC_IP`]: fentry (`trace_entry`) and fexit (`trace_exit`) tracers that report, for
//!   each call of their target, the function IP by the chosen strategy (globals
//!   `use_helper` and `target_addr`), the return value and the skb with its length
//!   (global `skb_len_off`), through the ring buffer `events`; and `self_check`, a
//!   classifier that reports the rewritten globals.
#![deny(unsafe_code)]
#![warn(missing_docs)]

/// The ELF object of src/bpf/tc_target.bpf.c.
pub const TC_TARGET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tc_target.bpf.o"));
/// The ELF object of src/bpf/func_ip.bpf.c.
pub const FUNC_IP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/func_ip.bpf.o"));

/// The ELF object of src/bpf/kprobe_target.bpf.c: `k_tcp_connect` (kprobe on tcp_connect)
/// tail-calls `k_handler` through the prog array `jumps`; both record their first argument
/// in the array `seen` (slots 0 and 1).
pub const KPROBE_TARGET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kprobe_target.bpf.o"));
/// The ELF object of src/bpf/kprobe_tracer.bpf.c: fentry `regs_entry` and fexit `regs_exit`
/// for a kprobe program, reporting the IP (globals `use_helper`, `target_addr`) and the
/// traced call's first argument (globals `regs_di_off`, `read_directly`) through `events`.
pub const KPROBE_TRACER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kprobe_tracer.bpf.o"));

/// The ELF object of src/bpf/example_tracer.bpf.c: a tracer written as another project
/// would (fentry `on_entry`, fexit `on_exit`; globals `cfg_want_helper`, `cfg_traced_addr`,
/// `cfg_tag`; ring buffer `calls` of [`Call`], LRU hash `skbs_seen`, per-CPU hash
/// `call_counts` kept by a global subprogram; skb->len and skb->protocol read by CO-RE).
pub const EXAMPLE_TRACER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/example_tracer.bpf.o"));
/// The ELF object of src/bpf/extern_user.bpf.c: fentry `uses_extern` refers to an extern
/// ksym, which the library's loader must refuse by name.
pub const EXTERN_USER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/extern_user.bpf.o"));

/// The ELF object of src/bpf/loop_sum.bpf.c: the classifier `loop_sum` returns
/// 0 + 1 + … + (n − 1) (global `n`, at most 32) through the loop strategy in the global
/// `loop_strategy` (0 iterator kfuncs, 2 bounded loop, 3 unrolled); `loop_sum_callback`
/// through `bpf_loop`. Its kfuncs are weak externs.
pub const LOOP_SUM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/loop_sum.bpf.o"));

/// The ELF object of src/bpf/skb_tracer.bpf.c: a pwru-style skb tracer. `skb_fentry_N`
/// (fentry) and `skb_kprobe_N` (kprobe, kprobe_multi) for the skb in argument N = 1..5;
/// each load traces one function (global `func_index`) and counts skbs whose mark is the
/// global `want_mark` in the array `hits`.
pub const SKB_TRACER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/skb_tracer.bpf.o"));

/// One record of [`EXAMPLE_TRACER`]'s `calls` (`struct call` in example_tracer.bpf.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// The function IP, by the chosen strategy.
    pub ip: u64,
    /// The skb's kernel address.
    pub skb: u64,
    /// The traced program's return value (fexit), else 0.
    pub retval: u64,
    /// `skb->len`, read with BPF_CORE_READ.
    pub len: u32,
    /// `skb->protocol` (network byte order), read with BPF_CORE_READ.
    pub protocol: u16,
    /// Whether this is fexit.
    pub exit: bool,
    /// The `cfg_tag` global.
    pub tag: u32,
}

impl Call {
    /// Its size in the ring buffer.
    pub const SIZE: usize = 40;

    /// Decodes a ring-buffer record; `None` if it is too short.
    pub fn parse(b: &[u8]) -> Option<Call> {
        let u64_at = |o: usize| Some(u64::from_ne_bytes(b.get(o..o + 8)?.try_into().ok()?));
        let u32_at = |o: usize| Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?));
        let u16_at = |o: usize| Some(u16::from_ne_bytes(b.get(o..o + 2)?.try_into().ok()?));
        Some(Call {
            ip: u64_at(0)?,
            skb: u64_at(8)?,
            retval: u64_at(16)?,
            len: u32_at(24)?,
            protocol: u16_at(28)?,
            exit: u16_at(30)? != 0,
            tag: u32_at(32)?,
        })
    }
}

/// One record of the kprobe tracer's `events` (`struct event` in kprobe_tracer.bpf.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegsEvent {
    /// The function IP, by the chosen strategy.
    pub ip: u64,
    /// The traced program's return value (fexit), else 0.
    pub retval: u64,
    /// The `struct pt_regs *` the traced program got.
    pub regs: u64,
    /// `regs->di`: the traced kernel function's first argument.
    pub arg: u64,
    /// 0 entry, 1 exit, 2 `arg_entry` (a subprogram whose first argument is a number).
    pub kind: u32,
    /// Whether `ip` came from `bpf_get_func_ip` rather than the injected `target_addr`.
    pub used_helper: bool,
}

impl RegsEvent {
    /// Its size in the ring buffer.
    pub const SIZE: usize = 40;

    /// Decodes a ring-buffer record; `None` if it is too short.
    pub fn parse(b: &[u8]) -> Option<RegsEvent> {
        let u64_at = |o: usize| Some(u64::from_ne_bytes(b.get(o..o + 8)?.try_into().ok()?));
        let u32_at = |o: usize| Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?));
        Some(RegsEvent {
            ip: u64_at(0)?,
            retval: u64_at(8)?,
            regs: u64_at(16)?,
            arg: u64_at(24)?,
            kind: u32_at(32)?,
            used_helper: u32_at(36)? != 0,
        })
    }
}

/// [`Event::kind`] of a record from fentry (`trace_entry`).
pub const EVENT_ENTRY: u32 = 0;
/// [`Event::kind`] of a record from fexit (`trace_exit`).
pub const EVENT_EXIT: u32 = 1;
/// [`Event::kind`] of a record from the `self_check` classifier: `ip` is the injected
/// `target_addr` and `retval` is `use_helper`, so the rewrite is checked without fentry.
pub const EVENT_SELF_CHECK: u32 = 2;

/// One record of the `events` ring buffer (`struct event` in func_ip.bpf.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The function IP, by the chosen strategy (`target_addr` for [`EVENT_SELF_CHECK`]).
    pub ip: u64,
    /// The traced program's return value (fexit), else 0 (`use_helper` for
    /// [`EVENT_SELF_CHECK`]).
    pub retval: u64,
    /// The skb's kernel address.
    pub skb: u64,
    /// `skb->len`, read through the injected `skb_len_off` (0 when it was unknown).
    pub skb_len: u32,
    /// [`EVENT_ENTRY`], [`EVENT_EXIT`] or [`EVENT_SELF_CHECK`].
    pub kind: u32,
    /// Whether `ip` came from `bpf_get_func_ip` rather than the injected `target_addr`.
    pub used_helper: bool,
}

impl Event {
    /// Its size in the ring buffer.
    pub const SIZE: usize = 40;

    /// Decodes a ring-buffer record; `None` if it is too short.
    pub fn parse(b: &[u8]) -> Option<Event> {
        let u64_at = |o: usize| Some(u64::from_ne_bytes(b.get(o..o + 8)?.try_into().ok()?));
        let u32_at = |o: usize| Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?));
        Some(Event {
            ip: u64_at(0)?,
            retval: u64_at(8)?,
            skb: u64_at(16)?,
            skb_len: u32_at(24)?,
            kind: u32_at(28)?,
            used_helper: u32_at(32)? != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_bpf_elf() {
        for o in [
            TC_TARGET,
            FUNC_IP,
            KPROBE_TARGET,
            KPROBE_TRACER,
            EXAMPLE_TRACER,
            EXTERN_USER,
            LOOP_SUM,
            SKB_TRACER,
        ] {
            assert_eq!(&o[..4], b"\x7fELF");
            assert_eq!(u16::from_le_bytes([o[18], o[19]]), 247, "EM_BPF");
        }
    }

    #[test]
    fn events_decode() {
        let mut b = Vec::new();
        for v in [1u64, 2, 3] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        for v in [64u32, EVENT_EXIT, 1, 0] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(b.len(), Event::SIZE);
        let e = Event::parse(&b).unwrap();
        assert_eq!(
            (e.ip, e.retval, e.skb, e.skb_len, e.kind, e.used_helper),
            (1, 2, 3, 64, EVENT_EXIT, true)
        );
        assert!(Event::parse(&b[..30]).is_none());
    }
}
