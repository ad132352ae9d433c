//! The state store's files: `<version>.delta` (the keys one batch changed) and
//! `<version>.snapshot` (every key), each `MBSTATE1`, records (`PUT` key value | `REMOVE` key)
//! in key order, an end mark, the record count and a CRC-32 of everything before it; and the
//! background merge that makes a snapshot from the previous one and the change files since.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{Codec, Result, StateError, VERSIONS_TO_RETAIN, enc};
use crate::checkpoint::atomic::{self, Durability};

pub(super) const MAGIC: &[u8; 8] = b"MBSTATE1";
pub(super) const PUT: u8 = 1;
pub(super) const REMOVE: u8 = 2;
pub(super) const END: u8 = 0;

/// One record of a state file: the key decoded, and the raw bytes of key and value.
pub(super) struct Record<'a, K, V> {
    pub(super) key: K,
    pub(super) value: Option<V>,
    pub(super) raw_key: &'a [u8],
    pub(super) raw_value: Option<&'a [u8]>,
}

/// The path of `<version>.<kind>` in `dir`.
pub(super) fn file_path(dir: &Path, version: u64, kind: &str) -> PathBuf {
    dir.join(format!("{version}.{kind}"))
}

/// Reads a state file, checks its header, checksum and record count, and hands each record
/// to `f` in file order.
pub(super) fn read_records<K: Codec, V: Codec>(
    path: &Path,
    mut f: impl FnMut(Record<'_, K, V>),
) -> Result<()> {
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
        let tag = enc::read_u8(&mut input).ok_or_else(|| corrupt("truncated record"))?;
        if tag == END {
            break;
        }
        if tag != PUT && tag != REMOVE {
            return Err(corrupt("unknown record tag"));
        }
        let at_key = input;
        let key = K::decode(&mut input).ok_or_else(|| corrupt("bad key"))?;
        let raw_key = &at_key[..at_key.len() - input.len()];
        let (value, raw_value) = if tag == PUT {
            let at_value = input;
            let v = V::decode(&mut input).ok_or_else(|| corrupt("bad value"))?;
            (Some(v), Some(&at_value[..at_value.len() - input.len()]))
        } else {
            (None, None)
        };
        f(Record {
            key,
            value,
            raw_key,
            raw_value,
        });
        records += 1;
    }
    let count = enc::read_i64(&mut input).ok_or_else(|| corrupt("no record count"))?;
    if count as u64 != records || !input.is_empty() {
        return Err(corrupt("record count mismatch"));
    }
    Ok(())
}

/// A state file built in memory: the header, then each record as it is pushed.
pub(super) struct RecordBuf {
    buf: Vec<u8>,
    count: i64,
}

impl RecordBuf {
    pub(super) fn new() -> Self {
        Self {
            buf: MAGIC.to_vec(),
            count: 0,
        }
    }

    /// Appends a record: its tag, then what `body` writes (the key, and the value of a put).
    pub(super) fn push(&mut self, tag: u8, body: impl FnOnce(&mut Vec<u8>)) {
        self.buf.push(tag);
        body(&mut self.buf);
        self.count += 1;
    }

    /// Writes the file atomically — the records, end mark, record count and CRC-32 — fsynced as
    /// `durability` says. A re-run batch overwrites its version, as Spark's provider does.
    /// Returns the bytes written.
    pub(super) fn write(mut self, path: &Path, durability: Durability) -> Result<u64> {
        self.buf.push(END);
        enc::i64(&mut self.buf, self.count);
        let crc = crc32fast::hash(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        atomic::replace(path, &self.buf, durability).map_err(|source| StateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(self.buf.len() as u64)
    }
}

/// Writes `<upto>.snapshot` from `<base>.snapshot` (or the empty store) and the change files
/// `base+1 ..= upto`: a merge of key-ordered files that holds only the changed keys in memory.
pub(super) fn merge_snapshot<K: Codec + Ord, V: Codec>(
    dir: &Path,
    base: Option<u64>,
    upto: u64,
    durability: Durability,
) -> Result<()> {
    // The changes since the base, the newest winning: key → (raw key, raw value or removal).
    let mut changes: BTreeMap<K, (Vec<u8>, Option<Vec<u8>>)> = BTreeMap::new();
    for v in base.map_or(1, |b| b + 1)..=upto {
        read_records::<K, V>(&file_path(dir, v, "delta"), |r| {
            changes.insert(r.key, (r.raw_key.to_vec(), r.raw_value.map(<[u8]>::to_vec)));
        })?;
    }
    let mut file = RecordBuf::new();
    let put = |file: &mut RecordBuf, raw_k: &[u8], raw_v: &[u8]| {
        file.push(PUT, |buf| {
            buf.extend_from_slice(raw_k);
            buf.extend_from_slice(raw_v);
        })
    };
    let mut pending = changes.into_iter().peekable();
    let mut emit_changes_before = |key: Option<&K>, file: &mut RecordBuf| {
        while let Some((k, _)) = pending.peek() {
            if key.is_some_and(|key| k > key) {
                break;
            }
            // Taken: the peek above saw it.
            let Some((k, (raw_k, raw_v))) = pending.next() else {
                break;
            };
            let same = key.is_some_and(|key| &k == key);
            if let Some(raw_v) = raw_v {
                put(file, &raw_k, &raw_v);
            }
            if same {
                return true;
            }
        }
        false
    };
    if let Some(b) = base {
        read_records::<K, V>(&file_path(dir, b, "snapshot"), |r| {
            // Changed keys sorting before this one, then this one: replaced (or removed) by
            // its newest change, else kept.
            if let Some(raw_v) = r.raw_value
                && !emit_changes_before(Some(&r.key), &mut file)
            {
                put(&mut file, r.raw_key, raw_v);
            }
        })?;
    }
    emit_changes_before(None, &mut file);
    file.write(&file_path(dir, upto, "snapshot"), durability)?;
    Ok(())
}

/// Deletes files no longer needed to rebuild any of the last [`VERSIONS_TO_RETAIN`] versions
/// up to `latest`.
pub(super) fn cleanup(dir: &Path, latest: u64) -> Result<()> {
    let keep_from = latest.saturating_sub(VERSIONS_TO_RETAIN);
    // The newest snapshot at or before `keep_from` must stay, with every delta after it.
    let floor = (0..=keep_from)
        .rev()
        .find(|v| file_path(dir, *v, "snapshot").is_file())
        .unwrap_or(0);
    let entries = fs::read_dir(dir).map_err(|source| StateError::Io {
        path: dir.to_path_buf(),
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
