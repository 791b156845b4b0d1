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
    reader: R,
    max: usize,
    mut line: impl FnMut(usize, &[u8]) -> Result<(), E>,
    io: impl Fn(std::io::Error) -> E,
    too_long: impl Fn(usize, &[u8]) -> E,
) -> Result<(), E> {
    let no = std::cell::Cell::new(0);
    for_each_chunk(
        reader,
        max,
        |chunk| {
            for_each_line_of(chunk, |l| {
                no.set(no.get() + 1);
                line(no.get(), l)
            })
        },
        io,
        |text| too_long(no.get() + 1, text),
    )
}

/// Calls `chunk` with runs of whole lines of `reader` as they are read, each run ending in
/// a newline but perhaps the text's last. `io` turns a read error into the caller's error;
/// `too_long` is the error for a line that fills the whole `max`-byte buffer (the bytes
/// read of it).
pub(crate) fn for_each_chunk<R: Read, E>(
    mut reader: R,
    max: usize,
    mut chunk: impl FnMut(&[u8]) -> Result<(), E>,
    io: impl Fn(std::io::Error) -> E,
    too_long: impl Fn(&[u8]) -> E,
) -> Result<(), E> {
    let mut buf = vec![0u8; max];
    // Bytes of an unfinished line at the buffer's start.
    let mut held = 0;
    loop {
        let n = loop {
            match reader.read(&mut buf[held..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r.map_err(&io)?,
            }
        };
        let end = held + n;
        if n == 0 {
            return if end > 0 { chunk(&buf[..end]) } else { Ok(()) };
        }
        match memchr::memrchr(b'\n', &buf[..end]) {
            Some(i) => {
                chunk(&buf[..=i])?;
                buf.copy_within(i + 1..end, 0);
                held = end - i - 1;
            }
            None if end == buf.len() => return Err(too_long(&buf[..end])),
            None => held = end,
        }
    }
}

/// Calls `line` with each line of a run of whole lines (bytes without the newline; the
/// last may lack it).
pub(crate) fn for_each_line_of<E>(
    chunk: &[u8],
    mut line: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut start = 0;
    while start < chunk.len() {
        let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |i| start + i);
        line(&chunk[start..end])?;
        start = end + 1;
    }
    Ok(())
}

/// A reader of `.0` that returns at most `.1` bytes a call, to split lines across reads.
#[cfg(test)]
pub(crate) struct Trickle<'a>(pub &'a [u8], pub usize);

#[cfg(test)]
impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8], step: usize, max: usize) -> Result<Vec<(usize, String)>, String> {
        let mut out = Vec::new();
        for_each_line(
            Trickle(text, step),
            max,
            |no, l| {
                out.push((no, String::from_utf8_lossy(l).into_owned()));
                Ok(())
            },
            |e| e.to_string(),
            |no, t| format!("line {no}: {} bytes and no end", t.len()),
        )?;
        Ok(out)
    }

    #[test]
    fn lines_are_the_same_at_any_read_size() {
        let want: Vec<(usize, String)> = [(1, "ab"), (2, ""), (3, "cde"), (4, "f")]
            .map(|(n, l)| (n, l.to_string()))
            .into();
        for step in [1, 2, 3, 7, 100] {
            assert_eq!(lines(b"ab\n\ncde\nf", step, 8).unwrap(), want, "{step}");
            assert_eq!(lines(b"ab\n\ncde\nf\n", step, 8).unwrap(), want, "{step}");
        }
        assert_eq!(lines(b"", 1, 8).unwrap(), []);
    }

    #[test]
    fn a_line_that_fills_the_buffer_is_an_error_with_its_number() {
        assert_eq!(
            lines(b"ab\ncdefghijk\n", 3, 8).unwrap_err(),
            "line 2: 8 bytes and no end"
        );
        // A line of exactly the buffer's size minus its newline fits.
        assert_eq!(lines(b"abcdefg\n", 3, 8).unwrap().len(), 1);
    }
}
