//! Extern symbols: what aya-obj 0.3 skips. A kfunc call (`extern … __ksym` called as a
//! function) is resolved here the way libbpf resolves it — `src_reg =
//! BPF_PSEUDO_KFUNC_CALL`, `imm` = the function's id in vmlinux BTF — and a weak kfunc the
//! kernel lacks has its calls poisoned (a call of an invalid helper id, which the verifier
//! refuses only on a path it walks: a branch a frozen constant rules out is never walked).
//! Extern variables are left to the caller to refuse.
use std::sync::OnceLock;

use aya_obj::{
    Object,
    generated::{BPF_CALL, BPF_JMP, BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL},
};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget};
use probe::btf::BtfFuncs;

use super::ObjectError;

/// The helper id a poisoned kfunc call gets: libbpf's `POISON_CALL_KFUNC_BASE` (2002000000)
/// plus nothing, so `bpftool prog dump` and the verifier's `invalid func unknown#2002000000`
/// name it the same way libbpf's do.
pub const POISON_CALL_KFUNC: i32 = 2_002_000_000;

/// One reference of the object's code to an undefined symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extern {
    /// The symbol's name.
    pub symbol: String,
    /// The section whose code refers to it.
    pub section: String,
    /// That section's ELF index.
    pub section_index: usize,
    /// The byte offset of the referring instruction in the section.
    pub offset: u64,
    /// Whether the instruction is a call (a kfunc), not a load of an address.
    pub is_call: bool,
    /// Whether the symbol is `__weak` (may be missing).
    pub weak: bool,
}

/// Every reference of the object's code to an undefined symbol.
pub fn externs(bytes: &[u8]) -> Result<Vec<Extern>, ObjectError> {
    let file = object::read::File::parse(bytes).map_err(ObjectError::Elf)?;
    let mut out = Vec::new();
    // Code only: .BTF and .BTF.ext refer to externs too (their FUNC and DATASEC entries),
    // and those are aya-obj's to fix up.
    for section in file
        .sections()
        .filter(|s| s.kind() == object::SectionKind::Text)
    {
        let data = section.data().unwrap_or_default();
        for (offset, reloc) in section.relocations() {
            let RelocationTarget::Symbol(index) = reloc.target() else {
                continue;
            };
            let sym = file.symbol_by_index(index).map_err(ObjectError::Elf)?;
            let name = sym.name().unwrap_or_default();
            if !sym.is_undefined() || name.is_empty() {
                continue;
            }
            // A call of a subprogram or kfunc: BPF_JMP | BPF_CALL with src_reg
            // BPF_PSEUDO_CALL, as clang emits it for an extern function.
            let is_call = data
                .get(offset as usize..offset as usize + 2)
                .is_some_and(|b| {
                    // Little-endian BPF: the register byte is dst (low nibble), src (high).
                    u32::from(b[0]) == BPF_JMP | BPF_CALL && u32::from(b[1] >> 4) == BPF_PSEUDO_CALL
                });
            out.push(Extern {
                symbol: name.to_string(),
                section: section.name().unwrap_or("?").to_string(),
                section_index: section.index().0,
                offset,
                is_call,
                weak: sym.is_weak(),
            });
        }
    }
    Ok(out)
}

/// vmlinux's functions, read once per process (a failure is read again next time).
fn vmlinux_funcs() -> Result<&'static BtfFuncs, String> {
    static FUNCS: OnceLock<BtfFuncs> = OnceLock::new();
    if let Some(f) = FUNCS.get() {
        return Ok(f);
    }
    let data = std::fs::read("/sys/kernel/btf/vmlinux")
        .map_err(|e| format!("/sys/kernel/btf/vmlinux: {e}"))?;
    let funcs = BtfFuncs::parse(&data).map_err(|e| format!("vmlinux BTF: {e}"))?;
    Ok(FUNCS.get_or_init(|| funcs))
}

/// Patches every kfunc call of `obj` (before aya-obj links calls, which then leaves them
/// alone): resolved against vmlinux BTF, or poisoned when weak and missing.
pub fn resolve_kfunc_calls(obj: &mut Object, externs: &[Extern]) -> Result<(), ObjectError> {
    let calls: Vec<&Extern> = externs.iter().filter(|e| e.is_call).collect();
    if calls.is_empty() {
        return Ok(());
    }
    let funcs = vmlinux_funcs();
    for e in calls {
        let id = match &funcs {
            Ok(f) => f.get(&e.symbol).map(|f| f.id),
            Err(_) => None,
        };
        let (src_reg, imm) = match (id, e.weak) {
            (Some(id), _) => (BPF_PSEUDO_KFUNC_CALL as u8, id as i32),
            (None, true) => (0, POISON_CALL_KFUNC),
            (None, false) => {
                return Err(ObjectError::KfuncMissing {
                    symbol: e.symbol.clone(),
                    why: match &funcs {
                        Ok(_) => "no FUNC of that name; module kfuncs are not resolved by \
                                  this loader"
                            .into(),
                        Err(why) => why.clone(),
                    },
                });
            }
        };
        for f in obj.functions.values_mut() {
            if f.section_index.0 != e.section_index {
                continue;
            }
            let start = f.section_offset as u64;
            let end = start + 8 * f.instructions.len() as u64;
            if (start..end).contains(&e.offset) {
                let ins = &mut f.instructions[((e.offset - start) / 8) as usize];
                ins.set_src_reg(src_reg);
                ins.imm = imm;
                ins.off = 0;
            }
        }
    }
    Ok(())
}
