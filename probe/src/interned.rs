//! Interned names for the attach-point sources: every name's bytes in one arena, a dense
//! id per distinct name, and a hash table of ids. The sources hold ~60k–200k names each;
//! a `Box<str>` key per name made allocation and freeing the largest part of parsing
//! them, and the ids let the resolver's tables be plain vectors.
use std::hash::Hasher;

use hashbrown::{HashTable, hash_table::Entry};

use crate::fxhash::FxHasher;

/// A name's hash, computed once and usable with any [`NameTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NameHash(u64);

impl NameHash {
    pub(crate) fn of(name: &[u8]) -> Self {
        let mut h = FxHasher::default();
        h.write(name);
        NameHash(h.finish())
    }
}

/// Distinct names with dense ids (0, 1, … in first-seen order).
#[derive(Debug, Default)]
pub(crate) struct NameTable {
    arena: String,
    /// Each id's `(start, end)` in `arena`.
    spans: Vec<(u32, u32)>,
    /// Each slot carries its name's span, so a lookup reads the arena only on a likely
    /// match: lookups are most of resolving every function, and each miss in the cache
    /// counts.
    slots: HashTable<Slot>,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    id: u32,
    start: u32,
    end: u32,
}

impl Slot {
    /// Its name's bytes in `arena`.
    fn name<'a>(&self, arena: &'a [u8]) -> &'a [u8] {
        &arena[self.start as usize..self.end as usize]
    }
}

impl NameTable {
    /// A table expecting about `names` names of `bytes` bytes in all.
    pub(crate) fn with_capacity(names: usize, bytes: usize) -> Self {
        NameTable {
            arena: String::with_capacity(bytes),
            spans: Vec::with_capacity(names),
            slots: HashTable::with_capacity(names),
        }
    }

    /// The id of `name` (whose hash is `hash`), if present.
    pub(crate) fn get_hashed(&self, name: &str, hash: NameHash) -> Option<u32> {
        let arena = self.arena.as_bytes();
        let name = name.as_bytes();
        self.slots
            .find(hash.0, |s| s.name(arena) == name)
            .map(|s| s.id)
    }

    /// The id of `name`, adding it if new; `true` when it was added.
    pub(crate) fn intern(&mut self, name: &str) -> (u32, bool) {
        let bytes = name.as_bytes();
        let arena = self.arena.as_bytes();
        let entry = self.slots.entry(
            NameHash::of(bytes).0,
            |s| s.name(arena) == bytes,
            // Only when the table grows.
            |s| NameHash::of(s.name(arena)).0,
        );
        match entry {
            Entry::Occupied(o) => (o.get().id, false),
            Entry::Vacant(v) => {
                let id = self.spans.len() as u32;
                let start = self.arena.len() as u32;
                self.arena.push_str(name);
                let end = self.arena.len() as u32;
                self.spans.push((start, end));
                v.insert(Slot { id, start, end });
                (id, true)
            }
        }
    }

    /// The name with id `id`.
    pub(crate) fn name(&self, id: u32) -> &str {
        let (s, e) = self.spans[id as usize];
        &self.arena[s as usize..e as usize]
    }

    /// How many distinct names.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Every name, in id order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &str> {
        (0..self.spans.len() as u32).map(|id| self.name(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_dense_ids_in_first_seen_order() {
        let mut t = NameTable::default();
        assert_eq!(t.intern("b"), (0, true));
        assert_eq!(t.intern("a"), (1, true));
        assert_eq!(t.intern("b"), (0, false));
        for i in 0..10_000 {
            t.intern(&format!("f{i}"));
        }
        let get = |n: &str| t.get_hashed(n, NameHash::of(n.as_bytes()));
        assert_eq!(get("a"), Some(1));
        assert_eq!(get("f9999"), Some(10_001));
        assert_eq!(get("f10000"), None);
        assert_eq!(t.name(10_001), "f9999");
        assert_eq!(t.iter().take(2).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(t.len(), 10_002);
    }
}
