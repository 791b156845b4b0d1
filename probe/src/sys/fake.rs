//! The replaceable door, for unit tests: a fake sees each call's command and the fields a
//! probe sets, may write a verifier log, and answers with an errno or a (real, harmless)
//! file descriptor.
use std::{cell::RefCell, os::fd::IntoRawFd};

use super::{Errno, bpf_attr, bpf_cmd, bpf_insn};

type Door = Box<dyn FnMut(&mut Call<'_>) -> Result<i64, Errno>>;

thread_local! {
    static DOOR: RefCell<Option<Door>> = const { RefCell::new(None) };
}

/// One call as the fake sees it.
pub(crate) struct Call<'a> {
    pub cmd: bpf_cmd,
    attr: &'a mut bpf_attr,
}

impl Call<'_> {
    /// BPF_PROG_LOAD's program type.
    pub fn prog_type(&self) -> u32 {
        // SAFETY: reading a plain integer of the union member BPF_PROG_LOAD uses.
        unsafe { self.attr.__bindgen_anon_3.prog_type }
    }
    /// The token fd a BPF_PROG_LOAD, BPF_MAP_CREATE or BPF_BTF_LOAD carries, when its
    /// `BPF_F_TOKEN_FD` flag is set.
    pub fn token(&self) -> Option<i32> {
        use aya_obj::generated::bpf_cmd::*;
        // SAFETY: reading plain integers of the union member the command uses.
        let (flags, fd) = unsafe {
            match self.cmd {
                BPF_PROG_LOAD => (
                    self.attr.__bindgen_anon_3.prog_flags,
                    self.attr.__bindgen_anon_3.prog_token_fd,
                ),
                BPF_MAP_CREATE => (
                    self.attr.__bindgen_anon_1.map_flags,
                    self.attr.__bindgen_anon_1.map_token_fd,
                ),
                BPF_BTF_LOAD => (
                    self.attr.__bindgen_anon_7.btf_flags,
                    self.attr.__bindgen_anon_7.btf_token_fd,
                ),
                _ => return None,
            }
        };
        (flags & super::token::FLAG != 0).then_some(fd)
    }
    /// BPF_PROG_LOAD's verifier log level.
    pub fn log_level(&self) -> u32 {
        // SAFETY: reading a plain integer of the union member BPF_PROG_LOAD uses.
        unsafe { self.attr.__bindgen_anon_3.log_level }
    }
    /// BPF_PROG_LOAD's instructions.
    pub fn insns(&self) -> &[bpf_insn] {
        // SAFETY: prog_load stores a pointer to and the length of a slice borrowed for
        // the whole call.
        unsafe {
            let u = &self.attr.__bindgen_anon_3;
            std::slice::from_raw_parts(u.insns as *const bpf_insn, u.insn_cnt as usize)
        }
    }
    /// Writes `text` as the verifier's log, if the caller asked for one.
    pub fn write_log(&mut self, text: &str) {
        // SAFETY: prog_load stores a pointer to and the size of a buffer it borrows
        // mutably for the whole call; we write at most size - 1 bytes and a NUL.
        unsafe {
            let u = &self.attr.__bindgen_anon_3;
            if u.log_buf == 0 || u.log_size == 0 {
                return;
            }
            let buf = std::slice::from_raw_parts_mut(u.log_buf as *mut u8, u.log_size as usize);
            let n = text.len().min(buf.len() - 1);
            buf[..n].copy_from_slice(&text.as_bytes()[..n]);
            buf[n] = 0;
        }
    }
}

/// A new file descriptor for a fake success (of /dev/null: closing it harms nothing).
pub(crate) fn fd() -> Result<i64, Errno> {
    Ok(std::fs::File::open("/dev/null")
        .expect("/dev/null")
        .into_raw_fd() as i64)
}

/// Replaces the door on this thread until the guard is dropped.
pub(crate) fn replace(f: impl FnMut(&mut Call<'_>) -> Result<i64, Errno> + 'static) -> Guard {
    DOOR.with(|d| *d.borrow_mut() = Some(Box::new(f)));
    Guard
}

pub(crate) struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        DOOR.with(|d| *d.borrow_mut() = None);
    }
}

pub(super) fn call(cmd: bpf_cmd, attr: &mut bpf_attr) -> Option<Result<i64, Errno>> {
    DOOR.with(|d| {
        let mut door = d.borrow_mut();
        let f = door.as_mut()?;
        Some(f(&mut Call { cmd, attr }))
    })
}
