//! Group values (`--group COL`) numbered in order of first appearance. A value is kept
//! once, as bytes in one arena, and the table holds only its number, so a file with as
//! many groups as rows still costs a few dozen bytes per group.

use std::hash::{BuildHasher, RandomState};

use hashbrown::hash_table::{Entry, HashTable};

use super::error::Problem;

/// The group numbers handed out so far.
#[derive(Debug, Default)]
pub(crate) struct GroupIds {
    /// Group numbers, hashed by their value.
    table: HashTable<u32>,
    /// Every value's bytes, one after another, in group order.
    bytes: Vec<u8>,
    /// `ends[g]` is where group g's bytes end (they start where group g − 1's end).
    ends: Vec<usize>,
    hasher: RandomState,
}

impl GroupIds {
    /// The number of the group whose value is `key` (the bytes of its text, or of its
    /// integer); a value not seen before gets the next number.
    pub fn id(&mut self, key: &[u8]) -> Result<u32, Problem> {
        let Self {
            table,
            bytes,
            ends,
            hasher,
        } = self;
        let value_of = |g: u32| {
            let g = g as usize;
            let start = if g == 0 { 0 } else { ends[g - 1] };
            &bytes[start..ends[g]]
        };
        let hash = hasher.hash_one(key);
        match table.entry(
            hash,
            |&g| value_of(g) == key,
            |&g| hasher.hash_one(value_of(g)),
        ) {
            Entry::Occupied(entry) => Ok(*entry.get()),
            Entry::Vacant(entry) => {
                let id = u32::try_from(ends.len()).map_err(|_| Problem::TooManyGroups)?;
                if id == u32::MAX {
                    return Err(Problem::TooManyGroups);
                }
                bytes.extend_from_slice(key);
                ends.push(bytes.len());
                entry.insert(id);
                Ok(id)
            }
        }
    }

    /// How many distinct values have been seen.
    pub fn len(&self) -> usize {
        self.ends.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_values_by_first_appearance() {
        let mut ids = GroupIds::default();
        let keys: [&[u8]; 7] = [b"b", b"a", b"b", b"", b"ab", b"a", b""];
        let got: Vec<u32> = keys.iter().map(|k| ids.id(k).unwrap()).collect();
        assert_eq!(got, [0, 1, 0, 2, 3, 1, 2]);
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn many_values_survive_growth() {
        let mut ids = GroupIds::default();
        for round in 0..2 {
            for i in 0u64..50_000 {
                assert_eq!(ids.id(&i.to_le_bytes()).unwrap(), i as u32, "round {round}");
            }
        }
        assert_eq!(ids.len(), 50_000);
    }
}
