//! The text sources of the attach-point resolver, parsed apart from I/O: the functions
//! ftrace can patch (`available_filter_functions`), the kprobe blacklist, and the text
//! symbols of /proc/kallsyms with their compiler clones. Each parser reads any `Read`.
use std::{io::Read, sync::Arc};

use crate::fxhash::FxMap;
use crate::interned::{NameHash, NameTable};
use crate::kallsyms::{self, KallsymsError};

/// Reads `reader` line by line, calling `line` with each (1-based number, bytes without
/// the newline); errors are words.
fn for_each_line<R: Read>(
    reader: R,
    line: impl FnMut(usize, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    crate::lines::for_each_line(
        reader,
        128 * 1024,
        line,
        |e| e.to_string(),
        |no, _| format!("line {no} is longer than 128 KiB"),
    )
}

/// Whether `name` can be a kernel symbol: `[A-Za-z0-9_.$]`, at most 511 bytes
/// (KSYM_NAME_LEN − 1).
pub fn valid_symbol(name: &[u8]) -> bool {
    // A table: this runs on every kallsyms line.
    const OK: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'$';
            b += 1;
        }
        t
    };
    !name.is_empty() && name.len() < 512 && name.iter().all(|b| OK[*b as usize])
}

/// The functions ftrace can patch: `available_filter_functions`, one `name` or
/// `name [module]` per line. A name listed twice is two functions (two statics).
#[derive(Debug, Default)]
pub struct FtraceFunctions {
    names: NameTable,
    /// By name id.
    counts: Vec<u32>,
}

impl FtraceFunctions {
    /// Parses the file's text.
    pub fn parse<R: Read>(reader: R) -> Result<Self, String> {
        let mut out = FtraceFunctions {
            names: NameTable::with_capacity(64 * 1024, 1 << 20),
            counts: Vec::with_capacity(64 * 1024),
        };
        for_each_line(reader, |no, line| {
            let name = match memchr::memchr(b' ', line) {
                Some(sp) => {
                    let m = &line[sp + 1..];
                    if !(m.starts_with(b"[") && m.ends_with(b"]")) {
                        return Err(format!("line {no}: expected `name [module]`"));
                    }
                    &line[..sp]
                }
                None => line,
            };
            // 6.0+ lists functions whose fentry call site was dropped (a weak function
            // overridden at link time) as `__ftrace_invalid_address___<n>`.
            if name.is_empty() || name.starts_with(b"__ftrace_invalid_address__") {
                return Ok(());
            }
            if !valid_symbol(name) {
                return Err(format!("line {no}: not a function name"));
            }
            let name = std::str::from_utf8(name).expect("checked ASCII");
            match out.names.intern(name) {
                (_, true) => out.counts.push(1),
                (id, false) => out.counts[id as usize] += 1,
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// How many functions of that name ftrace can patch.
    pub fn count(&self, name: &str) -> u32 {
        self.count_hashed(name, NameHash::of(name.as_bytes()))
    }

    pub(crate) fn count_hashed(&self, name: &str, hash: NameHash) -> u32 {
        self.names
            .get_hashed(name, hash)
            .map_or(0, |id| self.counts[id as usize])
    }

    /// How many names are listed.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.names.len() == 0
    }
}

/// The kprobe blacklist (`<debugfs>/kprobes/blacklist`): one `0x<start>-0x<end>\t<name>`
/// per line, with ` [module]` after a module's symbol. Up to 6.1 a blacklisted area
/// (`.entry.text`, `.noinstr.text`, …) is listed function by function; from 6.2 one line
/// covers the whole area and names only its first symbol, so the address ranges are the
/// authority, and names serve only when kptr_restrict zeroes the ranges.
#[derive(Debug, Default)]
pub struct KprobeBlacklist {
    names: FxMap<Box<str>, ()>,
    /// Sorted, non-empty `[start, end)` ranges.
    ranges: Vec<(u64, u64)>,
}

fn hex(field: &[u8]) -> Option<u64> {
    let digits = field.strip_prefix(b"0x")?;
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

impl KprobeBlacklist {
    /// Parses the file's text.
    pub fn parse<R: Read>(reader: R) -> Result<Self, String> {
        let mut out = KprobeBlacklist::default();
        for_each_line(reader, |no, line| {
            let mut fields = line
                .split(|b| *b == b'\t' || *b == b' ')
                .filter(|f| !f.is_empty());
            let Some(first) = fields.next() else {
                return Ok(());
            };
            let name = if first.starts_with(b"0x") {
                let (start, end) = first
                    .split(|b| *b == b'-')
                    .map(hex)
                    .collect::<Option<Vec<u64>>>()
                    .and_then(|v| (v.len() == 2).then(|| (v[0], v[1])))
                    .ok_or_else(|| format!("line {no}: expected `0x<start>-0x<end>`"))?;
                if end > start {
                    out.ranges.push((start, end));
                }
                fields
                    .next()
                    .ok_or_else(|| format!("line {no}: an address range without a name"))?
            } else {
                first
            };
            if !valid_symbol(name) {
                return Err(format!("line {no}: not a symbol name"));
            }
            out.names
                .insert(std::str::from_utf8(name).expect("ASCII").into(), ());
            Ok(())
        })?;
        out.ranges.sort_unstable();
        Ok(out)
    }

    /// Whether the function `name` at `addr` (0: hidden) is blacklisted.
    pub fn contains(&self, name: &str, addr: u64) -> bool {
        if self.names.contains_key(name) {
            return true;
        }
        if addr == 0 {
            return false;
        }
        let i = self.ranges.partition_point(|(s, _)| *s <= addr);
        self.ranges[..i]
            .iter()
            .rev()
            .take(64)
            .any(|(_, e)| addr < *e)
    }

    /// How many lines it has.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Where one text symbol is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Its address; 0 when kptr_restrict hides addresses.
    pub addr: u64,
    /// Its module; `None` for vmlinux.
    pub module: Option<Arc<str>>,
}

/// The suffixes compilers give the clones of a function (GCC's IPA passes, LLVM's LTO
/// renaming). `.cold` is not among them: it is the cold tail of a function, not an entry.
pub const CLONE_SUFFIXES: &[&str] = &[
    "isra",
    "constprop",
    "part",
    "llvm",
    "lto_priv",
    "specialized",
];

/// Splits `name` into the original function's name and a clone suffix, when it is a
/// compiler clone: `finish_task_switch.isra.0` → `finish_task_switch`, `isra.0`.
pub fn clone_of(name: &str) -> Option<(&str, &str)> {
    let (base, suffix) = name.split_once('.')?;
    let first = suffix.split('.').next()?;
    (CLONE_SUFFIXES.contains(&first) && !suffix.split('.').any(|s| s == "cold") && !base.is_empty())
        .then_some((base, suffix))
}

/// The instances of one name: almost always one, kept without an allocation of its own.
#[derive(Debug)]
enum Instances {
    One(Instance),
    Many(Vec<Instance>),
}

impl Instances {
    fn as_slice(&self) -> &[Instance] {
        match self {
            Instances::One(i) => std::slice::from_ref(i),
            Instances::Many(v) => v,
        }
    }
    fn push(&mut self, i: Instance) {
        match self {
            Instances::One(first) => *self = Instances::Many(vec![first.clone(), i]),
            Instances::Many(v) => v.push(i),
        }
    }
}

/// The text symbols of /proc/kallsyms: every instance of every name, and the compiler
/// clones of each original name.
#[derive(Debug, Default)]
pub struct TextSymbols {
    names: NameTable,
    /// By name id.
    instances: Vec<Instances>,
    /// The names that have compiler clones.
    originals: NameTable,
    /// By `originals` id: the name ids of its clones, in kallsyms order.
    clones: Vec<Vec<u32>>,
    /// Whether every address read 0 (kptr_restrict hides them).
    pub addresses_hidden: bool,
}

/// Builds [`TextSymbols`] from kallsyms lines given in order, one at a time or in chunks
/// of whole lines (so that another thread can take over the parse while this one reads).
#[derive(Debug)]
pub(crate) struct TextSymbolsBuilder {
    out: TextSymbols,
    nonzero: bool,
    /// Module lines come grouped by module: one shared name per module.
    last_module: Option<Arc<str>>,
    /// Lines taken so far, for the line numbers of errors.
    lines: usize,
}

impl Default for TextSymbolsBuilder {
    fn default() -> Self {
        TextSymbolsBuilder {
            out: TextSymbols {
                names: NameTable::with_capacity(128 * 1024, 4 << 20),
                instances: Vec::with_capacity(128 * 1024),
                ..Default::default()
            },
            nonzero: false,
            last_module: None,
            lines: 0,
        }
    }
}

impl TextSymbolsBuilder {
    /// Takes one kallsyms line (without its newline), keeping text symbols (`t T w W`).
    pub(crate) fn line(&mut self, text: &[u8]) -> Result<(), KallsymsError> {
        self.lines += 1;
        let line = kallsyms::split_line(text, self.lines)?;
        if !line.is_text() {
            return Ok(());
        }
        if !valid_symbol(line.name) {
            // Real kallsyms names are C identifiers with clone suffixes; anything else
            // is not kallsyms.
            return Err(line.malformed("not a symbol name"));
        }
        let name = std::str::from_utf8(line.name).expect("checked ASCII");
        let addr = line.addr();
        self.nonzero |= addr != 0;
        let module = match line.module {
            None => None,
            Some(m) => {
                if self.last_module.as_deref().map(str::as_bytes) != Some(m) {
                    self.last_module = Some(String::from_utf8_lossy(m).into());
                }
                self.last_module.clone()
            }
        };
        let instance = Instance { addr, module };
        let out = &mut self.out;
        match out.names.intern(name) {
            (id, true) => {
                out.instances.push(Instances::One(instance));
                if let Some((base, _)) = clone_of(name) {
                    match out.originals.intern(base) {
                        (_, true) => out.clones.push(vec![id]),
                        (o, false) => out.clones[o as usize].push(id),
                    }
                }
            }
            (id, false) => out.instances[id as usize].push(instance),
        }
        Ok(())
    }

    /// Takes a chunk of whole lines, each ending in a newline but perhaps the text's last.
    pub(crate) fn chunk(&mut self, chunk: &[u8]) -> Result<(), KallsymsError> {
        crate::lines::for_each_line_of(chunk, |l| self.line(l))
    }

    /// The error for a line that fills a whole read buffer (the next line's number).
    pub(crate) fn too_long(&self, text: &[u8]) -> KallsymsError {
        kallsyms::malformed(self.lines + 1, "line longer than 256 KiB", text)
    }

    /// The symbols taken.
    pub(crate) fn finish(mut self) -> TextSymbols {
        self.out.addresses_hidden = !self.nonzero && !self.out.instances.is_empty();
        self.out
    }
}

impl TextSymbols {
    /// Parses kallsyms text, keeping text symbols (types `t T w W`).
    pub fn parse<R: Read>(reader: R) -> Result<Self, KallsymsError> {
        let mut b = TextSymbolsBuilder::default();
        // Real lines are under 600 bytes (KSYM_NAME_LEN and a module name): one that fills
        // 256 KiB is no kallsyms.
        crate::lines::for_each_line(
            reader,
            256 * 1024,
            |_, line| b.line(line),
            |source| KallsymsError::Io {
                path: "kallsyms".into(),
                source,
            },
            |no, text| kallsyms::malformed(no, "line longer than 256 KiB", text),
        )?;
        Ok(b.finish())
    }

    /// Every instance of `name`.
    pub fn get(&self, name: &str) -> &[Instance] {
        self.get_hashed(name, NameHash::of(name.as_bytes()))
    }

    pub(crate) fn get_hashed(&self, name: &str, hash: NameHash) -> &[Instance] {
        self.names
            .get_hashed(name, hash)
            .map_or(&[], |id| self.instances[id as usize].as_slice())
    }

    /// The compiler clones of `name` (`name.isra.0`, …), in kallsyms order.
    pub fn clones(&self, name: &str) -> impl ExactSizeIterator<Item = &str> {
        self.clones_hashed(name, NameHash::of(name.as_bytes()))
    }

    pub(crate) fn clones_hashed(
        &self,
        name: &str,
        hash: NameHash,
    ) -> impl ExactSizeIterator<Item = &str> {
        self.originals
            .get_hashed(name, hash)
            .map_or(&[][..], |o| self.clones[o as usize].as_slice())
            .iter()
            .map(|id| self.names.name(*id))
    }

    /// How many distinct text symbol names there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftrace_lines_count_instances_and_skip_invalid_addresses() {
        let f = FtraceFunctions::parse(
            "tcp_v4_rcv\nfoo\nfoo\n__ftrace_invalid_address___64\nnf_hook_slow [nf_tables]\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(f.count("foo"), 2);
        assert_eq!(f.count("nf_hook_slow"), 1);
        assert_eq!(f.count("__ftrace_invalid_address___64"), 0);
        assert_eq!(f.count("bar"), 0);
        assert!(FtraceFunctions::parse("a b c\n".as_bytes()).is_err());
        assert!(FtraceFunctions::parse("we\u{1}ird\n".as_bytes()).is_err());
    }

    #[test]
    fn blacklist_lines_with_and_without_ranges() {
        let b = KprobeBlacklist::parse(
            "0xffffffff81001000-0xffffffff81001020\tdo_int3\n0xffffffff81002000-0xffffffff81003000\t__entry_text_start\nnmi_handle\n"
                .as_bytes(),
        )
        .unwrap();
        assert!(b.contains("do_int3", 0) && b.contains("nmi_handle", 0));
        assert!(!b.contains("tcp_v4_rcv", 0));
        // 6.2+: one range covers the whole area, whatever the names inside.
        assert!(b.contains("some_noinstr_function", 0xffffffff81002800));
        assert!(!b.contains("tcp_v4_rcv", 0xffffffff81003000));
        assert!(KprobeBlacklist::parse("0xffff-0xffff\n".as_bytes()).is_err());
    }

    #[test]
    fn clones_are_recognised_but_cold_parts_are_not() {
        assert_eq!(
            clone_of("finish_task_switch.isra.0"),
            Some(("finish_task_switch", "isra.0"))
        );
        assert_eq!(clone_of("foo.constprop.0.isra.0").map(|c| c.0), Some("foo"));
        assert_eq!(clone_of("foo.llvm.123456").map(|c| c.0), Some("foo"));
        assert_eq!(clone_of("foo.cold"), None);
        assert_eq!(clone_of("foo.part.0.cold"), None);
        assert_eq!(clone_of("foo"), None);
        assert_eq!(clone_of(".isra.0"), None);
    }

    #[test]
    fn text_symbols_with_instances_clones_and_modules() {
        let t = TextSymbols::parse(
            "ffffffff81000000 T _text\n\
             ffffffff81100000 t finish_task_switch.isra.0\n\
             ffffffff81200000 t dup\n\
             ffffffff81300000 t dup\n\
             ffffffff81400000 d some_data\n\
             ffffffffc0000000 t nf_hook_slow\t[nf_tables]\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(t.get("dup").len(), 2);
        assert!(t.get("some_data").is_empty());
        assert_eq!(t.clones("finish_task_switch").len(), 1);
        assert_eq!(
            t.get("nf_hook_slow")[0].module.as_deref(),
            Some("nf_tables")
        );
        assert!(!t.addresses_hidden);
        let hidden = TextSymbols::parse("0000000000000000 T _text\n".as_bytes()).unwrap();
        assert!(hidden.addresses_hidden);
    }
}
