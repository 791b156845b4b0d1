//! The one door to the kernel.
//!
//! Every raw `bpf(2)` call of this crate goes through `bpf` in this module (and is counted
//! by [`syscall_count`]; aya's own loader, which the tracer in `fallback` uses, makes its
//! calls without us and is not counted), and this is the only module that contains
//! `unsafe` (the crate root denies it elsewhere). In unit tests the door can be replaced
//! (`fake::replace`), as aya's `override_syscall` does, so classifiers and the answer
//! logic are tested without root. Everything
//! handed back to callers is safe: file descriptors are [`OwnedFd`]s, errors are [`Errno`]s
//! that keep the raw number, and verifier logs are `String`s.
//!
//! The UAPI types (`bpf_attr`, `bpf_insn`, `bpf_prog_info`, …) come from
//! `aya_obj::generated`, never from hand-copied numbers.
#![allow(unsafe_code)]

use std::{
    ffi::CStr,
    fmt, io, mem,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    sync::atomic::{AtomicU8, AtomicU64, Ordering},
};

use aya_obj::generated::{
    bpf_attach_type, bpf_attr, bpf_cmd, bpf_func_info, bpf_insn, bpf_line_info,
};

/// ENOTSUPP: the kernel-internal "operation not supported" (524), which the verifier returns
/// for helpers it knows but refuses in a context. libc has no name for it.
pub const ENOTSUPP: i32 = 524;

/// An errno returned by `bpf(2)`, kept as the raw number so nothing is lost on the way to a
/// report. Compare with the `libc::E*` constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// The symbolic name (`EINVAL`, `ENOTSUPP`, …), as users grep for it.
    pub fn name(self) -> String {
        match self.0 {
            ENOTSUPP => "ENOTSUPP".to_string(),
            n => {
                let e = nix::errno::Errno::from_raw(n);
                if e == nix::errno::Errno::UnknownErrno {
                    format!("errno {n}")
                } else {
                    format!("{e:?}")
                }
            }
        }
    }

    fn last() -> Self {
        Errno(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let desc = match self.0 {
            ENOTSUPP => "operation not supported (kernel-internal ENOTSUPP)".to_string(),
            n => io::Error::from_raw_os_error(n).to_string(),
        };
        write!(f, "{} ({desc})", self.name())
    }
}

impl std::error::Error for Errno {}

/// A failed load, with what the verifier said (empty when no log was asked for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// What `bpf(2)` returned.
    pub errno: Errno,
    /// The verifier's (or BTF checker's) log, up to the first NUL.
    pub log: String,
}

static BPF_SYSCALLS: AtomicU64 = AtomicU64::new(0);

/// How many `bpf(2)` calls this process has made through this module. Tests use it to check
/// that a cached answer costs no syscall; benchmarks use it to count loads.
pub fn syscall_count() -> u64 {
    BPF_SYSCALLS.load(Ordering::Relaxed)
}

fn zeroed_attr() -> bpf_attr {
    // SAFETY: bpf_attr is a C union of plain integers and arrays of integers, for which the
    // all-zero bit pattern is valid (and is what the kernel expects in unused fields).
    unsafe { mem::zeroed() }
}

/// The raw syscall. Every other function here builds a `bpf_attr` and calls this.
fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> Result<i64, Errno> {
    BPF_SYSCALLS.fetch_add(1, Ordering::Relaxed);
    #[cfg(test)]
    if let Some(r) = fake::call(cmd, attr) {
        return r;
    }
    // SAFETY: `attr` is a valid, initialised bpf_attr borrowed for the whole call, and we pass
    // its exact size; every pointer stored inside it by our callers points to memory that
    // outlives this call (they are borrowed in the caller's frame).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut bpf_attr,
            mem::size_of::<bpf_attr>(),
        )
    };
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

fn bpf_fd(cmd: bpf_cmd, attr: &mut bpf_attr) -> Result<OwnedFd, Errno> {
    let fd = bpf(cmd, attr)?;
    // SAFETY: on success these commands return a new file descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn log_to_string(log: &[u8]) -> String {
    let end = memchr::memchr(0, log).unwrap_or(log.len());
    String::from_utf8_lossy(&log[..end]).into_owned()
}

fn copy_name(dst: &mut [libc::c_char; 16], name: &str) {
    // The kernel accepts [A-Za-z0-9_.] and needs a NUL within 16 bytes.
    for (d, b) in dst.iter_mut().zip(
        name.bytes()
            .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            .take(15),
    ) {
        *d = b as libc::c_char;
    }
}

/// Everything BPF_PROG_LOAD takes that this workspace uses.
#[derive(Clone, Copy)]
pub struct ProgLoad<'a> {
    /// A `bpf_prog_type` value.
    pub prog_type: u32,
    /// A `bpf_attach_type` value (4.17); some program types are verified per attach type.
    pub expected_attach_type: u32,
    /// The program, verbatim.
    pub insns: &'a [bpf_insn],
    /// "GPL" by default: GPL-only helpers are refused to other licenses.
    pub license: &'a CStr,
    /// Only kprobe programs on kernels before 5.0 look at it.
    pub kern_version: u32,
    /// `BPF_F_*` load flags (strict alignment, sleepable, …).
    pub prog_flags: u32,
    /// Left empty by probes: kernels before 4.15 reject a name.
    pub name: &'a str,
    /// BTF id of the attach target (5.5): in vmlinux, in `attach_prog_fd`'s BTF, or in
    /// `attach_btf_obj_fd`'s.
    pub attach_btf_id: u32,
    /// fentry/fexit on a module's function (5.11): the module's BTF object.
    pub attach_btf_obj_fd: Option<BorrowedFd<'a>>,
    /// fentry/fexit/freplace on a BPF program: the target program.
    pub attach_prog_fd: Option<BorrowedFd<'a>>,
    /// The program's own BTF (5.0), which `func_info` refers to.
    pub prog_btf_fd: Option<BorrowedFd<'a>>,
    /// One record per function (BTF FUNC id and first instruction): needs `prog_btf_fd`.
    pub func_info: &'a [bpf_func_info],
    /// Source lines for the verifier log and `bpftool prog dump`: needs `func_info`.
    pub line_info: &'a [bpf_line_info],
    /// BTF fds that kfunc calls index with their `off` (module kfuncs; 5.13). Index 0 is
    /// never read (`off` 0 means vmlinux).
    pub fd_array: &'a [i32],
    /// What the verifier writes into the log, when the load has one.
    pub log_level: LogLevel,
}

/// What the verifier writes into a load's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogLevel {
    /// Every instruction it verifies, with the registers' state, then its refusal
    /// (`BPF_LOG_LEVEL1`): what a developer reads when their program is refused.
    #[default]
    Instructions,
    /// Only its refusal and its statistics (`BPF_LOG_STATS`, 5.2): what a probe classifies.
    /// Formatting the trace is a fifth of a probe load's cost in the kernel. Kernels that
    /// refuse this level alone get [`LogLevel::Instructions`].
    Stats,
}

/// Whether the kernel takes `BPF_LOG_STATS` without `BPF_LOG_LEVEL1`: [`STATS_UNKNOWN`],
/// [`STATS_TAKEN`] or [`STATS_REFUSED`] (before 5.2 the level mask has no stats bit: EINVAL
/// before any log). Per thread in unit tests, where each test's fake door is a kernel of
/// its own.
#[cfg(not(test))]
static STATS_LEVEL: AtomicU8 = AtomicU8::new(STATS_UNKNOWN);
#[cfg(test)]
thread_local! {
    static STATS_LEVEL: AtomicU8 = const { AtomicU8::new(STATS_UNKNOWN) };
}
const STATS_UNKNOWN: u8 = 0;
const STATS_TAKEN: u8 = 1;
const STATS_REFUSED: u8 = 2;

fn stats_level() -> u8 {
    #[cfg(not(test))]
    return STATS_LEVEL.load(Ordering::Relaxed);
    #[cfg(test)]
    return STATS_LEVEL.with(|s| s.load(Ordering::Relaxed));
}

fn set_stats_level(v: u8) {
    #[cfg(not(test))]
    STATS_LEVEL.store(v, Ordering::Relaxed);
    #[cfg(test)]
    STATS_LEVEL.with(|s| s.store(v, Ordering::Relaxed));
}

impl<'a> ProgLoad<'a> {
    /// A GPL program with no name, flags, attach target or BTF: what most probes load.
    pub fn new(prog_type: u32, insns: &'a [bpf_insn]) -> Self {
        ProgLoad {
            prog_type,
            expected_attach_type: 0,
            insns,
            license: c"GPL",
            kern_version: 0,
            prog_flags: 0,
            name: "",
            attach_btf_id: 0,
            attach_btf_obj_fd: None,
            attach_prog_fd: None,
            prog_btf_fd: None,
            func_info: &[],
            line_info: &[],
            fd_array: &[],
            log_level: LogLevel::Instructions,
        }
    }
}

/// BPF_PROG_LOAD. With `log`, the verifier writes its log there (at `p.log_level`) and a
/// failure carries it; without, the load is as cheap as the kernel allows.
pub fn prog_load(p: &ProgLoad<'_>, log: Option<&mut [u8]>) -> Result<OwnedFd, LoadError> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member that BPF_PROG_LOAD reads.
    let u = unsafe { &mut attr.__bindgen_anon_3 };
    u.prog_type = p.prog_type;
    u.expected_attach_type = p.expected_attach_type;
    u.insns = p.insns.as_ptr() as u64;
    u.insn_cnt = p.insns.len() as u32;
    u.license = p.license.as_ptr() as u64;
    u.kern_version = p.kern_version;
    u.prog_flags = p.prog_flags;
    copy_name(&mut u.prog_name, p.name);
    u.attach_btf_id = p.attach_btf_id;
    // One union field: a program fd, or (5.11) a BTF object fd.
    if let Some(fd) = p.attach_prog_fd.or(p.attach_btf_obj_fd) {
        u.__bindgen_anon_1.attach_prog_fd = fd.as_raw_fd() as u32;
    }
    if let Some(fd) = p.prog_btf_fd {
        u.prog_btf_fd = fd.as_raw_fd() as u32;
    }
    if !p.func_info.is_empty() {
        u.func_info_rec_size = mem::size_of::<bpf_func_info>() as u32;
        u.func_info = p.func_info.as_ptr() as u64;
        u.func_info_cnt = p.func_info.len() as u32;
    }
    if !p.fd_array.is_empty() {
        u.fd_array = p.fd_array.as_ptr() as u64;
    }
    if !p.line_info.is_empty() {
        u.line_info_rec_size = mem::size_of::<bpf_line_info>() as u32;
        u.line_info = p.line_info.as_ptr() as u64;
        u.line_info_cnt = p.line_info.len() as u32;
    }
    if let Some(t) = token::current() {
        u.prog_flags |= token::FLAG;
        u.prog_token_fd = t;
    }
    let Some(buf) = log else {
        return bpf_fd(bpf_cmd::BPF_PROG_LOAD, &mut attr).map_err(|errno| LoadError {
            errno,
            log: String::new(),
        });
    };
    // The kernel NUL-terminates whatever it writes, from the buffer's start: an empty
    // first byte is all a reused buffer needs (zeroing 64 KiB was ~2 µs of every load).
    if let Some(b) = buf.first_mut() {
        *b = 0;
    }
    u.log_size = buf.len() as u32;
    u.log_buf = buf.as_mut_ptr() as u64;
    let stats = p.log_level == LogLevel::Stats && stats_level() != STATS_REFUSED;
    u.log_level = if stats { 4 } else { 1 };
    let mut result = bpf_fd(bpf_cmd::BPF_PROG_LOAD, &mut attr);
    // The verifier ran at the level asked: the program loaded, or it wrote something.
    let spoke = |r: &Result<OwnedFd, Errno>, buf: &[u8]| r.is_ok() || buf.first() != Some(&0);
    if stats && stats_level() == STATS_UNKNOWN {
        if spoke(&result, buf) {
            set_stats_level(STATS_TAKEN);
        } else if matches!(result, Err(Errno(libc::EINVAL))) {
            // EINVAL before any word: the level, or something the kernel checks before
            // the verifier (an unknown program type). The trace level tells them apart.
            // Other errors without a word (EPERM) say nothing of the level.
            attr.__bindgen_anon_3.log_level = 1;
            result = bpf_fd(bpf_cmd::BPF_PROG_LOAD, &mut attr);
            if spoke(&result, buf) {
                set_stats_level(STATS_REFUSED);
            }
        }
    }
    result.map_err(|errno| LoadError {
        errno,
        log: log_to_string(buf),
    })
}

/// Everything BPF_MAP_CREATE takes that the probes use.
#[derive(Clone, Copy, Default)]
pub struct MapCreate<'a> {
    /// A `bpf_map_type` value.
    pub map_type: u32,
    /// In bytes.
    pub key_size: u32,
    /// In bytes.
    pub value_size: u32,
    /// Capacity: 0 for cgroup storage; for ringbuf, bytes (a power of two, at least a page).
    pub max_entries: u32,
    /// `BPF_F_*` map flags (no-prealloc, mmapable, …).
    pub map_flags: u32,
    /// Map-in-map (4.12): a template for the inner maps.
    pub inner_map_fd: Option<BorrowedFd<'a>>,
    /// BTF describing key and value (4.18); required by spin locks, timers and kptrs.
    pub btf_fd: Option<BorrowedFd<'a>>,
    /// Key type in `btf_fd`.
    pub btf_key_type_id: u32,
    /// Value type in `btf_fd`.
    pub btf_value_type_id: u32,
    /// struct_ops maps (5.6): the kernel struct the value implements, in vmlinux BTF.
    pub btf_vmlinux_value_type_id: u32,
    /// Per-type extra (5.16), e.g. the bloom filter's number of hashes.
    pub map_extra: u64,
}

/// BPF_MAP_CREATE.
pub fn map_create(m: &MapCreate<'_>) -> Result<OwnedFd, Errno> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member that BPF_MAP_CREATE reads.
    let u = unsafe { &mut attr.__bindgen_anon_1 };
    u.map_type = m.map_type;
    u.key_size = m.key_size;
    u.value_size = m.value_size;
    u.max_entries = m.max_entries;
    u.map_flags = m.map_flags;
    if let Some(fd) = m.inner_map_fd {
        u.inner_map_fd = fd.as_raw_fd() as u32;
    }
    if let Some(fd) = m.btf_fd {
        u.btf_fd = fd.as_raw_fd() as u32;
    }
    u.btf_key_type_id = m.btf_key_type_id;
    u.btf_value_type_id = m.btf_value_type_id;
    u.btf_vmlinux_value_type_id = m.btf_vmlinux_value_type_id;
    u.map_extra = m.map_extra;
    if let Some(t) = token::current() {
        u.map_flags |= token::FLAG;
        u.map_token_fd = t;
    }
    bpf_fd(bpf_cmd::BPF_MAP_CREATE, &mut attr)
}

/// BPF_MAP_UPDATE_ELEM. `key` and `value` must have the map's key and value sizes.
pub fn map_update_elem(
    map: BorrowedFd<'_>,
    key: &[u8],
    value: &[u8],
    flags: u64,
) -> Result<(), Errno> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member that BPF_MAP_UPDATE_ELEM reads.
    let u = unsafe { &mut attr.__bindgen_anon_2 };
    u.map_fd = map.as_raw_fd() as u32;
    u.key = key.as_ptr() as u64;
    u.__bindgen_anon_1.value = value.as_ptr() as u64;
    u.flags = flags;
    bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// BPF_MAP_LOOKUP_ELEM into `value` (which must have the map's value size).
pub fn map_lookup_elem(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> Result<(), Errno> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member that BPF_MAP_LOOKUP_ELEM reads.
    let u = unsafe { &mut attr.__bindgen_anon_2 };
    u.map_fd = map.as_raw_fd() as u32;
    u.key = key.as_ptr() as u64;
    u.__bindgen_anon_1.value = value.as_mut_ptr() as u64;
    bpf(bpf_cmd::BPF_MAP_LOOKUP_ELEM, &mut attr).map(drop)
}

/// BPF_MAP_FREEZE (5.2): no more writes from user space.
pub fn map_freeze(map: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_2.map_fd = map.as_raw_fd() as u32;
    bpf(bpf_cmd::BPF_MAP_FREEZE, &mut attr).map(drop)
}

/// BPF_BTF_LOAD of a raw BTF blob (header + types + strings).
pub fn btf_load(data: &[u8], log: Option<&mut [u8]>) -> Result<OwnedFd, LoadError> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member that BPF_BTF_LOAD reads.
    let u = unsafe { &mut attr.__bindgen_anon_7 };
    u.btf = data.as_ptr() as u64;
    u.btf_size = data.len() as u32;
    if let Some(t) = token::current() {
        u.btf_flags |= token::FLAG;
        u.btf_token_fd = t;
    }
    let mut log = log;
    if let Some(buf) = log.as_deref_mut() {
        if let Some(b) = buf.first_mut() {
            *b = 0;
        }
        u.btf_log_level = 1;
        u.btf_log_size = buf.len() as u32;
        u.btf_log_buf = buf.as_mut_ptr() as u64;
    }
    bpf_fd(bpf_cmd::BPF_BTF_LOAD, &mut attr).map_err(|errno| LoadError {
        errno,
        log: log.map(|b| log_to_string(b)).unwrap_or_default(),
    })
}

/// What a probe asks of BPF_LINK_CREATE: the attach type and a target that may be
/// deliberately invalid (the errno then tells whether the kernel knows the link kind).
#[derive(Clone, Copy)]
pub struct LinkCreate<'a> {
    /// The loaded program to attach.
    pub prog: BorrowedFd<'a>,
    /// A raw fd or ifindex; probes pass -1 or 0 on purpose.
    pub target: i32,
    /// The link kind asked for.
    pub attach_type: bpf_attach_type,
    /// `BPF_F_*` link flags; probes pass 0.
    pub flags: u32,
}

/// BPF_LINK_CREATE (5.7) with a plain target.
pub fn link_create(l: &LinkCreate<'_>) -> Result<OwnedFd, Errno> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member that BPF_LINK_CREATE reads.
    let u = unsafe { &mut attr.link_create };
    u.__bindgen_anon_1.prog_fd = l.prog.as_raw_fd() as u32;
    u.__bindgen_anon_2.target_fd = l.target as u32;
    u.attach_type = l.attach_type as u32;
    u.flags = l.flags;
    bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut attr)
}

/// BPF_LINK_CREATE of a kprobe_multi link (5.18) on symbols by name.
pub fn link_create_kprobe_multi(prog: BorrowedFd<'_>, syms: &[&CStr]) -> Result<OwnedFd, Errno> {
    let ptrs: Vec<u64> = syms.iter().map(|s| s.as_ptr() as u64).collect();
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member that BPF_LINK_CREATE reads;
    // `ptrs` and the strings it points to outlive the call.
    let u = unsafe { &mut attr.link_create };
    u.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    u.attach_type = bpf_attach_type::BPF_TRACE_KPROBE_MULTI as u32;
    u.__bindgen_anon_3.kprobe_multi.cnt = ptrs.len() as u32;
    u.__bindgen_anon_3.kprobe_multi.syms = ptrs.as_ptr() as u64;
    bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut attr)
}

/// BPF_LINK_CREATE of a kprobe_multi link (5.18) on addresses; `retprobe` makes it a
/// kretprobe_multi (BPF_F_KPROBE_MULTI_RETURN).
pub fn link_create_kprobe_multi_addrs(
    prog: BorrowedFd<'_>,
    addrs: &[u64],
    retprobe: bool,
) -> Result<OwnedFd, Errno> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member that BPF_LINK_CREATE reads;
    // `addrs` outlives the call.
    let u = unsafe { &mut attr.link_create };
    u.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    u.attach_type = bpf_attach_type::BPF_TRACE_KPROBE_MULTI as u32;
    u.__bindgen_anon_3.kprobe_multi.flags = u32::from(retprobe); // BPF_F_KPROBE_MULTI_RETURN
    u.__bindgen_anon_3.kprobe_multi.cnt = addrs.len() as u32;
    u.__bindgen_anon_3.kprobe_multi.addrs = addrs.as_ptr() as u64;
    bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut attr)
}

/// BPF_LINK_CREATE of a uprobe_multi link (6.6).
pub fn link_create_uprobe_multi(
    prog: BorrowedFd<'_>,
    path: &CStr,
    offsets: &[u64],
) -> Result<OwnedFd, Errno> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member that BPF_LINK_CREATE reads;
    // `path` and `offsets` outlive the call.
    let u = unsafe { &mut attr.link_create };
    u.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    u.attach_type = bpf_attach_type::BPF_TRACE_UPROBE_MULTI as u32;
    u.__bindgen_anon_3.uprobe_multi.path = path.as_ptr() as u64;
    u.__bindgen_anon_3.uprobe_multi.offsets = offsets.as_ptr() as u64;
    u.__bindgen_anon_3.uprobe_multi.cnt = offsets.len() as u32;
    bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut attr)
}

/// BPF_RAW_TRACEPOINT_OPEN: attaches a raw tracepoint by name, or (name `None`) a tracing
/// program (fentry/fexit) at the target it was loaded for. Works from 5.5, before
/// BPF_LINK_CREATE learned tracing programs.
pub fn raw_tracepoint_open(prog: BorrowedFd<'_>, name: Option<&CStr>) -> Result<OwnedFd, Errno> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member BPF_RAW_TRACEPOINT_OPEN reads.
    let u = unsafe { &mut attr.raw_tracepoint };
    u.prog_fd = prog.as_raw_fd() as u32;
    u.name = name.map_or(0, |n| n.as_ptr() as u64);
    bpf_fd(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut attr)
}

/// perf_event_open(2) of a kprobe (or, with `retprobe_bit`, a kretprobe) on `symbol`,
/// through the kprobe PMU of type `pmu_type` (4.17): the kernel registers the probe here,
/// so the errno is the attach's verdict. Counting on every CPU of this process.
pub fn perf_event_open_kprobe(
    pmu_type: u32,
    retprobe_bit: Option<u32>,
    symbol: &CStr,
) -> Result<OwnedFd, Errno> {
    use aya_obj::generated::{PERF_FLAG_FD_CLOEXEC, perf_event_attr};
    // SAFETY: perf_event_attr is plain data; all-zero is its documented default.
    let mut attr: perf_event_attr = unsafe { mem::zeroed() };
    attr.type_ = pmu_type;
    attr.size = mem::size_of::<perf_event_attr>() as u32;
    attr.config = retprobe_bit.map_or(0, |b| 1u64 << b);
    attr.__bindgen_anon_3.config1 = symbol.as_ptr() as u64;
    attr.__bindgen_anon_4.config2 = 0;
    // SAFETY: `attr` and the string it points to outlive the call; the result is a new fd
    // or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const perf_event_attr,
            0,  // this process
            -1, // any CPU
            -1, // no group
            PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// PERF_EVENT_IOC_SET_BPF: runs `prog` on the perf event's hits.
pub fn perf_event_set_bpf(event: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> Result<(), Errno> {
    use aya_obj::generated::PERF_EVENT_IOC_SET_BPF;
    // SAFETY: an ioctl on an fd we borrow, with an integer argument.
    let r = unsafe {
        libc::ioctl(
            event.as_raw_fd(),
            PERF_EVENT_IOC_SET_BPF as _,
            prog.as_raw_fd(),
        )
    };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// A file's bytes: mapped read-only where the kernel allows it (vmlinux BTF from 6.16), else
/// read. sysfs hands out a binary attribute 4 KiB per `read`: 1350 calls for a 5.5 MB
/// vmlinux BTF, most of a cold query's time.
pub struct FileBytes {
    map: Option<(std::ptr::NonNull<u8>, usize)>,
    read: Vec<u8>,
}

// SAFETY: the mapping is private and read-only, owned by this value alone.
unsafe impl Send for FileBytes {}
// SAFETY: as above; shared references only read it.
unsafe impl Sync for FileBytes {}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self.map {
            // SAFETY: a live PROT_READ mapping of `len` bytes, unmapped only in drop.
            Some((ptr, len)) => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) },
            None => &self.read,
        }
    }
}

impl Drop for FileBytes {
    fn drop(&mut self) {
        if let Some((ptr, len)) = self.map {
            // SAFETY: the mapping this value made, unmapped once.
            unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
        }
    }
}

impl FileBytes {
    /// Into an owned vector (a copy when mapped).
    pub fn into_vec(mut self) -> Vec<u8> {
        match self.map {
            Some(_) => self.to_vec(),
            None => std::mem::take(&mut self.read),
        }
    }
}

/// Reads `path` whole, by a private read-only mapping where the file allows one (its size
/// known and non-zero), else by `read`.
pub fn read_file(path: &std::path::Path) -> io::Result<FileBytes> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len() as usize;
    if len > 0 {
        // SAFETY: a fresh private read-only mapping of an open file; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                f.as_raw_fd(),
                0,
            )
        };
        if p != libc::MAP_FAILED
            && let Some(ptr) = std::ptr::NonNull::new(p.cast::<u8>())
        {
            return Ok(FileBytes {
                map: Some((ptr, len)),
                read: Vec::new(),
            });
        }
    }
    let mut read = Vec::with_capacity(len);
    f.read_to_end(&mut read)?;
    Ok(FileBytes { map: None, read })
}

mod info;
pub use info::*;
pub mod token;

#[cfg(test)]
pub(crate) mod fake;
