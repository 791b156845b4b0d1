//! /proc/kallsyms, read for BPF program symbols.
//!
//! Lines are `<addr> <type> <name>[\t[<module>]]`. A JITed BPF program appears as
//! `<addr> t bpf_prog_<16 hex tag>_<name>\t[bpf]`, where `<name>` is the full BTF function
//! name (not the 15-character `bpf_prog_info.name`); each subprogram has a line of its own
//! with its own tag; two identical programs give two identical names. The kernel also has
//! ordinary functions called `bpf_prog_*` (`bpf_prog_load`): only the exact shape counts.
//!
//! [`resolve`] reads any `Read` through the probe layer's scanner (tests feed fixtures);
//! [`resolve_file`] is the thin /proc caller. Many targets resolve in one pass.
use std::{collections::HashMap, io::Read, path::Path};

pub use probe::kallsyms::KallsymsError;

/// A BPF program symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfProgSymbol {
    /// Its kernel address; never 0 (a hidden address is [`KallsymsError::Restricted`]).
    pub addr: u64,
    /// The program's tag (`bpf_prog_info.tag`, as a big-endian number).
    pub tag: u64,
    /// The program's (or subprogram's) full BTF function name; empty if it has none.
    pub name: String,
    /// 1-based line number in the file.
    pub line: usize,
}

/// Splits `bpf_prog_<16 hex>[_<name>]` into tag and name.
pub fn parse_bpf_prog_name(sym: &str) -> Option<(u64, &str)> {
    let rest = sym.strip_prefix("bpf_prog_")?;
    let hex = rest.get(..16)?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let tag = u64::from_str_radix(hex, 16).ok()?;
    match &rest[16..] {
        "" => Some((tag, "")),
        r => r.strip_prefix('_').map(|name| (tag, name)),
    }
}

/// What to look for: programs by tag, optionally by name (`None` matches any name).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The program's tag, as in [`BpfProgSymbol::tag`].
    pub tag: u64,
    /// The program's name; a 15-character one (`bpf_prog_info.name`, cut) matches by prefix.
    pub name: Option<String>,
}

impl Target {
    fn matches(&self, tag: u64, name: &str) -> bool {
        self.tag == tag
            && self.name.as_deref().is_none_or(|want| {
                // bpf_prog_info.name is cut at 15 characters; kallsyms has the full name.
                name == want || (want.len() == 15 && name.starts_with(want))
            })
    }
}

/// One pass over `reader`: every BPF program symbol matching one of `targets`.
/// Every line is checked for shape; a malformed one is an error with its line number.
/// Reads in large chunks and splits lines with `memchr`: /proc/kallsyms has ~200k lines,
/// and the kernel's formatting of them is the floor this scan is measured against.
pub fn resolve<R: Read>(
    reader: R,
    targets: &[Target],
) -> Result<HashMap<Target, Vec<BpfProgSymbol>>, KallsymsError> {
    let mut found: HashMap<Target, Vec<BpfProgSymbol>> =
        targets.iter().map(|t| (t.clone(), Vec::new())).collect();
    probe::kallsyms::scan(reader, |line| {
        if targets.is_empty() || !line.name.starts_with(b"bpf_prog_") {
            return Ok(());
        }
        let Ok(sym) = std::str::from_utf8(line.name) else {
            return Err(line.malformed("symbol is not UTF-8"));
        };
        if sym.bytes().any(|b| b.is_ascii_control()) {
            return Err(line.malformed("control character in the symbol"));
        }
        let Some((tag, name)) = parse_bpf_prog_name(sym) else {
            return Ok(());
        };
        for (t, hits) in found.iter_mut() {
            if t.matches(tag, name) {
                let addr = line.addr();
                if addr == 0 {
                    return Err(KallsymsError::Restricted {
                        line: line.no,
                        symbol: sym.to_string(),
                    });
                }
                hits.push(BpfProgSymbol {
                    addr,
                    tag,
                    name: name.to_string(),
                    line: line.no,
                });
            }
        }
        Ok(())
    })?;
    Ok(found)
}

/// [`resolve`] over a file (normally /proc/kallsyms).
pub fn resolve_file(
    path: impl AsRef<Path>,
    targets: &[Target],
) -> Result<HashMap<Target, Vec<BpfProgSymbol>>, KallsymsError> {
    let f = std::fs::File::open(path.as_ref()).map_err(|source| KallsymsError::Io {
        path: path.as_ref().display().to_string(),
        source,
    })?;
    resolve(f, targets).map_err(|e| match e {
        KallsymsError::Io { source, .. } => KallsymsError::Io {
            path: path.as_ref().display().to_string(),
            source,
        },
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TC: u64 = 0x6deef7357e7b4530;

    fn fixture(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn tc() -> Target {
        Target {
            tag: TC,
            name: Some("tc_target".into()),
        }
    }

    const GOOD: &str = "ffffffff81000000 T _text\n\
        ffffffff812a0000 T bpf_prog_load\n\
        ffffffff812a1000 t bpf_prog_free_deferred\n\
        ffffffffc0a0b000 t bpf_prog_6deef7357e7b4530_tc_target\t[bpf]\n\
        ffffffffc0a0c000 t bpf_prog_1122334455667788_tc_target_with_a_very_long_name\t[bpf]\n\
        ffffffffc0a0d000 t bpf_prog_99aabbccddeeff00_helper_subprog\t[bpf]\n\
        ffffffffc0b00000 t nf_conntrack_in\t[nf_conntrack]\n";

    #[test]
    fn finds_programs_by_tag_and_name_in_one_pass() {
        let f = fixture(GOOD);
        let long = Target {
            tag: 0x1122334455667788,
            name: Some("tc_target_with_".into()), // bpf_prog_info.name: 15 characters
        };
        let sub = Target {
            tag: 0x99aabbccddeeff00,
            name: None,
        };
        let got = resolve_file(f.path(), &[tc(), long.clone(), sub.clone()]).unwrap();
        assert_eq!(got[&tc()].len(), 1);
        assert_eq!(got[&tc()][0].addr, 0xffffffffc0a0b000);
        assert_eq!(got[&tc()][0].line, 4);
        assert_eq!(got[&long][0].name, "tc_target_with_a_very_long_name");
        assert_eq!(got[&sub][0].name, "helper_subprog");
    }

    #[test]
    fn ordinary_bpf_prog_functions_are_not_programs() {
        assert_eq!(parse_bpf_prog_name("bpf_prog_load"), None);
        assert_eq!(parse_bpf_prog_name("bpf_prog_free_deferred"), None);
        assert_eq!(
            parse_bpf_prog_name("bpf_prog_6deef7357e7b4530"),
            Some((TC, ""))
        );
        assert_eq!(parse_bpf_prog_name("bpf_prog_6deef7357e7b4530x"), None);
        assert_eq!(
            parse_bpf_prog_name("bpf_prog_6deef7357e7b4530_a_b"),
            Some((TC, "a_b"))
        );
    }

    #[test]
    fn duplicates_are_all_returned() {
        let f = fixture(
            "ffffffffc0a0b000 t bpf_prog_6deef7357e7b4530_tc_target\t[bpf]\n\
             ffffffffc0a0f000 t bpf_prog_6deef7357e7b4530_tc_target\t[bpf]\n",
        );
        let got = resolve_file(f.path(), &[tc()]).unwrap();
        let addrs: Vec<u64> = got[&tc()].iter().map(|s| s.addr).collect();
        assert_eq!(addrs, vec![0xffffffffc0a0b000, 0xffffffffc0a0f000]);
    }

    #[test]
    fn restricted_addresses_are_an_error_that_says_how_to_fix_it() {
        let f = fixture(
            "0000000000000000 T _text\n0000000000000000 t bpf_prog_6deef7357e7b4530_tc_target\t[bpf]\n",
        );
        let e = resolve_file(f.path(), &[tc()]).unwrap_err();
        assert!(
            matches!(e, KallsymsError::Restricted { line: 2, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("kptr_restrict"));
    }

    #[test]
    fn malformed_and_truncated_lines_name_their_line() {
        for (text, line) in [
            ("ffffffff81000000 T _text\nnot a line\n", 2),
            ("zzzz T x\n", 1),
            ("ffffffff81000000 T\n", 1),
            ("ffffffff81000000\n", 1),
            ("ffffffff81000000 T _text\nffffffffc0a0b000 t bpf_pr", 2),
            ("ffffffff81000000 TT x\n", 1),
            ("ffffffff8100000000000 T x\n", 1),
        ] {
            match resolve(text.as_bytes(), &[tc()]) {
                Err(KallsymsError::Malformed { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                // A truncated last line that still has a valid shape is not an error.
                Ok(found) if text.ends_with("bpf_pr") => assert!(found[&tc()].is_empty()),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    /// Found by the fuzzing pass (issue 8): each of these was accepted or ill-reported.
    #[test]
    fn hostile_inputs() {
        // A carriage return does not end up in a program's name.
        let e = resolve(
            "ffffffffc0a0b000 t bpf_prog_6deef7357e7b4530_tc_target\r\n".as_bytes(),
            &[tc()],
        )
        .unwrap_err();
        assert!(matches!(e, KallsymsError::Malformed { line: 1, .. }), "{e}");
        // A huge malformed line: an error of bounded size, not a copy of the line.
        let huge = format!("ffffffff81000000 T {}", "x".repeat(1 << 20));
        let e = resolve(huge.as_bytes(), &[tc()]).unwrap_err();
        assert!(e.to_string().len() < 400, "{} bytes", e.to_string().len());
        // Interrupted reads are retried, not fatal.
        struct Interrupting<'a>(&'a [u8], bool);
        impl std::io::Read for Interrupting<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.1 = !self.1;
                if self.1 {
                    return Err(std::io::ErrorKind::Interrupted.into());
                }
                let n = buf.len().min(self.0.len()).min(7);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let got = resolve(Interrupting(GOOD.as_bytes(), false), &[tc()]).unwrap();
        assert_eq!(got[&tc()].len(), 1);
    }

    #[test]
    fn empty_file_and_module_symbols() {
        let f = fixture("");
        assert!(resolve_file(f.path(), &[tc()]).unwrap()[&tc()].is_empty());
        let got = resolve(GOOD.as_bytes(), &[]).unwrap();
        assert!(got.is_empty());
        let e = resolve_file("/nonexistent/kallsyms", &[tc()]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/kallsyms"));
    }
}
