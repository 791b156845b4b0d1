//! /proc/kallsyms, scanned line by line.
//!
//! Lines are `<addr> <type> <name>[\t[<module>]]`. [`scan`] checks every line's shape and
//! hands each to a visitor; the callers keep what they need (the BPF program symbols of
//! the func-ip path, the text symbols of the attach-point resolver). It reads any `Read`
//! (tests feed fixtures) in large chunks and splits lines with `memchr`: /proc/kallsyms
//! has ~200k lines, and the kernel's formatting of them is the floor a scan is measured
//! against.
use std::io::Read;

/// What went wrong reading kallsyms.
#[derive(Debug, thiserror::Error)]
pub enum KallsymsError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file read (`kallsyms` for a reader with no path).
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line does not have the kallsyms shape: the input is not kallsyms, or is cut.
    #[error("kallsyms line {line}: {what}: {text:?}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        what: &'static str,
        /// The start of the line, at most 160 bytes, so a huge line stays a short error.
        text: String,
    },
    /// A wanted symbol's address reads 0: kptr_restrict hides it from this process.
    #[error(
        "kallsyms shows address 0 for {symbol} (line {line}): kernel.kptr_restrict hides kernel \
         addresses from this process (2 hides them from every process, root included; 1 \
         shows them only with CAP_SYSLOG). Set `sysctl -w kernel.kptr_restrict=1` and grant \
         CAP_SYSLOG, or 0"
    )]
    Restricted {
        /// 1-based line number.
        line: usize,
        /// The symbol whose address was hidden.
        symbol: String,
    },
}

/// One checked line of kallsyms.
#[derive(Clone, Copy, Debug)]
pub struct Line<'a> {
    /// 1-based line number.
    pub no: usize,
    /// The address, as the kernel printed it (hex digits; all zeros when hidden).
    pub addr_hex: &'a [u8],
    /// The symbol type letter (`t`, `T`, `d`, …).
    pub kind: u8,
    /// The symbol's name (before `\t[module]`).
    pub name: &'a [u8],
    /// The module, without brackets; `None` for vmlinux.
    pub module: Option<&'a [u8]>,
    /// The whole line, for errors.
    pub raw: &'a [u8],
}

impl Line<'_> {
    /// The address (0 when kptr_restrict hides it).
    pub fn addr(&self) -> u64 {
        // `split_line` checked the digits; a table, as this runs on every line.
        const VALUE: [u8; 256] = {
            let mut t = [0u8; 256];
            let mut b = 0;
            while b < 256 {
                let c = b as u8;
                t[b] = match c {
                    b'0'..=b'9' => c - b'0',
                    b'a'..=b'f' => c - b'a' + 10,
                    b'A'..=b'F' => c - b'A' + 10,
                    _ => 0,
                };
                b += 1;
            }
            t
        };
        self.addr_hex
            .iter()
            .fold(0u64, |a, d| (a << 4) | u64::from(VALUE[*d as usize]))
    }

    /// Whether the symbol is in a text section (a function or a part of one).
    pub fn is_text(&self) -> bool {
        matches!(self.kind, b't' | b'T' | b'w' | b'W')
    }

    /// A [`KallsymsError::Malformed`] about this line.
    pub fn malformed(&self, what: &'static str) -> KallsymsError {
        malformed(self.no, what, self.raw)
    }
}

/// A [`KallsymsError::Malformed`] for line `line` whose text is `text`.
pub fn malformed(line: usize, what: &'static str, text: &[u8]) -> KallsymsError {
    // Only the start of the line: a malformed 64 MB line must not become a 64 MB error.
    const SHOWN: usize = 160;
    let mut shown = String::from_utf8_lossy(&text[..text.len().min(SHOWN)])
        .trim_end()
        .to_string();
    if text.len() > SHOWN {
        shown.push_str(&format!("… ({} bytes)", text.len()));
    }
    KallsymsError::Malformed {
        line,
        what,
        text: shown,
    }
}

/// Checks one line's shape.
pub(crate) fn split_line(line: &[u8], no: usize) -> Result<Line<'_>, KallsymsError> {
    // The common shape first: 16 hex digits, a space, the type, a space.
    let (addr, rest) = if line.len() > 19 && line[16] == b' ' && line[18] == b' ' {
        (&line[..16], &line[17..])
    } else {
        let sp = memchr::memchr(b' ', line).ok_or_else(|| malformed(no, "no address", line))?;
        (&line[..sp], &line[sp + 1..])
    };
    if addr.is_empty() || addr.len() > 16 || !addr.iter().all(u8::is_ascii_hexdigit) {
        return Err(malformed(no, "bad address", line));
    }
    if rest.len() < 3 || rest[1] != b' ' || !rest[0].is_ascii_alphabetic() {
        return Err(malformed(no, "bad symbol type", line));
    }
    let sym_and_mod = &rest[2..];
    if sym_and_mod.first().is_none_or(|b| *b == b'\t') {
        return Err(malformed(no, "no symbol name", line));
    }
    let (name, module) = match memchr::memchr(b'\t', sym_and_mod) {
        Some(t) => {
            let m = &sym_and_mod[t + 1..];
            let m = m
                .strip_prefix(b"[")
                .and_then(|m| m.strip_suffix(b"]"))
                .ok_or_else(|| malformed(no, "module not in brackets", line))?;
            (&sym_and_mod[..t], Some(m))
        }
        None => (sym_and_mod, None),
    };
    Ok(Line {
        no,
        addr_hex: addr,
        kind: rest[0],
        name,
        module,
        raw: line,
    })
}

/// One pass over `reader`, calling `visit` with every line; every line is checked for
/// shape, and a malformed one is an error with its line number. The last line may lack its
/// newline.
pub fn scan<R: Read>(
    reader: R,
    mut visit: impl FnMut(Line<'_>) -> Result<(), KallsymsError>,
) -> Result<(), KallsymsError> {
    // Real lines are under 600 bytes (KSYM_NAME_LEN and a module name): one that fills
    // 256 KiB is no kallsyms.
    crate::lines::for_each_line(
        reader,
        256 * 1024,
        |no, line| visit(split_line(line, no)?),
        |source| KallsymsError::Io {
            path: "kallsyms".into(),
            source,
        },
        |no, text| malformed(no, "line longer than 256 KiB", text),
    )
}

/// Opens `path` and [`scan`]s it; errors name the path.
pub fn scan_file(
    path: impl AsRef<std::path::Path>,
    visit: impl FnMut(Line<'_>) -> Result<(), KallsymsError>,
) -> Result<(), KallsymsError> {
    let path = path.as_ref();
    let f = std::fs::File::open(path).map_err(|source| KallsymsError::Io {
        path: path.display().to_string(),
        source,
    })?;
    scan(f, visit).map_err(|e| match e {
        KallsymsError::Io { source, .. } => KallsymsError::Io {
            path: path.display().to_string(),
            source,
        },
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_address_type_name_and_module() {
        let text = "ffffffff81000000 T _text\nffffffffc0b00000 t nf_conntrack_in\t[nf_conntrack]\n0 t short";
        let mut got = Vec::new();
        scan(text.as_bytes(), |l| {
            got.push((
                l.addr(),
                l.kind,
                l.name.to_vec(),
                l.module.map(<[u8]>::to_vec),
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (0xffffffff81000000, b'T', b"_text".to_vec(), None));
        assert_eq!(got[1].3.as_deref(), Some(&b"nf_conntrack"[..]));
        assert_eq!(got[2].0, 0);
    }

    #[test]
    fn a_module_without_brackets_is_malformed() {
        let e = scan("ffffffff81000000 t f\tmod\n".as_bytes(), |_| Ok(())).unwrap_err();
        assert!(matches!(e, KallsymsError::Malformed { line: 1, .. }), "{e}");
    }
}
