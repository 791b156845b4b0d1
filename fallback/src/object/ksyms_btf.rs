//! The object BTF fixup libbpf makes for extern kfuncs and aya-obj 0.3 lacks. clang puts
//! each `extern … __ksym` function into a `.ksyms` DATASEC, as a `FUNC` of extern linkage
//! whose parameters may be unnamed; the kernel accepts none of that. As libbpf does
//! (`bpf_object__collect_externs`): every `.ksyms` entry becomes a 4-byte dummy `int`
//! variable, the section gets a size, extern functions become global ones, and unnamed
//! parameters take the dummy's name. Types are only appended, so no type id moves (the
//! object's func_info and CO-RE records keep pointing at the same types).
use aya_obj::generated::{
    BTF_KIND_DATASEC, BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO, BTF_KIND_INT, BTF_KIND_VAR,
};

const HEADER_LEN: usize = 24;
const DUMMY_INT: &str = "__bpf_features_ksym_int";
const DUMMY_VAR: &str = "__bpf_features_ksym";

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|x| u32::from_ne_bytes(x.try_into().expect("4 bytes")))
        .ok_or_else(|| format!("BTF truncated at byte {at}"))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

/// `btf` with its `.ksyms` section and extern functions made loadable, or `None` when it
/// has no `.ksyms` section.
pub fn fix_ksyms(btf: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if btf.len() < HEADER_LEN {
        return Err("BTF shorter than its header".into());
    }
    let hdr_len = u32_at(btf, 4)? as usize;
    let type_off = hdr_len + u32_at(btf, 8)? as usize;
    let type_len = u32_at(btf, 12)? as usize;
    let str_off = hdr_len + u32_at(btf, 16)? as usize;
    let str_len = u32_at(btf, 20)? as usize;
    let types = btf
        .get(type_off..type_off + type_len)
        .ok_or("BTF type section out of bounds")?;
    let strs = btf
        .get(str_off..str_off + str_len)
        .ok_or("BTF string section out of bounds")?;
    let name = |off: u32| -> &[u8] {
        let tail = strs.get(off as usize..).unwrap_or_default();
        &tail[..tail.iter().position(|b| *b == 0).unwrap_or(tail.len())]
    };

    // One pass: where each type starts, the .ksyms DATASEC, the extern FUNCs.
    let mut out_types = types.to_vec();
    let (mut pos, mut id) = (0usize, 0u32);
    let mut ksyms = None;
    let mut extern_protos = Vec::new();
    let mut starts = vec![0usize];
    while pos < types.len() {
        id += 1;
        starts.push(pos);
        let info = u32_at(types, pos + 4)?;
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        if kind == BTF_KIND_DATASEC && name(u32_at(types, pos)?) == b".ksyms" {
            ksyms = Some((pos, vlen));
        }
        if kind == BTF_KIND_FUNC && vlen == 2 {
            // BTF_FUNC_EXTERN → BTF_FUNC_GLOBAL.
            put_u32(&mut out_types, pos + 4, (info & !0xffff) | 1);
            extern_protos.push(u32_at(types, pos + 8)?);
        }
        pos += 12 + probe::btf::extra_len(id, kind, vlen)?;
    }
    let Some((sec, vlen)) = ksyms else {
        return Ok(None);
    };

    // Appended: the strings, then `int` and a VAR of it.
    let mut out_strs = strs.to_vec();
    let int_name = out_strs.len() as u32;
    out_strs.extend_from_slice(DUMMY_INT.as_bytes());
    out_strs.push(0);
    let var_name = out_strs.len() as u32;
    out_strs.extend_from_slice(DUMMY_VAR.as_bytes());
    out_strs.push(0);
    let int_id = id + 1;
    let var_id = id + 2;
    for v in [int_name, BTF_KIND_INT << 24, 4, 32] {
        out_types.extend_from_slice(&v.to_ne_bytes());
    }
    for v in [var_name, BTF_KIND_VAR << 24, int_id, 0] {
        out_types.extend_from_slice(&v.to_ne_bytes());
    }

    // The section: every entry the dummy variable, 4 bytes apart.
    put_u32(&mut out_types, sec + 8, 4 * vlen as u32);
    for i in 0..vlen {
        let e = sec + 12 + 12 * i;
        put_u32(&mut out_types, e, var_id);
        put_u32(&mut out_types, e + 4, 4 * i as u32);
        put_u32(&mut out_types, e + 8, 4);
    }
    // Global functions need named parameters.
    for proto in extern_protos {
        let Some(&at) = starts.get(proto as usize) else {
            continue;
        };
        let info = u32_at(types, at + 4)?;
        if (info >> 24) & 0x1f != BTF_KIND_FUNC_PROTO {
            continue;
        }
        for p in 0..(info & 0xffff) as usize {
            let param = at + 12 + 8 * p;
            if u32_at(types, param)? == 0 {
                put_u32(&mut out_types, param, var_name);
            }
        }
    }

    let mut out = btf[..hdr_len].to_vec();
    put_u32(&mut out, 8, 0);
    put_u32(&mut out, 12, out_types.len() as u32);
    put_u32(&mut out, 16, out_types.len() as u32);
    put_u32(&mut out, 20, out_strs.len() as u32);
    out.extend_from_slice(&out_types);
    out.extend_from_slice(&out_strs);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_ksyms_no_change_and_garbage_is_an_error() {
        let mut b = probe::btf::BtfBuilder::new();
        let int = b.int("int", 4);
        let proto = b.func_proto(int, &[]);
        b.func("f", proto);
        assert_eq!(fix_ksyms(&b.build()).unwrap(), None);
        assert!(fix_ksyms(b"short").is_err());
        let blob = b.build();
        for cut in HEADER_LEN..blob.len() {
            let _ = fix_ksyms(&blob[..cut]);
        }
    }

    #[test]
    fn the_loop_object_is_fixed_as_libbpf_would() {
        let Some(btf) = bpf_features_ebpf_btf() else {
            probe::testing::skip(
                "the_loop_object_is_fixed_as_libbpf_would",
                "built without the `bundled` feature (the loop object is one of its programs)",
            );
            return;
        };
        let fixed = fix_ksyms(&btf)
            .unwrap()
            .expect("loop_sum has a .ksyms section");
        // The fixed blob still parses, with two more types.
        let before = probe::btf::BtfFuncs::parse(&btf).unwrap();
        let after = probe::btf::BtfFuncs::parse(&fixed).unwrap();
        assert_eq!(after.last_id, before.last_id + 2);
        assert!(after.get("bpf_iter_num_new").is_some());
    }

    /// The .BTF section of the bundled loop object, when the bundle is built.
    fn bpf_features_ebpf_btf() -> Option<Vec<u8>> {
        #[cfg(feature = "bundled")]
        {
            use object::{Object as _, ObjectSection as _};
            let file = object::read::File::parse(ebpf::LOOP_SUM).ok()?;
            let sec = file.section_by_name(".BTF")?;
            Some(sec.data().ok()?.to_vec())
        }
        #[cfg(not(feature = "bundled"))]
        None
    }
}
