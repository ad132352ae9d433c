//! A versioned key–value state store, persisted in the checkpoint (Spark's HDFS-backed
//! provider, R12).
//!
//! - Batch N opens version N and [`StateStore::commit`] makes version N+1.
//! - Each commit writes `<dir>/<N+1>.delta` with only the keys the batch put or removed, so a
//!   checkpoint costs in proportion to the keys that changed.
//! - `snapshot_interval` versions after the last snapshot, a background thread writes
//!   `<N+1>.snapshot` with every key, merged from files already written — the previous
//!   snapshot and the change files since, all in key order (`state/files.rs`) — not from the live
//!   map, so it holds only the changed keys in memory (Spark's maintenance thread does the
//!   same job). A batch never waits for a snapshot and two are never written at once; when
//!   batches outrun the merge, snapshots simply come further apart. A restart replays about
//!   `snapshot_interval` change files. Files older than the newest snapshot that covers the
//!   last 100 versions are then deleted.
//! - Re-running batch N rebuilds version N from disk, removes a `<N+1>.snapshot` an earlier run
//!   left, and overwrites `<N+1>.delta`.
//! - Every file ends with a record count and a CRC-32 of its bytes: a truncated or corrupt file
//!   is an error naming it, never a silently wrong state.
//!
//! Keys are kept in a hash map (a fixed seed: the same keys give the same map every run) for
//! lookups that cost one hash and one key compare, not a compare per tree level; whatever
//! leaves the store in order — [`StateStore::iter`], the change files — is sorted by key first,
//! so the order of emitted rows is the keys' order.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::checkpoint::atomic::Durability;

mod files;
pub mod order;

use files::{PUT, REMOVE, RecordBuf, cleanup, file_path, merge_snapshot, read_records};
pub use order::OrderPrefix;
use order::sort_by_prefix;

/// Versions kept recoverable (Spark's `minBatchesToRetain`).
pub const VERSIONS_TO_RETAIN: u64 = 100;

/// Errors of the state store, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// I/O on a state file.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A state file is truncated or corrupt.
    #[error(
        "state file {path} is corrupt ({why}); the checkpoint's state cannot be rebuilt — restore the file or start the query on a new checkpoint"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A version cannot be rebuilt from the files present.
    #[error("state version {version} cannot be rebuilt from {dir}: {why}")]
    Missing {
        /// The store folder.
        dir: PathBuf,
        /// The version asked for.
        version: u64,
        /// What is missing.
        why: String,
    },
}

type Result<T> = std::result::Result<T, StateError>;

/// A type the store can write and read back.
pub trait Codec: Sized {
    /// Appends the encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one value from the front of `input`, advancing it.
    fn decode(input: &mut &[u8]) -> Option<Self>;
    /// Approximate bytes held in memory.
    fn mem_size(&self) -> usize;
}

/// Encoding helpers for [`Codec`] implementations.
pub mod enc {
    /// Appends a little-endian i64.
    pub fn i64(out: &mut Vec<u8>, v: i64) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    /// Reads a little-endian i64.
    pub fn read_i64(input: &mut &[u8]) -> Option<i64> {
        let (head, rest) = input.split_first_chunk::<8>()?;
        *input = rest;
        Some(i64::from_le_bytes(*head))
    }
    /// Appends a length-prefixed string.
    pub fn str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    /// Reads a length-prefixed string.
    pub fn read_str(input: &mut &[u8]) -> Option<String> {
        let (head, rest) = input.split_first_chunk::<4>()?;
        let n = u32::from_le_bytes(*head) as usize;
        let bytes = rest.get(..n)?;
        *input = &rest[n..];
        String::from_utf8(bytes.to_vec()).ok()
    }
    /// Reads one byte.
    pub fn read_u8(input: &mut &[u8]) -> Option<u8> {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        Some(b)
    }
    /// Appends a little-endian u32.
    pub fn u32(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    /// Reads a little-endian u32.
    pub fn read_u32(input: &mut &[u8]) -> Option<u32> {
        let (head, rest) = input.split_first_chunk::<4>()?;
        *input = rest;
        Some(u32::from_le_bytes(*head))
    }
    /// Reads a little-endian i128.
    pub fn read_i128(input: &mut &[u8]) -> Option<i128> {
        let (head, rest) = input.split_first_chunk::<16>()?;
        *input = rest;
        Some(i128::from_le_bytes(*head))
    }
    /// Appends an optional i64: a presence byte, then the value if present.
    pub fn opt_i64(out: &mut Vec<u8>, v: Option<i64>) {
        out.push(u8::from(v.is_some()));
        if let Some(v) = v {
            i64(out, v);
        }
    }
    /// Reads what [`opt_i64`] wrote.
    pub fn read_opt_i64(input: &mut &[u8]) -> Option<Option<i64>> {
        match read_u8(input)? {
            0 => Some(None),
            1 => read_i64(input).map(Some),
            _ => None,
        }
    }
    /// Appends length-prefixed bytes.
    pub fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        u32(out, b.len() as u32);
        out.extend_from_slice(b);
    }
    /// Reads length-prefixed bytes.
    pub fn read_bytes(input: &mut &[u8]) -> Option<Vec<u8>> {
        let n = read_u32(input)? as usize;
        let b = input.get(..n)?.to_vec();
        *input = &input[n..];
        Some(b)
    }
}

/// What one commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// The version written.
    pub version: u64,
    /// Keys put by the batch.
    pub updated: u64,
    /// Keys removed by the batch.
    pub removed: u64,
    /// Keys after the commit.
    pub total: u64,
    /// Bytes of the change file.
    pub bytes_written: u64,
}

/// The keys and values [`StateStore::remove_where`] removed, in no particular order.
#[derive(Debug)]
pub struct Removed<K, V>(Vec<(K, V)>);

impl<K: OrderPrefix, V> Removed<K, V> {
    /// Each, in key order (sorted on the call: a caller that only removes pays nothing).
    pub fn in_key_order(&self) -> Vec<(&K, &V)> {
        order::by_key(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// A state store at one version, with the batch's uncommitted changes.
#[derive(Debug)]
pub struct StateStore<K, V> {
    dir: PathBuf,
    version: u64,
    /// Each key's value and the version it was last put in (`version + 1` for a put of this
    /// batch, so a commit clears every mark at once by moving on).
    map: HashMap<K, (V, u64), foldhash::fast::FixedState>,
    /// The keys the batch put, while they are few next to the map (`None` once they are not:
    /// the commit then finds them by their mark instead of holding a copy of each).
    puts: Option<Vec<K>>,
    /// The keys the batch removed, one entry a removal.
    removed: Vec<K>,
    updated: u64,
    snapshot_interval: u64,
    mem: usize,
    /// The newest snapshot known to be complete on disk.
    last_snapshot: Option<u64>,
    /// The snapshot being written in the background: its version and thread.
    snapshotting: Option<(u64, std::thread::JoinHandle<Result<()>>)>,
    /// Whether the change files and snapshots are fsynced.
    durability: Durability,
}

impl<K, V> Drop for StateStore<K, V> {
    fn drop(&mut self) {
        // A snapshot in flight is finished before the store goes (its error, if any, only means
        // a restart replays more change files).
        if let Some((_, t)) = self.snapshotting.take() {
            let _ = t.join();
        }
    }
}

impl<K: Codec + OrderPrefix + std::hash::Hash + Clone + Send + 'static, V: Codec + Send + 'static>
    StateStore<K, V>
{
    /// Opens the store in `dir` at `version` (0 is the empty store).
    pub fn open(dir: &Path, version: u64, snapshot_interval: u64) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|source| StateError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut store = Self {
            dir: dir.to_path_buf(),
            version,
            map: HashMap::default(),
            puts: Some(Vec::new()),
            removed: Vec::new(),
            updated: 0,
            snapshot_interval: snapshot_interval.max(1),
            mem: 0,
            last_snapshot: None,
            snapshotting: None,
            durability: Durability::ProcessCrash,
        };
        if version > 0 {
            store.load(version)?;
        }
        Ok(store)
    }

    /// Writes the change files and snapshots with `durability` (fsynced or not).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    fn path(&self, version: u64, kind: &str) -> PathBuf {
        file_path(&self.dir, version, kind)
    }

    fn load(&mut self, version: u64) -> Result<()> {
        let missing = |why: String| StateError::Missing {
            dir: self.dir.clone(),
            version,
            why,
        };
        let mut base = None;
        for v in (0..=version).rev() {
            if self.path(v, "snapshot").is_file() {
                base = Some(v);
                break;
            }
            if v == 0 {
                break;
            }
            if !self.path(v, "delta").is_file() {
                return Err(missing(format!(
                    "neither {v}.delta nor a snapshot at or before it exists"
                )));
            }
        }
        self.last_snapshot = base;
        let first_delta = match base {
            Some(v) => {
                self.apply_file(&self.path(v, "snapshot"))?;
                v + 1
            }
            None => 1,
        };
        for v in first_delta..=version {
            self.apply_file(&self.path(v, "delta"))?;
        }
        self.mem = self
            .map
            .iter()
            .map(|(k, (v, _))| k.mem_size() + v.mem_size() + 48)
            .sum();
        Ok(())
    }

    fn apply_file(&mut self, path: &Path) -> Result<()> {
        let map = &mut self.map;
        read_records::<K, V>(path, |r| match r.value {
            Some(v) => {
                map.insert(r.key, (v, 0));
            }
            None => {
                map.remove(&r.key);
            }
        })
    }

    /// The version this store holds (before the batch's changes are committed).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(v, _)| v)
    }

    /// Puts `key` (counted as an update).
    pub fn put(&mut self, key: K, value: V) {
        self.upsert(key, value, |old, new| *old = new);
    }

    /// Puts `value` at `key`, or — when `key` holds a value — folds `value` into it with
    /// `merge(old, value)` in place (counted as an update either way).
    pub fn upsert(&mut self, key: K, value: V, merge: impl FnOnce(&mut V, V)) {
        use std::collections::hash_map::Entry;
        self.updated += 1;
        let batch = self.version + 1;
        let (len, puts) = (self.map.len(), &mut self.puts);
        let mut note = |k: &K| {
            // Copies of the put keys are kept while they are fewer than a quarter of the map;
            // past that, the commit's scan of the marks is the cheaper way to find them.
            if let Some(list) = puts {
                if list.len() < (len / 4).max(1024) {
                    list.push(k.clone());
                } else {
                    *puts = None;
                }
            }
        };
        match self.map.entry(key) {
            Entry::Occupied(mut o) => {
                let (old, put_in) = o.get_mut();
                let before = old.mem_size();
                merge(old, value);
                self.mem = (self.mem + old.mem_size()).saturating_sub(before);
                if *put_in != batch {
                    *put_in = batch;
                    note(o.key());
                }
            }
            Entry::Vacant(v) => {
                self.mem += v.key().mem_size() + value.mem_size() + 48;
                note(v.key());
                v.insert((value, batch));
            }
        }
    }

    /// Makes room for `additional` more keys at once (a batch about to put that many), so the
    /// map grows once rather than doubling its way there.
    pub fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }

    /// Removes `key`, returning its value (counted as a removal when present).
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (k, (v, _)) = self.map.remove_entry(key)?;
        self.mem = self.mem.saturating_sub(k.mem_size() + v.mem_size() + 48);
        self.removed.push(k);
        Some(v)
    }

    /// Removes every key for which `remove(key, value)` holds, returning them (each counted
    /// as a removal).
    pub fn remove_where(&mut self, mut remove: impl FnMut(&K, &V) -> bool) -> Removed<K, V> {
        // Sized for the most it can hold, so it is never copied while it grows (the pages of
        // what is left over are never touched).
        let mut out: Vec<(K, V)> = Vec::with_capacity(self.map.len());
        out.extend(
            self.map
                .extract_if(|k, (v, _)| remove(k, v))
                .map(|(k, (v, _))| (k, v)),
        );
        for (k, v) in &out {
            self.mem = self.mem.saturating_sub(k.mem_size() + v.mem_size() + 48);
        }
        self.removed.extend(out.iter().map(|(k, _)| k.clone()));
        Removed(out)
    }

    /// Every key and value, in key order (sorted on each call: for lookups in no particular
    /// order, [`StateStore::iter_unordered`]).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        order::by_key(self.iter_unordered()).into_iter()
    }

    /// Every key and value in the map's order, which only the keys decide: for scans whose
    /// result does not depend on the order.
    pub fn iter_unordered(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, (v, _))| (k, v))
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Approximate bytes of memory the keys and values hold.
    pub fn memory_bytes(&self) -> u64 {
        self.mem as u64
    }

    /// Writes version N+1: the change file; when due, starts the snapshot in the background
    /// (after the previous one finished — its error, if any, is returned here).
    pub fn commit(&mut self) -> Result<CommitStats> {
        let next = self.version + 1;
        // A snapshot of this version from an earlier run (before a crash) would not describe
        // the change file written now.
        let stale = self.path(next, "snapshot");
        match fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(StateError::Io { path: stale, source }),
        }
        if self.last_snapshot.is_some_and(|s| s >= next) {
            self.last_snapshot = None;
        }
        let bytes = self
            .change_file()
            .write(&self.path(next, "delta"), self.durability)?;
        let removed = self.removed.len() as u64;
        self.puts = Some(Vec::new());
        self.removed.clear();
        if self.snapshotting.as_ref().is_some_and(|(_, t)| t.is_finished()) {
            self.settle()?;
        }
        // Due `snapshot_interval` versions after the last one — and only when none is in
        // flight: a batch never waits for a snapshot, and when batches outrun the merge the
        // snapshots simply come further apart.
        if self.snapshotting.is_none() && next - self.last_snapshot.unwrap_or(0) >= self.snapshot_interval {
            let (dir, base, durability) = (self.dir.clone(), self.last_snapshot, self.durability);
            let thread = std::thread::Builder::new()
                .name("state-snapshot".into())
                .spawn(move || {
                    merge_snapshot::<K, V>(&dir, base, next, durability)?;
                    cleanup(&dir, next)
                })
                .map_err(|source| StateError::Io {
                    path: self.path(next, "snapshot"),
                    source,
                })?;
            self.snapshotting = Some((next, thread));
        }
        let stats = CommitStats {
            version: next,
            updated: self.updated,
            removed,
            total: self.map.len() as u64,
            bytes_written: bytes,
        };
        self.version = next;
        self.updated = 0;
        Ok(stats)
    }

    /// The change file of the batch: each key it put (with its value now) or removed (and did
    /// not put again), once, in key order.
    fn change_file(&self) -> RecordBuf {
        let batch = self.version + 1;
        let mut puts: Vec<(&K, &V)> = match &self.puts {
            Some(list) => list
                .iter()
                .filter_map(|k| self.map.get_key_value(k))
                .filter(|(_, (_, put_in))| *put_in == batch)
                .map(|(k, (v, _))| (k, v))
                .collect(),
            None => self
                .map
                .iter()
                .filter(|(_, (_, put_in))| *put_in == batch)
                .map(|(k, (v, _))| (k, v))
                .collect(),
        };
        sort_by_prefix(&mut puts, |(k, _)| *k);
        puts.dedup_by(|a, b| a.0 == b.0);
        let mut removed: Vec<&K> = self
            .removed
            .iter()
            .filter(|k| !self.map.contains_key(k))
            .collect();
        sort_by_prefix(&mut removed, |k| *k);
        removed.dedup();
        let mut file = RecordBuf::new();
        let (mut p, mut r) = (puts.into_iter().peekable(), removed.into_iter().peekable());
        // A merge of the two key-ordered lists (a key is in at most one: a removed key the
        // store holds again is a put).
        loop {
            let put_next = match (p.peek(), r.peek()) {
                (None, None) => break,
                (Some((put, _)), Some(removed)) => put < removed,
                (put, _) => put.is_some(),
            };
            if put_next && let Some((k, v)) = p.next() {
                file.push(PUT, |out| {
                    k.encode(out);
                    v.encode(out);
                });
            } else if let Some(k) = r.next() {
                file.push(REMOVE, |out| k.encode(out));
            }
        }
        file
    }

    /// Waits for the snapshot being written in the background, if any.
    pub fn settle(&mut self) -> Result<()> {
        if let Some((version, thread)) = self.snapshotting.take() {
            match thread.join() {
                Ok(result) => result?,
                // The merge only reads and writes files; if it panicked, the panic goes on here.
                Err(panic) => std::panic::resume_unwind(panic),
            }
            self.last_snapshot = Some(version);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Codec for i64 {
        fn encode(&self, out: &mut Vec<u8>) {
            enc::i64(out, *self);
        }
        fn decode(input: &mut &[u8]) -> Option<Self> {
            enc::read_i64(input)
        }
        fn mem_size(&self) -> usize {
            8
        }
    }

    impl OrderPrefix for i64 {
        fn order_prefix(&self) -> [u64; 4] {
            [order::int_word(*self), 0, 0, 0]
        }
    }

    #[test]
    fn versions_rebuild_exactly_from_deltas_and_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = Vec::new();
        let mut s: StateStore<i64, i64> = StateStore::open(dir.path(), 0, 3).unwrap();
        for batch in 0..8i64 {
            s.put(batch, batch * 10);
            if batch >= 2 {
                s.remove(&(batch - 2));
            }
            let st = s.commit().unwrap();
            s.settle().unwrap();
            assert_eq!(st.version, batch as u64 + 1);
            expected.push(s.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
        }
        s.settle().unwrap();
        assert!(dir.path().join("3.snapshot").is_file());
        assert!(dir.path().join("6.snapshot").is_file());
        for v in 1..=8u64 {
            let r: StateStore<i64, i64> = StateStore::open(dir.path(), v, 3).unwrap();
            let got: Vec<_> = r.iter().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(got, expected[v as usize - 1], "version {v}");
        }
    }

    #[test]
    fn a_torn_change_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s: StateStore<i64, i64> = StateStore::open(dir.path(), 0, 10).unwrap();
        s.put(1, 1);
        s.commit().unwrap();
        let p = dir.path().join("1.delta");
        let bytes = fs::read(&p).unwrap();
        fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let e = StateStore::<i64, i64>::open(dir.path(), 1, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1.delta") && e.contains("corrupt"), "{e}");
        let mut flipped = bytes.clone();
        flipped[10] ^= 0xff;
        fs::write(&p, &flipped).unwrap();
        let e = StateStore::<i64, i64>::open(dir.path(), 1, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("checksum"), "{e}");
        fs::remove_file(&p).unwrap();
        let e = StateStore::<i64, i64>::open(dir.path(), 1, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be rebuilt"), "{e}");
    }

    #[test]
    fn change_files_hold_only_changed_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut s: StateStore<i64, i64> = StateStore::open(dir.path(), 0, 1000).unwrap();
        for k in 0..10_000 {
            s.put(k, k);
        }
        let big = s.commit().unwrap().bytes_written;
        s.put(5, 6);
        let st = s.commit().unwrap();
        assert_eq!((st.updated, st.total), (1, 10_000));
        assert!(
            st.bytes_written < 64 && big > 100_000,
            "{} vs {big}",
            st.bytes_written
        );
    }

    /// A batch that puts more keys than the store keeps copies of (a quarter of the map) finds
    /// them by their marks: its change file, like a small batch's, holds each changed key once,
    /// in key order — puts, removals, and keys removed then put again — and rebuilds the store.
    #[test]
    fn big_and_small_batches_write_the_same_change_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut s: StateStore<i64, i64> = StateStore::open(dir.path(), 0, 1000).unwrap();
        for k in 0..8_000 {
            s.put(k, k);
        }
        s.commit().unwrap();
        for (batch, puts) in [(1i64, 100), (2, 5_000)] {
            for k in 0..puts {
                s.put(k * 3 % 9_000, batch);
            }
            for k in 7_000..7_100 {
                s.remove(&k);
            }
            s.remove_where(|k, _| k % 1_000 == 999);
            s.put(7_050, -batch);
            s.remove(&42);
            let st = s.commit().unwrap();
            let mut records = Vec::new();
            read_records::<i64, i64>(&dir.path().join(format!("{}.delta", st.version)), |r| {
                records.push((r.key, r.value));
            })
            .unwrap();
            assert!(
                records.windows(2).all(|w| w[0].0 < w[1].0),
                "batch {batch}: key order, once"
            );
            assert!(records.contains(&(7_050, Some(-batch))) && records.contains(&(42, None)));
            // Removed (batch 1), put then removed (batch 2: 7,053 = 3 × 2,351).
            let gone = if batch == 1 { 7_051 } else { 7_053 };
            assert!(records.contains(&(gone, None)) && records.contains(&(3, Some(batch))));
            let r: StateStore<i64, i64> = StateStore::open(dir.path(), st.version, 1000).unwrap();
            assert_eq!(
                r.iter().collect::<Vec<_>>(),
                s.iter().collect::<Vec<_>>(),
                "batch {batch}"
            );
        }
    }

    /// Snapshots are merged from the previous snapshot and the change files: under random
    /// puts and removals each one equals the live map at its version.
    #[test]
    fn merged_snapshots_equal_the_live_store() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let dir = tempfile::tempdir().unwrap();
        let mut s: StateStore<i64, i64> = StateStore::open(dir.path(), 0, 4).unwrap();
        let mut expected = std::collections::HashMap::new();
        for _ in 0..41 {
            for _ in 0..rng.random_range(0..12) {
                let k = rng.random_range(0..60);
                if rng.random_bool(0.3) {
                    s.remove(&k);
                } else {
                    s.put(k, rng.random_range(-1000..1000));
                }
            }
            let st = s.commit().unwrap();
            s.settle().unwrap();
            expected.insert(st.version, s.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
        }
        s.settle().unwrap();
        for v in (4..=40).step_by(4) {
            let mut got = Vec::new();
            read_records::<i64, i64>(&dir.path().join(format!("{v}.snapshot")), |r| {
                got.push((r.key, r.value.unwrap()));
            })
            .unwrap();
            assert_eq!(got, expected[&v], "snapshot {v}");
        }
    }

    /// A re-run of batch N (after a crash that left version N+1 and its snapshot) removes the
    /// old snapshot before writing the change file again. (The re-run here snapshots on
    /// another interval, so the old snapshot would otherwise stay, as it would if the re-run
    /// crashed before its own snapshot landed.)
    #[test]
    fn a_rerun_version_drops_the_snapshot_an_earlier_run_left() {
        let dir = tempfile::tempdir().unwrap();
        let mut s: StateStore<i64, i64> = StateStore::open(dir.path(), 0, 2).unwrap();
        s.put(1, 1);
        s.commit().unwrap();
        s.settle().unwrap();
        s.put(2, 2);
        s.commit().unwrap();
        s.settle().unwrap();
        assert!(dir.path().join("2.snapshot").is_file());
        drop(s);
        let mut again: StateStore<i64, i64> = StateStore::open(dir.path(), 1, 3).unwrap();
        again.put(2, 20);
        again.commit().unwrap();
        again.settle().unwrap();
        assert!(!dir.path().join("2.snapshot").exists());
        let r: StateStore<i64, i64> = StateStore::open(dir.path(), 2, 3).unwrap();
        assert_eq!(
            r.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
            [(1, 1), (2, 20)]
        );
    }
}
