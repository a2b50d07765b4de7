//! The interner of one tenant: every metric name, dimension key and dimension value the tenant ever
//! wrote, stored once in one arena and named by a dense [`StrId`]. Owns the strings; knows nothing of
//! series or metrics.
//!
//! Invariants: ids are dense (`0..len`), assigned in first-intern order and never change or go away, so
//! an id taken under one lock stays valid under a later one. No string is allocated on its own: the bytes
//! live in one `String` and a string is the range between two consecutive end offsets.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// A string's number within its tenant's interner.
pub(crate) type StrId = u32;

/// Interned strings: one byte arena, end offsets, and a table from a string's hash to its id.
#[derive(Default)]
pub(crate) struct Interner {
    /// Every string's bytes, concatenated in id order.
    bytes: String,
    /// End offset of string `i` in `bytes` (its start is the end of `i - 1`). `u64`, not `u32`: there
    /// are few distinct strings, and the arena may pass 4 GiB before the id space runs out.
    ends: Vec<u64>,
    /// Ids, found by hashing the string; the key is the arena range, so nothing is stored twice.
    table: HashTable<StrId>,
    hasher: DefaultHashBuilder,
}

impl Interner {
    /// The id of `s`, if it was interned. Allocates nothing.
    pub(crate) fn get(&self, s: &str) -> Option<StrId> {
        let hash = self.hasher.hash_one(s);
        self.table.find(hash, |&id| self.resolve(id) == s).copied()
    }

    /// The id of `s`, interning it first when new. `Err` only when the tenant has used all ids.
    pub(crate) fn intern(&mut self, s: &str) -> Result<StrId, String> {
        let hash = self.hasher.hash_one(s);
        if let Some(&id) = self.table.find(hash, |&id| self.resolve(id) == s) {
            return Ok(id);
        }
        let id = StrId::try_from(self.ends.len())
            .map_err(|_| format!("the tenant has interned all {} strings", StrId::MAX))?;
        self.bytes.push_str(s);
        self.ends.push(self.bytes.len() as u64);
        let (bytes, ends, hasher) = (&self.bytes, &self.ends, &self.hasher);
        self.table.insert_unique(hash, id, |&other| {
            hasher.hash_one(Self::slice(bytes, ends, other))
        });
        Ok(id)
    }

    /// The string of `id` (an id this interner returned).
    pub(crate) fn resolve(&self, id: StrId) -> &str {
        Self::slice(&self.bytes, &self.ends, id)
    }

    /// Number of interned strings.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Heap bytes held (capacity, not length), for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
            + self.ends.capacity() * size_of::<u64>()
            + self.table.allocation_size()
    }

    fn slice<'a>(bytes: &'a str, ends: &[u64], id: StrId) -> &'a str {
        let id = id as usize;
        let start = if id == 0 { 0 } else { ends[id - 1] as usize };
        &bytes[start..ends[id] as usize]
    }
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("strings", &self.ends.len())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_idempotent_and_ids_are_dense() {
        let mut strings = Interner::default();
        assert_eq!(strings.get("a"), None);
        let words = ["customer_id", "c1", "", "c10", "c1", "é✓", "customer_id"];
        let ids: Vec<StrId> = words.iter().map(|w| strings.intern(w).unwrap()).collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 1, 4, 0]);
        assert_eq!(strings.len(), 5);
        for (w, id) in words.iter().zip(&ids) {
            assert_eq!(strings.resolve(*id), *w);
            assert_eq!(strings.get(w), Some(*id));
        }
        assert_eq!(strings.get("c"), None);
    }

    #[test]
    fn many_strings_survive_table_growth() {
        let mut strings = Interner::default();
        for i in 0..10_000u32 {
            assert_eq!(strings.intern(&format!("v{i}")).unwrap(), i);
        }
        for i in (0..10_000u32).step_by(7) {
            assert_eq!(strings.get(&format!("v{i}")), Some(i));
            assert_eq!(strings.resolve(i), format!("v{i}"));
        }
        assert!(strings.heap_bytes() > 10_000 * 8);
    }
}
