//! The one chunked line reader of the /proc and tracefs parsers (kallsyms,
//! available_filter_functions, the kprobe blacklist): large reads, lines split with
//! `memchr`, a bound on a line's length so a file that is not what it claims ends in an
//! error rather than in an ever-growing buffer.
use std::io::Read;

/// Calls `line` with each line of `reader` (1-based number, bytes without the newline;
/// the last line may lack its newline). `io` turns a read error into the caller's error;
/// `too_long` is the error for a line that fills the whole `max`-byte buffer (its number
/// and the bytes read of it).
pub(crate) fn for_each_line<R: Read, E>(
    mut reader: R,
    max: usize,
    mut line: impl FnMut(usize, &[u8]) -> Result<(), E>,
    io: impl Fn(std::io::Error) -> E,
    too_long: impl Fn(usize, &[u8]) -> E,
) -> Result<(), E> {
    let mut buf = vec![0u8; max];
    let (mut start, mut end, mut no, mut eof) = (0usize, 0usize, 0usize, false);
    while !eof {
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        if end == buf.len() {
            return Err(too_long(no + 1, &buf[..end]));
        }
        let n = loop {
            match reader.read(&mut buf[end..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r.map_err(&io)?,
            }
        };
        end += n;
        eof = n == 0;
        while let Some(i) = memchr::memchr(b'\n', &buf[start..end])
            .map(|i| start + i)
            .or((eof && start < end).then_some(end))
        {
            no += 1;
            line(no, &buf[start..i])?;
            start = (i + 1).min(end);
        }
    }
    Ok(())
}
