//! Reading objects back: program info, object ids, BTF blobs, and test runs.
use std::{
    mem,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
};

use aya_obj::generated::{bpf_btf_info, bpf_cmd, bpf_func_info, bpf_prog_info};

use super::{Errno, bpf, bpf_fd, zeroed_attr};

/// The parts of `bpf_prog_info` the workspace reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgInfo {
    /// System-wide program id, as bpftool lists it.
    pub id: u32,
    /// A `bpf_prog_type` value.
    pub prog_type: u32,
    /// The program tag, as a number whose `{:016x}` is what kallsyms and bpftool print.
    pub tag: u64,
    /// `bpf_prog_info.name`: at most 15 characters (kallsyms has the full BTF name).
    pub name: String,
    /// The program's BTF object (0 without BTF); read it with [`btf_data_by_id`].
    pub btf_id: u32,
    /// Addresses of the JITed main program and each subprogram, in that order; zeros when
    /// kptr_restrict hides them; empty when the JIT is off.
    pub jited_ksyms: Vec<u64>,
    /// The BTF type id of the main function (`func_info[0]`), when the program has BTF.
    pub main_func_btf_id: Option<u32>,
}

fn obj_get_info(fd: BorrowedFd<'_>, info: *mut u8, len: usize) -> Result<(), Errno> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member BPF_OBJ_GET_INFO_BY_FD reads.
    let u = unsafe { &mut attr.info };
    u.bpf_fd = fd.as_raw_fd() as u32;
    u.info_len = len as u32;
    u.info = info as u64;
    bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr).map(drop)
}

fn zeroed_prog_info() -> bpf_prog_info {
    // SAFETY: bpf_prog_info is a C struct of integers; all zeros is valid and is what the
    // kernel expects in the fields we do not ask for.
    unsafe { mem::zeroed() }
}

/// BPF_OBJ_GET_INFO_BY_FD on a program, twice: once for the counts, once for the
/// `jited_ksyms` array (the exact address, no kallsyms scan needed).
pub fn prog_info(fd: BorrowedFd<'_>) -> Result<ProgInfo, Errno> {
    let mut info = zeroed_prog_info();
    obj_get_info(
        fd,
        (&mut info as *mut bpf_prog_info).cast(),
        mem::size_of::<bpf_prog_info>(),
    )?;
    let mut ksyms = vec![0u64; info.nr_jited_ksyms as usize];
    let mut funcs = vec![
        bpf_func_info {
            insn_off: 0,
            type_id: 0
        };
        info.nr_func_info as usize
    ];
    if !ksyms.is_empty() || !funcs.is_empty() {
        let mut again = zeroed_prog_info();
        again.nr_jited_ksyms = ksyms.len() as u32;
        again.jited_ksyms = ksyms.as_mut_ptr() as u64;
        if !funcs.is_empty() {
            again.nr_func_info = funcs.len() as u32;
            again.func_info_rec_size = mem::size_of::<bpf_func_info>() as u32;
            again.func_info = funcs.as_mut_ptr() as u64;
        }
        obj_get_info(
            fd,
            (&mut again as *mut bpf_prog_info).cast(),
            mem::size_of::<bpf_prog_info>(),
        )?;
        ksyms.truncate(again.nr_jited_ksyms as usize);
    }
    let name: Vec<u8> = info
        .name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok(ProgInfo {
        id: info.id,
        prog_type: info.type_,
        tag: u64::from_be_bytes(info.tag),
        name: String::from_utf8_lossy(&name).into_owned(),
        btf_id: info.btf_id,
        jited_ksyms: ksyms,
        main_func_btf_id: funcs.first().map(|f| f.type_id).filter(|id| *id != 0),
    })
}

/// Which object ids to walk with the *_GET_NEXT_ID commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjKind {
    /// Programs (4.13).
    Prog,
    /// Maps (4.13).
    Map,
    /// BTF objects (5.4).
    Btf,
    /// Links (5.8).
    Link,
}

/// Every id of one kind of BPF object currently loaded on the system (BPF_*_GET_NEXT_ID).
pub fn object_ids(kind: ObjKind) -> Result<Vec<u32>, Errno> {
    let cmd = match kind {
        ObjKind::Prog => bpf_cmd::BPF_PROG_GET_NEXT_ID,
        ObjKind::Map => bpf_cmd::BPF_MAP_GET_NEXT_ID,
        ObjKind::Btf => bpf_cmd::BPF_BTF_GET_NEXT_ID,
        ObjKind::Link => bpf_cmd::BPF_LINK_GET_NEXT_ID,
    };
    let mut ids = Vec::new();
    let mut start = 0u32;
    loop {
        let mut attr = zeroed_attr();
        attr.__bindgen_anon_6.__bindgen_anon_1.start_id = start;
        match bpf(cmd, &mut attr) {
            Ok(_) => {
                // SAFETY: the kernel filled next_id, a plain integer.
                start = unsafe { attr.__bindgen_anon_6.next_id };
                ids.push(start);
            }
            Err(Errno(libc::ENOENT)) => return Ok(ids),
            Err(e) => return Err(e),
        }
    }
}

/// BPF_PROG_GET_FD_BY_ID.
pub fn prog_fd_by_id(id: u32) -> Result<OwnedFd, Errno> {
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_6.__bindgen_anon_1.prog_id = id;
    bpf_fd(bpf_cmd::BPF_PROG_GET_FD_BY_ID, &mut attr)
}

/// BPF_BTF_GET_FD_BY_ID.
fn btf_fd_by_id(btf_id: u32) -> Result<OwnedFd, Errno> {
    let mut attr = zeroed_attr();
    attr.__bindgen_anon_6.__bindgen_anon_1.btf_id = btf_id;
    bpf_fd(bpf_cmd::BPF_BTF_GET_FD_BY_ID, &mut attr)
}

/// The raw BTF blob the kernel holds under `btf_id` (a program's BTF, say).
pub fn btf_data_by_id(btf_id: u32) -> Result<Vec<u8>, Errno> {
    let fd = btf_fd_by_id(btf_id)?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: bpf_btf_info is a C struct of integers; all zeros is valid.
        let mut info: bpf_btf_info = unsafe { mem::zeroed() };
        info.btf = buf.as_mut_ptr() as u64;
        info.btf_size = buf.len() as u32;
        obj_get_info(
            fd.as_fd(),
            (&mut info as *mut bpf_btf_info).cast(),
            mem::size_of::<bpf_btf_info>(),
        )?;
        if info.btf_size as usize > buf.len() {
            buf.resize(info.btf_size as usize, 0);
            continue;
        }
        buf.truncate(info.btf_size as usize);
        return Ok(buf);
    }
}

/// The kernel BTF object named `name` (a module's, such as `nf_conntrack`; 5.11), opened
/// by walking the BTF ids: the fd a module kfunc call needs in `fd_array`. `Ok(None)` when
/// no loaded BTF has that name.
pub fn kernel_btf_fd(name: &str) -> Result<Option<OwnedFd>, Errno> {
    for id in object_ids(ObjKind::Btf)? {
        // Freed between the walk and the open: not the one we look for.
        let Ok(fd) = btf_fd_by_id(id) else {
            continue;
        };
        let mut buf = [0u8; 64];
        // SAFETY: bpf_btf_info is a C struct of integers; all zeros is valid.
        let mut info: bpf_btf_info = unsafe { mem::zeroed() };
        info.name = buf.as_mut_ptr() as u64;
        info.name_len = buf.len() as u32;
        obj_get_info(
            fd.as_fd(),
            (&mut info as *mut bpf_btf_info).cast(),
            mem::size_of::<bpf_btf_info>(),
        )?;
        let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        if info.kernel_btf != 0 && &buf[..len] == name.as_bytes() {
            return Ok(Some(fd));
        }
    }
    Ok(None)
}

/// BPF_PROG_TEST_RUN with a packet; returns the program's return value.
pub fn prog_test_run(prog: BorrowedFd<'_>, data: &[u8]) -> Result<u32, Errno> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integer fields of the union member BPF_PROG_TEST_RUN reads;
    // `data` outlives the call.
    let u = unsafe { &mut attr.test };
    u.prog_fd = prog.as_raw_fd() as u32;
    u.data_in = data.as_ptr() as u64;
    u.data_size_in = data.len() as u32;
    u.repeat = 1;
    bpf(bpf_cmd::BPF_PROG_TEST_RUN, &mut attr)?;
    // SAFETY: the kernel filled retval, a plain integer.
    Ok(unsafe { attr.test.retval })
}
