//! Tiny programs as instruction arrays.
//!
//! Probes are a handful of instructions each; writing them here, by hand, keeps the crate
//! free of a compiler and makes each probe readable next to the verifier rule it exercises.
use aya_obj::generated::{
    BPF_ALU64, BPF_CALL, BPF_DW, BPF_EXIT, BPF_IMM, BPF_JMP, BPF_JMP32, BPF_K, BPF_LD, BPF_MOV,
    BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE, BPF_X, bpf_insn,
};

/// Return value, and the helper's result after a call.
pub const R0: u8 = 0;
/// First argument: the context on entry, the first helper argument at a call.
pub const R1: u8 = 1;
/// Second helper argument.
pub const R2: u8 = 2;

/// One raw instruction; `code` is the OR of the `BPF_*` class, op and source bits.
pub fn insn(code: u32, dst: u8, src: u8, off: i16, imm: i32) -> bpf_insn {
    bpf_insn {
        code: code as u8,
        _bitfield_align_1: [],
        _bitfield_1: bpf_insn::new_bitfield_1(dst, src),
        off,
        imm,
    }
}

/// `dst = imm`
pub fn mov64_imm(dst: u8, imm: i32) -> bpf_insn {
    insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
}

/// `dst = src`
pub fn mov64_reg(dst: u8, src: u8) -> bpf_insn {
    insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
}

/// `dst = (s8) src` — a sign-extending move, ISA v4 (6.6).
pub fn movsx8_reg(dst: u8, src: u8) -> bpf_insn {
    insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 8, 0)
}

/// `dst <op>= imm` on 64 bits.
pub fn alu64_imm(op: u32, dst: u8, imm: i32) -> bpf_insn {
    insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm)
}

/// `if dst <op> imm goto +off`
pub fn jmp_imm(op: u32, dst: u8, imm: i32, off: i16) -> bpf_insn {
    insn(BPF_JMP | op | BPF_K, dst, 0, off, imm)
}

/// `if (u32)dst <op> imm goto +off` — ISA v3 (5.1).
pub fn jmp32_imm(op: u32, dst: u8, imm: i32, off: i16) -> bpf_insn {
    insn(BPF_JMP32 | op | BPF_K, dst, 0, off, imm)
}

/// `call <helper id>`
pub fn call(helper_id: u32) -> bpf_insn {
    insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper_id as i32)
}

/// `exit`: return R0.
pub fn exit() -> bpf_insn {
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

/// The two-slot `dst = imm64` with a pseudo source (map fd, map value, …).
pub fn ld_imm64(dst: u8, src: u8, imm: u64) -> [bpf_insn; 2] {
    [
        insn(BPF_LD | BPF_DW | BPF_IMM, dst, src, 0, imm as u32 as i32),
        insn(0, 0, 0, 0, (imm >> 32) as u32 as i32),
    ]
}

/// `dst = &map` for helpers that take a map.
pub fn ld_map_fd(dst: u8, fd: i32) -> [bpf_insn; 2] {
    ld_imm64(dst, BPF_PSEUDO_MAP_FD as u8, fd as u32 as u64)
}

/// `dst = &map_value[0] + off`: direct access to an array map's value, i.e. global data (5.2).
pub fn ld_map_value(dst: u8, fd: i32, off: u32) -> [bpf_insn; 2] {
    ld_imm64(
        dst,
        BPF_PSEUDO_MAP_VALUE as u8,
        (fd as u32 as u64) | ((off as u64) << 32),
    )
}

/// `r0 = 0; exit`: the smallest valid program of every type.
pub fn return_zero() -> Vec<bpf_insn> {
    vec![mov64_imm(R0, 0), exit()]
}

/// `call <id>; r0 = 0; exit`. R1 still holds the context at the call, so a helper whose
/// first argument is the context passes the argument check and reaches the verifier's
/// per-context checks (that is how `bpf_get_func_ip` is refused in the wrong context); any
/// other helper fails the argument check with EACCES, which proves the kernel offers it.
pub fn call_helper(helper_id: u32) -> Vec<bpf_insn> {
    vec![call(helper_id), mov64_imm(R0, 0), exit()]
}

/// `call <kfunc>`: `src_reg = BPF_PSEUDO_KFUNC_CALL`, `imm` its BTF id, `off` the
/// `fd_array` index of its module's BTF (0: vmlinux) (5.13).
pub fn call_kfunc(btf_id: u32, fd_array_idx: i16) -> bpf_insn {
    insn(
        BPF_JMP | BPF_CALL,
        0,
        aya_obj::generated::BPF_PSEUDO_KFUNC_CALL as u8,
        fd_array_idx,
        btf_id as i32,
    )
}

/// `call <kfunc>; r0 = 0; exit`: the verifier checks the kfunc's registration for the
/// program's hook before its arguments, so a refusal of the arguments proves the call.
pub fn call_kfunc_program(btf_id: u32, fd_array_idx: i16) -> Vec<bpf_insn> {
    vec![call_kfunc(btf_id, fd_array_idx), mov64_imm(R0, 0), exit()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 8 bytes the kernel reads, as `bpftool prog dump xlated` and the kernel's
    /// `include/uapi/linux/bpf_common.h` encode them.
    fn bytes(i: &bpf_insn) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = i.code;
        b[1] = (i.src_reg() << 4) | i.dst_reg();
        b[2..4].copy_from_slice(&i.off.to_le_bytes());
        b[4..8].copy_from_slice(&i.imm.to_le_bytes());
        b
    }

    #[test]
    fn encodings_match_the_uapi() {
        // r0 = 0: BPF_ALU64|BPF_MOV|BPF_K = 0xb7.
        assert_eq!(bytes(&mov64_imm(R0, 0)), [0xb7, 0, 0, 0, 0, 0, 0, 0]);
        // exit: BPF_JMP|BPF_EXIT = 0x95.
        assert_eq!(bytes(&exit()), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        // call 173: BPF_JMP|BPF_CALL = 0x85, imm = the helper id.
        assert_eq!(bytes(&call(173)), [0x85, 0, 0, 0, 173, 0, 0, 0]);
        // r1 = r2: BPF_ALU64|BPF_MOV|BPF_X = 0xbf, src in the high nibble.
        assert_eq!(bytes(&mov64_reg(R1, R2)), [0xbf, 0x21, 0, 0, 0, 0, 0, 0]);
        // r0 = (s8) r0: the same opcode as a move, off = 8 (ISA v4).
        assert_eq!(bytes(&movsx8_reg(R0, R0))[2], 8);
        // if r0 != 0 goto -2: BPF_JMP|BPF_JNE|BPF_K = 0x55.
        let j = jmp_imm(aya_obj::generated::BPF_JNE, R0, 0, -2);
        assert_eq!(bytes(&j), [0x55, 0, 0xfe, 0xff, 0, 0, 0, 0]);
    }

    #[test]
    fn wide_loads_take_two_slots() {
        let [a, b] = ld_imm64(R1, 0, 0x1122_3344_5566_7788);
        assert_eq!(a.code, 0x18);
        assert_eq!(a.imm as u32, 0x5566_7788);
        assert_eq!(b.imm as u32, 0x1122_3344);
        assert_eq!(b.code, 0);
        let [m, _] = ld_map_fd(R1, 7);
        assert_eq!((m.src_reg(), m.imm), (BPF_PSEUDO_MAP_FD as u8, 7));
        let [v, w] = ld_map_value(R1, 7, 16);
        assert_eq!(
            (v.src_reg(), v.imm, w.imm),
            (BPF_PSEUDO_MAP_VALUE as u8, 7, 16)
        );
    }

    #[test]
    fn probe_programs() {
        let r = return_zero();
        assert_eq!(
            r.iter().map(bytes).collect::<Vec<_>>(),
            [bytes(&mov64_imm(R0, 0)), bytes(&exit())]
        );
        let c = call_helper(14);
        assert_eq!(c.len(), 3);
        assert_eq!(bytes(&c[0]), bytes(&call(14)));
        assert_eq!(bytes(&c[2]), bytes(&exit()));
    }
}
