//! /proc/kallsyms read on one thread and parsed by whichever thread is free. The kernel
//! formats kallsyms as it is read, which is most of the read's time; once the caller's
//! thread has read BTF and ftrace it takes over the parse, and the reading thread only
//! reads. Chunks are parsed in order, by the one thread that holds the builder.
use std::{
    collections::VecDeque,
    io::Read,
    sync::{Condvar, Mutex, MutexGuard, PoisonError, TryLockError},
};

use super::sources::{TextSymbols, TextSymbolsBuilder};

/// The read size; real lines are under 600 bytes, so a buffer without a newline is no
/// kallsyms.
const CHUNK: usize = 256 * 1024;

enum Item {
    /// Whole lines, each ending in a newline but perhaps the text's last.
    Lines(Vec<u8>),
    /// A full buffer without a newline.
    TooLong(Vec<u8>),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// The reader has queued its last chunk, or the parse stopped.
    done: bool,
    /// Why the read or the parse stopped.
    error: Option<String>,
}

/// One kallsyms read, shared by the reading thread and a helping one.
pub(crate) struct KallsymsPipe {
    /// For errors.
    path: String,
    queue: Mutex<Queue>,
    arrived: Condvar,
    /// Made on the first chunk (it reserves a few MiB).
    builder: Mutex<Option<TextSymbolsBuilder>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks the read done however the reading thread leaves (a panic included), so that a
/// helper waiting for chunks is never left waiting.
struct DoneOnDrop<'a>(&'a KallsymsPipe);

impl Drop for DoneOnDrop<'_> {
    fn drop(&mut self) {
        lock(&self.0.queue).done = true;
        self.0.arrived.notify_all();
    }
}

impl KallsymsPipe {
    pub(crate) fn new(path: &std::path::Path) -> Self {
        KallsymsPipe {
            path: path.display().to_string(),
            queue: Mutex::default(),
            arrived: Condvar::new(),
            builder: Mutex::default(),
        }
    }

    /// Stops the read and the parse with `why`.
    pub(crate) fn fail(&self, why: String) {
        let mut q = lock(&self.queue);
        q.error.get_or_insert(why);
        q.items.clear();
        q.done = true;
        drop(q);
        self.arrived.notify_all();
    }

    fn push(&self, item: Item) {
        lock(&self.queue).items.push_back(item);
        self.arrived.notify_all();
    }

    /// Reads `reader` to its end in chunks of whole lines, parsing the queued chunks itself
    /// whenever no other thread is; then parses what is left.
    pub(crate) fn read(&self, reader: impl Read) {
        /// Why the read stopped early.
        enum Stop {
            /// The parse failed, and said why.
            Failed,
            Io(String),
            TooLong(Vec<u8>),
        }
        {
            let _done = DoneOnDrop(self);
            let read = crate::lines::for_each_chunk(
                reader,
                CHUNK,
                |chunk| {
                    if lock(&self.queue).error.is_some() {
                        return Err(Stop::Failed);
                    }
                    self.push(Item::Lines(chunk.to_vec()));
                    self.parse_queued(false);
                    Ok(())
                },
                |e| Stop::Io(format!("{}: {e}", self.path)),
                |text| Stop::TooLong(text.to_vec()),
            );
            match read {
                Ok(()) | Err(Stop::Failed) => {}
                Err(Stop::Io(why)) => self.fail(why),
                // The builder words it, with the line's number, in its turn.
                Err(Stop::TooLong(text)) => self.push(Item::TooLong(text)),
            }
        }
        self.parse_queued(true);
    }

    /// Parses queued chunks until the reader is done (the helping thread's part).
    pub(crate) fn help(&self) {
        self.parse_queued(true);
    }

    /// Parses queued chunks in order while this thread holds the builder: without `wait`,
    /// only if no other thread holds it and only what is queued; with `wait`, until the
    /// read is done.
    fn parse_queued(&self, wait: bool) {
        let mut b = if wait {
            lock(&self.builder)
        } else {
            match self.builder.try_lock() {
                Ok(b) => b,
                Err(TryLockError::WouldBlock) => return,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
            }
        };
        loop {
            let item = {
                let mut q = lock(&self.queue);
                while wait && q.items.is_empty() && !q.done {
                    q = self.arrived.wait(q).unwrap_or_else(PoisonError::into_inner);
                }
                match q.items.pop_front() {
                    Some(i) => i,
                    None => return,
                }
            };
            let b = b.get_or_insert_with(TextSymbolsBuilder::default);
            let parsed = match &item {
                Item::Lines(c) => b.chunk(c),
                Item::TooLong(t) => Err(b.too_long(t)),
            };
            if let Err(e) = parsed {
                self.fail(format!("{}: {e}", self.path));
                return;
            }
        }
    }

    /// The symbols read, or why they could not be (once both threads are done).
    pub(crate) fn finish(&self) -> Result<TextSymbols, String> {
        match lock(&self.queue).error.take() {
            Some(e) => Err(e),
            None => Ok(lock(&self.builder).take().unwrap_or_default().finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::Trickle;

    fn text(lines: usize) -> String {
        (0..lines)
            .map(|i| match i % 3 {
                0 => format!("ffffffff8{i:07x} T f{i}\n"),
                1 => format!("ffffffff8{i:07x} t f{}.isra.0\n", i - 1),
                _ => format!("ffffffffc{i:07x} t m{}\t[mod{}]\n", i / 7, i % 2),
            })
            .collect()
    }

    fn same(a: &TextSymbols, b: &TextSymbols, names: impl Iterator<Item = String>) {
        for n in names {
            assert_eq!(
                format!("{:?}", a.get(&n)),
                format!("{:?}", b.get(&n)),
                "{n}"
            );
            assert_eq!(
                a.clones(&n).collect::<Vec<_>>(),
                b.clones(&n).collect::<Vec<_>>(),
                "{n}"
            );
        }
    }

    #[test]
    fn a_pipe_parses_what_one_thread_parses_whoever_helps() {
        let t = text(6000);
        let alone = TextSymbols::parse(t.as_bytes()).unwrap();
        let names = || {
            (0..6000)
                .map(|i| format!("f{i}"))
                .chain((0..1000).map(|i| format!("m{i}")))
        };
        // Odd read sizes split lines across reads; a helper joins halfway.
        for step in [1 << 20, 4097, 301] {
            let pipe = KallsymsPipe::new("kallsyms".as_ref());
            std::thread::scope(|s| {
                s.spawn(|| pipe.read(Trickle(t.as_bytes(), step)));
                pipe.help();
            });
            let piped = pipe.finish().unwrap();
            same(&alone, &piped, names());
        }
        // Without a helper, and without a final newline.
        let pipe = KallsymsPipe::new("kallsyms".as_ref());
        pipe.read(Trickle(t.trim_end().as_bytes(), 999));
        same(&alone, &pipe.finish().unwrap(), names());
    }

    #[test]
    fn errors_stop_the_pipe_and_name_the_path() {
        let mut t = text(5000);
        t.push_str("not kallsyms\n");
        t.push_str(&text(5000));
        let pipe = KallsymsPipe::new("/proc/kallsyms".as_ref());
        std::thread::scope(|s| {
            s.spawn(|| pipe.read(Trickle(t.as_bytes(), 4096)));
            pipe.help();
        });
        let e = pipe.finish().unwrap_err();
        assert!(
            e.starts_with("/proc/kallsyms: ") && e.contains("5001"),
            "{e}"
        );
        // A line that fills the whole buffer.
        let long = vec![b'a'; CHUNK + 10];
        let pipe = KallsymsPipe::new("k".as_ref());
        pipe.read(long.as_slice());
        assert!(pipe.finish().unwrap_err().contains("longer than"));
    }
}
