//! Sorting keys by their order without chasing each one: a key's leading order is summarized
//! in four words held beside it in the array being sorted, and only keys whose words are equal
//! are compared themselves.
//!
//! A commit sorts the keys its batch changed and an eviction the keys it removed — a hundred
//! thousand at a time for a large batch — and comparing them through references into the map
//! was mostly cache misses.

/// A key's order summarized in four words: compared as a tuple, they never contradict the
/// keys' own order (`a < b` implies `prefix(a) <= prefix(b)`); where they are equal the keys
/// themselves decide.
pub trait OrderPrefix: Ord {
    /// The four words.
    fn order_prefix(&self) -> [u64; 4];
}

/// A signed integer as a word that orders as it does.
pub fn int_word(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

/// The first eight bytes of `b` from offset `at` as a big-endian word, zero-padded: for two
/// byte strings ordered lexicographically with the same first `at` bytes, a word never orders
/// them the other way (a zero pad sorts as the end of the shorter one does, or as a zero byte:
/// either way not after).
pub fn bytes_word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    let tail = b.get(at..).unwrap_or(&[]);
    let n = tail.len().min(8);
    w[..n].copy_from_slice(&tail[..n]);
    u64::from_be_bytes(w)
}

/// Sorts `items` by `key(item)`, each compared first by its prefix (see the module docs): the
/// standard library's `sort_by_cached_key` computes each prefix once and sorts them beside
/// references to the keys, which are compared only where the prefixes are equal.
pub fn sort_by_prefix<'a, T, K: OrderPrefix + 'a>(items: &mut [T], key: impl Fn(&T) -> &'a K) {
    items.sort_by_cached_key(|t| {
        let k = key(t);
        (k.order_prefix(), k)
    });
}

/// The pairs `items` yields, in the order of their keys ([`sort_by_prefix`]).
pub fn by_key<'a, K: OrderPrefix, V>(items: impl Iterator<Item = (&'a K, &'a V)>) -> Vec<(&'a K, &'a V)> {
    let mut all: Vec<(&K, &V)> = items.collect();
    sort_by_prefix(&mut all, |(k, _)| *k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    struct Key(Option<(i64, i64)>, Vec<u8>);

    impl OrderPrefix for Key {
        fn order_prefix(&self) -> [u64; 4] {
            match self.0 {
                None => [0, 0, 0, bytes_word(&self.1, 0)],
                Some((s, e)) => [1, int_word(s), int_word(e), bytes_word(&self.1, 0)],
            }
        }
    }

    #[test]
    fn sorts_as_the_keys_order() {
        // Keys crowded on few values so the words tie often: short, long and zero-ended byte
        // strings, windows at the extremes of i64.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let ends = [i64::MIN, -1, 0, 1, i64::MAX];
        for _ in 0..200 {
            let keys: Vec<Key> = (0..300)
                .map(|_| {
                    let window = match next() % 4 {
                        0 => None,
                        _ => Some((ends[next() as usize % 5], ends[next() as usize % 5])),
                    };
                    let len = (next() % 12) as usize;
                    let bytes = (0..len).map(|_| [0u8, 1, 255][next() as usize % 3]).collect();
                    Key(window, bytes)
                })
                .collect();
            let mut expected = keys.clone();
            expected.sort();
            let mut got: Vec<&Key> = keys.iter().collect();
            sort_by_prefix(&mut got, |k| *k);
            assert_eq!(got, expected.iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn words_order_as_their_values() {
        let ints = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for w in ints.windows(2) {
            assert!(int_word(w[0]) < int_word(w[1]));
        }
        assert!(bytes_word(b"ab", 0) <= bytes_word(b"ab\0", 0));
        assert!(bytes_word(b"ab", 0) < bytes_word(b"ac", 0));
        assert_eq!(bytes_word(b"abcdefghij", 8), bytes_word(b"ij", 0));
        assert_eq!(bytes_word(b"abc", 8), 0);
    }
}
