//! BPF tokens (6.9): BPF_TOKEN_CREATE from a delegated bpffs, and the token this thread's
//! loads carry. A token is scoped to a thread (see [`with`]): the prober sets it around
//! each answer it computes, so loads made by anything else in the process, and by tests
//! running beside it, never carry it by surprise.
use std::{
    cell::Cell,
    os::fd::{AsRawFd, BorrowedFd, OwnedFd},
};

use aya_obj::generated::{BPF_F_TOKEN_FD, bpf_cmd};

use super::{Errno, bpf_fd, zeroed_attr};

/// `BPF_F_TOKEN_FD`: in `prog_flags`, `map_flags` and `btf_flags`, "the token fd field is
/// set". Kernels before 6.9 refuse the flag (EINVAL), so it is only set with a token, which
/// only those kernels create.
pub(crate) const FLAG: u32 = BPF_F_TOKEN_FD;

thread_local! {
    static CURRENT: Cell<Option<i32>> = const { Cell::new(None) };
}

/// BPF_TOKEN_CREATE (6.9) from `bpffs`, an fd of the root of a bpffs mounted with
/// `delegate_*` options in the caller's user namespace.
pub fn create(bpffs: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let mut attr = zeroed_attr();
    attr.token_create.flags = 0;
    attr.token_create.bpffs_fd = bpffs.as_raw_fd() as u32;
    bpf_fd(bpf_cmd::BPF_TOKEN_CREATE, &mut attr)
}

/// Runs `f` with every BPF_PROG_LOAD, BPF_MAP_CREATE and BPF_BTF_LOAD of this thread
/// carrying `token` (none: `f` as is); the previous token is restored after.
pub fn with<R>(token: Option<BorrowedFd<'_>>, f: impl FnOnce() -> R) -> R {
    let Some(token) = token else {
        return f();
    };
    struct Restore(Option<i32>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(token.as_raw_fd()))));
    f()
}

/// The token this thread's loads carry.
pub(crate) fn current() -> Option<i32> {
    CURRENT.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, os::fd::AsFd, rc::Rc};

    use super::*;
    use crate::sys::{MapCreate, ProgLoad, btf_load, fake, map_create, prog_load};

    #[test]
    fn loads_carry_the_token_only_inside_its_scope() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        let _door = fake::replace(move |call| {
            s.borrow_mut().push(call.token());
            fake::fd()
        });
        let token = std::fs::File::open("/dev/null").unwrap();
        let insns = [crate::insn::mov64_imm(0, 0), crate::insn::exit()];
        let load_all = || {
            prog_load(&ProgLoad::new(1, &insns), None).unwrap();
            map_create(&MapCreate::default()).unwrap();
            btf_load(b"", None).unwrap();
        };
        load_all();
        with(Some(token.as_fd()), || {
            load_all();
            with(None, load_all);
        });
        load_all();
        let t = Some(token.as_raw_fd());
        let mut want = vec![None; 3];
        want.extend([t; 6]);
        want.extend([None; 3]);
        assert_eq!(*seen.borrow(), want);
    }
}
