//! A versioned key–value state store, persisted in the checkpoint (Spark's HDFS-backed
//! provider, R12).
//!
//! - Batch N opens version N and [`StateStore::commit`] makes version N+1.
//! - Each commit writes `<dir>/<N+1>.delta` with only the keys the batch put or removed, so a
//!   checkpoint costs in proportion to the keys that changed. Every `snapshot_interval`
//!   versions it also writes `<N+1>.snapshot` with every key, so a restart replays at most that
//!   many change files. Files older than the newest snapshot that covers the last 100 versions
//!   are deleted.
//! - Re-running batch N rebuilds version N from disk and overwrites `<N+1>.delta`.
//! - Every file ends with a record count and a CRC-32 of its bytes: a truncated or corrupt file
//!   is an error naming it, never a silently wrong state.
//!
//! Keys are kept in a `BTreeMap`, so iteration order — and with it the order of emitted rows —
//! is deterministic.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::checkpoint::atomic;

const MAGIC: &[u8; 8] = b"MBSTATE1";
const PUT: u8 = 1;
const REMOVE: u8 = 2;
const END: u8 = 0;

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
    /// Bytes of the change file (and snapshot, when one was written).
    pub bytes_written: u64,
}

/// A state store at one version, with the batch's uncommitted changes.
#[derive(Debug)]
pub struct StateStore<K, V> {
    dir: PathBuf,
    version: u64,
    map: BTreeMap<K, V>,
    changes: BTreeMap<K, bool>,
    updated: u64,
    removed: u64,
    snapshot_interval: u64,
    mem: usize,
}

impl<K: Codec + Ord + Clone, V: Codec> StateStore<K, V> {
    /// Opens the store in `dir` at `version` (0 is the empty store).
    pub fn open(dir: &Path, version: u64, snapshot_interval: u64) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|source| StateError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut store = Self {
            dir: dir.to_path_buf(),
            version,
            map: BTreeMap::new(),
            changes: BTreeMap::new(),
            updated: 0,
            removed: 0,
            snapshot_interval: snapshot_interval.max(1),
            mem: 0,
        };
        if version > 0 {
            store.load(version)?;
        }
        Ok(store)
    }

    fn path(&self, version: u64, kind: &str) -> PathBuf {
        self.dir.join(format!("{version}.{kind}"))
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
            .map(|(k, v)| k.mem_size() + v.mem_size() + 48)
            .sum();
        Ok(())
    }

    fn apply_file(&mut self, path: &Path) -> Result<()> {
        let bytes = fs::read(path).map_err(|source| StateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let corrupt = |why: &str| StateError::Corrupt {
            path: path.to_path_buf(),
            why: why.to_string(),
        };
        if bytes.len() < MAGIC.len() + 13 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("bad header or truncated"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let crc = u32::from_le_bytes(crc.try_into().map_err(|_| corrupt("no checksum"))?);
        if crc32fast::hash(body) != crc {
            return Err(corrupt("checksum mismatch (torn or altered write)"));
        }
        let mut input = &body[MAGIC.len()..];
        let mut records = 0u64;
        loop {
            match enc::read_u8(&mut input).ok_or_else(|| corrupt("truncated record"))? {
                PUT => {
                    let k = K::decode(&mut input).ok_or_else(|| corrupt("bad key"))?;
                    let v = V::decode(&mut input).ok_or_else(|| corrupt("bad value"))?;
                    self.map.insert(k, v);
                }
                REMOVE => {
                    let k = K::decode(&mut input).ok_or_else(|| corrupt("bad key"))?;
                    self.map.remove(&k);
                }
                END => break,
                _ => return Err(corrupt("unknown record tag")),
            }
            records += 1;
        }
        let count = enc::read_i64(&mut input).ok_or_else(|| corrupt("no record count"))?;
        if count as u64 != records || !input.is_empty() {
            return Err(corrupt("record count mismatch"));
        }
        Ok(())
    }

    /// The version this store holds (before the batch's changes are committed).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// Puts `key` (counted as an update).
    pub fn put(&mut self, key: K, value: V) {
        self.mem += key.mem_size() + value.mem_size();
        if let Some(old) = self.map.get(&key) {
            self.mem = self.mem.saturating_sub(key.mem_size() + old.mem_size());
        } else {
            self.mem += 48;
        }
        self.changes.insert(key.clone(), true);
        self.map.insert(key, value);
        self.updated += 1;
    }

    /// Removes `key`, returning its value (counted as a removal when present).
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let v = self.map.remove(key)?;
        self.mem = self.mem.saturating_sub(key.mem_size() + v.mem_size() + 48);
        self.changes.insert(key.clone(), false);
        self.removed += 1;
        Some(v)
    }

    /// Every key and value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
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

    fn write_file(&self, path: &Path, records: impl Iterator<Item = (u8, Vec<u8>)>) -> Result<u64> {
        let mut buf = MAGIC.to_vec();
        let mut count = 0i64;
        for (tag, rec) in records {
            buf.push(tag);
            buf.extend_from_slice(&rec);
            count += 1;
        }
        buf.push(END);
        enc::i64(&mut buf, count);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        // A re-run batch overwrites its version, as Spark's provider does.
        atomic::replace(path, &buf).map_err(|source| StateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(buf.len() as u64)
    }

    /// Writes version N+1: the change file, a snapshot when due, and cleans up old files.
    pub fn commit(&mut self) -> Result<CommitStats> {
        let next = self.version + 1;
        let changes = std::mem::take(&mut self.changes);
        let map = &self.map;
        let records = changes.into_iter().map(|(k, put)| {
            let mut rec = Vec::new();
            k.encode(&mut rec);
            match map.get(&k).filter(|_| put) {
                Some(v) => {
                    v.encode(&mut rec);
                    (PUT, rec)
                }
                None => (REMOVE, rec),
            }
        });
        let mut bytes = self.write_file(&self.path(next, "delta"), records)?;
        if next.is_multiple_of(self.snapshot_interval) {
            let all = self.map.iter().map(|(k, v)| {
                let mut rec = Vec::new();
                k.encode(&mut rec);
                v.encode(&mut rec);
                (PUT, rec)
            });
            bytes += self.write_file(&self.path(next, "snapshot"), all)?;
            self.cleanup(next)?;
        }
        let stats = CommitStats {
            version: next,
            updated: self.updated,
            removed: self.removed,
            total: self.map.len() as u64,
            bytes_written: bytes,
        };
        self.version = next;
        self.updated = 0;
        self.removed = 0;
        Ok(stats)
    }

    /// Deletes files no longer needed to rebuild any of the last [`VERSIONS_TO_RETAIN`] versions.
    fn cleanup(&self, latest: u64) -> Result<()> {
        let keep_from = latest.saturating_sub(VERSIONS_TO_RETAIN);
        // The newest snapshot at or before `keep_from` must stay, with every delta after it.
        let floor = (0..=keep_from)
            .rev()
            .find(|v| self.path(*v, "snapshot").is_file())
            .unwrap_or(0);
        let entries = fs::read_dir(&self.dir).map_err(|source| StateError::Io {
            path: self.dir.clone(),
            source,
        })?;
        for e in entries.flatten() {
            let name = e.file_name();
            let Some((v, _)) = name.to_str().and_then(|n| n.split_once('.')) else {
                continue;
            };
            if let Ok(v) = v.parse::<u64>()
                && v < floor
            {
                let _ = fs::remove_file(e.path());
            }
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
            assert_eq!(st.version, batch as u64 + 1);
            expected.push(s.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
        }
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
}
