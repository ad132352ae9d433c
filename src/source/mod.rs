//! The JSON-lines file source (Spark's `FileStreamSource`, R5.1–R5.8).
//!
//! - **Discovery**: lists the input folder (not recursively); names starting with `.` or `_` are
//!   skipped, so a file written under a temp name and renamed into place is read once, whole.
//! - **Order**: new files sort by modification time, then by name. Spark sorts by mtime alone
//!   and leaves ties to the file system; the name tie-break makes ours deterministic.
//! - **Admission**: at most `maxFilesPerTrigger` files per batch.
//! - **Once ever**: every selected file is recorded in the source's own log,
//!   `sources/0/<k>`, *before* the batch's `offsets/N` names log entry `k`
//!   (`{"logOffset":k}`). A file in the log is never read again, even if rewritten. Unlike
//!   Spark there is no `maxFileAge`: a file that arrives with an old mtime is still read (Spark
//!   would drop it silently once it is 7 days older than the newest file).
//! - **Recovery**: a log entry written just before a crash (before its `offsets/N`) is taken as
//!   the next batch as it stands, so the batch honours `maxFilesPerTrigger` and no file is lost.
//! - **Reading**: a batch's files are cut into pieces at line ends and read on every core by
//!   the source's [`decode::Decoder`]: the seed's event parser by default, or
//!   [`FileSource::with_decoder`] for any schema ([`crate::schema::parse_schema`]) and Spark's
//!   JSON options ([`decode::JsonOptions::from_spark`]).

pub mod datetime;
pub mod decode;
pub mod flat;
pub mod parse;

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use deltalake::arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::checkpoint::atomic;
use crate::schema::SchemaError;
use decode::{Decoder, Mode, OptionError};
use parse::Rejected;

/// Errors of the file source, each naming the file or folder concerned.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `maxFilesPerTrigger` was not a positive integer.
    #[error("maxFilesPerTrigger must be a positive integer, got `{0}`")]
    InvalidMaxFiles(String),
    /// The input folder cannot be listed.
    #[error("cannot list input folder {path}: {source}")]
    List {
        /// The folder.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// An I/O error on the source log or an input file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A source-log file is not what the engine writes.
    #[error("source log file {path} is corrupt: {why}")]
    CorruptLog {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A log entry named by the offsets is missing.
    #[error("source log entry {0} is missing; the checkpoint is incomplete")]
    MissingLog(PathBuf),
    /// The source schema cannot be used.
    #[error("source schema: {0}")]
    Schema(#[from] SchemaError),
    /// A reader option cannot be used.
    #[error("source option: {0}")]
    Option(#[from] OptionError),
    /// `mode` is FAILFAST and a record could not be read (Spark's `MALFORMED_RECORD_IN_PARSING`).
    #[error(
        "malformed record in {file} line {line} (mode FAILFAST): {reason}; fix the record, or use mode PERMISSIVE to send bad records to the rejects table"
    )]
    Malformed {
        /// The input file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// Why the record was rejected.
        reason: String,
    },
}

type Result<T> = std::result::Result<T, SourceError>;

/// Parses a `maxFilesPerTrigger` setting: a positive integer, anything else is an error.
pub fn parse_max_files(text: &str) -> Result<NonZeroUsize> {
    text.trim()
        .parse::<NonZeroUsize>()
        .map_err(|_| SourceError::InvalidMaxFiles(text.to_string()))
}

/// One file in the source log (Spark's `FileEntry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// File name relative to the input folder.
    pub path: String,
    /// Modification time in epoch ms when it was listed.
    pub timestamp: i64,
    /// The source-log id `k` it was recorded under.
    pub batch_id: u64,
}

/// The source offset stored in `offsets/N`: the last source-log id the batch covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSourceOffset {
    /// Source-log id.
    pub log_offset: u64,
}

impl FileSourceOffset {
    /// As JSON, for `offsets/N`.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({ "logOffset": self.log_offset })
    }

    /// From the JSON in `offsets/N` (`{"logOffset":k}` or a bare `k`, as Spark accepts).
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        v.get("logOffset")
            .and_then(serde_json::Value::as_u64)
            .or_else(|| v.as_u64())
            .map(|k| Self { log_offset: k })
    }
}

/// What one batch read from its files.
#[derive(Debug)]
pub struct SourceBatch {
    /// The good rows, in file order then line order, in parts (one a file when many files are
    /// read on several threads) that together are the batch: joining them would copy every
    /// column, and a row-local pipeline and the sink take them as they are.
    pub parts: Vec<RecordBatch>,
    /// The rejected records.
    pub rejects: Vec<Rejected>,
    /// The files read.
    pub files: Vec<FileEntry>,
    /// Records (non-blank lines) seen, good and bad.
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// The file source of one query.
#[derive(Debug)]
pub struct FileSource {
    input: PathBuf,
    log_dir: PathBuf,
    max_files: NonZeroUsize,
    seen: BTreeSet<String>,
    latest: Option<u64>,
    /// The entries of the newest log ids, kept so a batch need not re-read its own log.
    recent: Vec<FileEntry>,
    /// When set (an available-now run), the files listed when it started, in order: its
    /// batches take from this list and never list the folder again (R4.1).
    admit_only: Option<VecDeque<FileEntry>>,
    /// Spark's unread-files cache (R5.4): what the last listing found beyond
    /// `maxFilesPerTrigger`, taken by the next batches without listing again until it runs out.
    unread: VecDeque<FileEntry>,
    /// Turns the files' lines into rows (the seed's event schema unless set).
    decoder: Arc<Decoder>,
    /// Whether the log's files are fsynced.
    durability: atomic::Durability,
}

/// At most this many unread files are cached (Spark's `MAX_CACHED_UNSEEN_FILES`).
const MAX_CACHED_UNREAD_FILES: usize = 10_000;
/// The unread files are cached only if at least this fraction of `maxFilesPerTrigger` remains
/// (Spark's `DISCARD_UNSEEN_FILES_RATIO`); otherwise the next batch lists again.
const DISCARD_UNREAD_FILES_RATIO: f64 = 0.2;

impl SourceBatch {
    /// How many good rows.
    pub fn num_rows(&self) -> usize {
        self.parts.iter().map(RecordBatch::num_rows).sum()
    }
}

impl FileSource {
    /// Opens the source over `input`, restoring what it has seen from its log in `log_dir`.
    pub fn open(input: &Path, log_dir: &Path, max_files: NonZeroUsize) -> Result<Self> {
        fs::create_dir_all(log_dir).map_err(|source| SourceError::Io {
            path: log_dir.to_path_buf(),
            source,
        })?;
        let mut source = Self {
            input: input.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            max_files,
            seen: BTreeSet::new(),
            latest: None,
            recent: Vec::new(),
            admit_only: None,
            unread: VecDeque::new(),
            decoder: Arc::new(Decoder::seed()),
            durability: atomic::Durability::ProcessCrash,
        };
        let mut ids = Vec::new();
        for entry in fs::read_dir(log_dir).map_err(|source| SourceError::Io {
            path: log_dir.to_path_buf(),
            source,
        })? {
            let entry = entry.map_err(|source| SourceError::Io {
                path: log_dir.to_path_buf(),
                source,
            })?;
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        for id in ids {
            for e in source.read_log(id)? {
                source.seen.insert(e.path);
            }
            source.latest = Some(id);
        }
        Ok(source)
    }

    /// Reads the files with `decoder` (its schema and options) instead of the seed's event
    /// parser.
    pub fn with_decoder(mut self, decoder: Arc<Decoder>) -> Self {
        self.decoder = decoder;
        self
    }

    /// Writes the log's files with `durability` (fsynced or not).
    pub fn with_durability(mut self, durability: atomic::Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The decoder the files are read with.
    pub fn decoder(&self) -> &Arc<Decoder> {
        &self.decoder
    }

    /// The input folder.
    pub fn input_dir(&self) -> &Path {
        &self.input
    }

    /// The newest source-log id, if any file was ever selected.
    pub fn latest_log_id(&self) -> Option<u64> {
        self.latest
    }

    fn log_path(&self, id: u64) -> PathBuf {
        self.log_dir.join(id.to_string())
    }

    fn read_log(&self, id: u64) -> Result<Vec<FileEntry>> {
        let path = self.log_path(id);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SourceError::MissingLog(path)),
            Err(source) => return Err(SourceError::Io { path, source }),
        };
        let corrupt = |why: String| SourceError::CorruptLog {
            path: path.clone(),
            why,
        };
        let mut lines = text.split('\n');
        if lines.next() != Some("v1") {
            return Err(corrupt("expected version line `v1`".into()));
        }
        let entries = lines
            .map(|l| serde_json::from_str::<FileEntry>(l).map_err(|e| corrupt(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        if entries.is_empty() {
            return Err(corrupt("no file entries (truncated file?)".into()));
        }
        Ok(entries)
    }

    /// Files in the input folder not yet seen, in (mtime, name) order.
    pub fn list_unseen(&self) -> Result<Vec<FileEntry>> {
        let list_err = |source| SourceError::List {
            path: self.input.clone(),
            source,
        };
        let mut found = Vec::new();
        let dir = match fs::read_dir(&self.input) {
            Ok(d) => d,
            // An input folder that does not exist yet simply has no files.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(list_err(e)),
        };
        for entry in dir {
            let entry = entry.map_err(list_err)?;
            // Names that are not UTF-8 cannot be recorded in the log; Spark URL-encodes them,
            // we leave them for the user to rename (they are listed by `status`).
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') || name.starts_with('_') || self.seen.contains(&name) {
                continue;
            }
            // A file deleted between listing and stat is simply not there.
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            found.push(FileEntry {
                path: name,
                timestamp: mtime,
                batch_id: 0,
            });
        }
        found.sort_by(|a, b| (a.timestamp, &a.path).cmp(&(b.timestamp, &b.path)));
        Ok(found)
    }

    /// Restricts admission to the files unseen right now (Trigger.AvailableNow pre-lists its
    /// files at start, R4.1), or lifts the restriction with `false`.
    pub fn freeze_admission(&mut self, freeze: bool) -> Result<()> {
        self.admit_only = None;
        self.unread.clear();
        if freeze {
            self.admit_only = Some(self.list_unseen()?.into());
        }
        Ok(())
    }

    /// The files of the next batch, at most `maxFilesPerTrigger`, in (mtime, name) order:
    /// from the available-now list, else from the unread-files cache, else from a listing
    /// (whose remainder fills the cache).
    fn next_files(&mut self) -> Result<Vec<FileEntry>> {
        let max = self.max_files.get();
        if let Some(pending) = self.admit_only.as_mut() {
            let mut files = Vec::new();
            while files.len() < max {
                let Some(f) = pending.pop_front() else { break };
                if !self.seen.contains(&f.path) {
                    files.push(f);
                }
            }
            return Ok(files);
        }
        let mut files: Vec<FileEntry> = if self.unread.is_empty() {
            self.list_unseen()?
        } else {
            // Cached files are not checked against the folder again, as in Spark.
            std::mem::take(&mut self.unread).into()
        };
        let rest = files.split_off(files.len().min(max));
        if rest.len() as f64 >= max as f64 * DISCARD_UNREAD_FILES_RATIO {
            self.unread = rest.into_iter().take(MAX_CACHED_UNREAD_FILES).collect();
        }
        Ok(files)
    }

    /// The files the next [`FileSource::latest_offset`] will record, when they are known
    /// without listing the folder — the next ones of an available-now run's list, or of the
    /// unread-files cache — and it will record new files (nothing logged is pending past
    /// `committed`). For reading a batch ahead; `None` when a listing would decide.
    pub fn next_files_known(&self, committed: Option<u64>) -> Option<Vec<FileEntry>> {
        if self.latest > committed {
            return None;
        }
        let max = self.max_files.get();
        let files: Vec<FileEntry> = match &self.admit_only {
            Some(pending) => pending
                .iter()
                .filter(|f| !self.seen.contains(&f.path))
                .take(max)
                .cloned()
                .collect(),
            None => self.unread.iter().take(max).cloned().collect(),
        };
        (!files.is_empty()).then_some(files)
    }

    /// Spark's `latestOffset`: the end offset of the next batch given the committed one.
    ///
    /// When the log already holds an entry past `committed` (written before a crash), that
    /// entry is the answer. Otherwise new files are listed; if there are any, up to
    /// `maxFilesPerTrigger` of them are recorded as log entry `k+1` (durably, before this
    /// returns) and `k+1` is returned. `None`/`committed` means no new data.
    pub fn latest_offset(&mut self, committed: Option<u64>) -> Result<LatestOffset> {
        if self.latest > committed {
            return Ok(LatestOffset::Pending(self.latest));
        }
        let mut files = self.next_files()?;
        if files.is_empty() {
            return Ok(LatestOffset::NoNewData(committed));
        }
        let k = self.latest.map_or(0, |l| l + 1);
        for f in &mut files {
            f.batch_id = k;
        }
        let mut text = String::from("v1");
        for f in &files {
            text.push('\n');
            // A struct of a string and two integers always serializes.
            text.push_str(&serde_json::to_string(f).expect("file entry serializes"));
        }
        let path = self.log_path(k);
        atomic::create_new(&path, text.as_bytes(), self.durability)
            .map_err(|source| SourceError::Io { path, source })?;
        for f in &files {
            self.seen.insert(f.path.clone());
        }
        self.latest = Some(k);
        self.recent = files;
        Ok(LatestOffset::Logged(k))
    }

    /// The log entries in `(start, end]`, in order.
    pub fn entries(&self, start: Option<u64>, end: u64) -> Result<Vec<FileEntry>> {
        let first = start.map_or(0, |s| s + 1);
        let mut out = Vec::new();
        for id in first..=end {
            if self.recent.first().is_some_and(|e| e.batch_id == id) {
                out.extend(self.recent.iter().cloned());
            } else {
                out.extend(self.read_log(id)?);
            }
        }
        Ok(out)
    }

    /// Reads and parses the files of log entries `(start, end]` (Spark's `getBatch`).
    ///
    /// A file that vanished after it was listed becomes one rejected record (line 0) naming it,
    /// so the loss is counted and visible, and the batch goes on. With mode FAILFAST, the first
    /// record that cannot be read fails the batch ([`SourceError::Malformed`]).
    pub fn read_batch(&self, start: Option<u64>, end: u64) -> Result<SourceBatch> {
        self.batch_reader(start, end)?.read()
    }

    /// What reading entries `(start, end]` needs, owned, so the reading and parsing can run
    /// on a blocking thread off the async workers ([`BatchReader::read`]).
    pub fn batch_reader(&self, start: Option<u64>, end: u64) -> Result<BatchReader> {
        Ok(self.reader_of(self.entries(start, end)?))
    }

    /// What reading `files` needs (see [`FileSource::batch_reader`]).
    pub fn reader_of(&self, files: Vec<FileEntry>) -> BatchReader {
        BatchReader {
            input: self.input.clone(),
            files,
            decoder: self.decoder.clone(),
        }
    }
}

/// The files of one batch and the decoder to read them with.
#[derive(Debug)]
pub struct BatchReader {
    input: PathBuf,
    files: Vec<FileEntry>,
    decoder: Arc<Decoder>,
}

impl BatchReader {
    /// The files it reads, in order.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Reads and parses the batch's files (see [`FileSource::read_batch`]).
    pub fn read(self) -> Result<SourceBatch> {
        let files = self.files;
        let threads = crate::cores();
        let (parsed, deleted, bytes) = if files.len() >= threads.max(2) {
            let (parts, deleted, bytes) = self.decoder.read_and_decode(&self.input, &files, threads)?;
            (parse::Parts::of(parts), deleted, bytes)
        } else {
            // Fewer files than cores: read them in turn, parse them on every core.
            let contents = files
                .iter()
                .map(|f| read_file(&self.input, f))
                .collect::<Result<Vec<_>>>()?;
            let bytes = contents.iter().flatten().map(|d| d.len() as u64).sum::<u64>();
            // Parse on every core, in pieces cut at line ends — about four per core, so the
            // cores finish together, between 64 KiB and 1 MiB; the result is in file and line
            // order, as a sequential parse would give.
            let piece = (bytes as usize / (threads * 4)).clamp(64 << 10, 1 << 20);
            let mut work = Vec::new();
            for (f, data) in files.iter().zip(&contents) {
                if let Some(data) = data {
                    work.extend(parse::pieces(&f.path, data, piece));
                }
            }
            let deleted: Vec<bool> = contents.iter().map(Option::is_none).collect();
            (
                parse::Parts::of(vec![self.decoder.decode(&work, threads)]),
                deleted,
                bytes,
            )
        };
        if self.decoder.options().mode == Mode::FailFast
            && let Some(r) = parsed.rejects.first()
        {
            return Err(SourceError::Malformed {
                file: r.file.clone(),
                line: r.line,
                reason: r.reason.clone(),
            });
        }
        let mut rejects = parsed.rejects;
        for (f, gone) in files.iter().zip(&deleted) {
            if *gone {
                rejects.push(Rejected::new(
                    &f.path,
                    0,
                    b"",
                    "file was deleted after it was listed and before it was read; its rows are lost".into(),
                ));
            }
        }
        Ok(SourceBatch {
            parts: parsed.rows,
            rejects,
            files,
            records: parsed.records,
            bytes,
        })
    }
}

impl Decoder {
    /// Reads and decodes many files on `threads` threads, each taking the next file not yet
    /// taken and parsing it right after reading it (while its bytes are still in the cache, and
    /// without holding the whole batch's bytes at once). The rows and rejects are in file and
    /// line order, exactly those of a sequential read (and an error is the first file's in
    /// that order); also which files had vanished, and the bytes read.
    fn read_and_decode(
        &self,
        input: &Path,
        files: &[FileEntry],
        threads: usize,
    ) -> Result<(Vec<parse::Parsed>, Vec<bool>, u64)> {
        let read = |f: &FileEntry| -> Result<Option<(parse::Parsed, u64)>> {
            Ok(read_file(input, f)?.map(|data| {
                let parsed = self.decode(&parse::pieces(&f.path, &data, 1 << 20), 1);
                (parsed, data.len() as u64)
            }))
        };
        let (mut parts, mut deleted, mut bytes) = (Vec::with_capacity(files.len()), Vec::new(), 0);
        for p in crate::parallel::run_each(files, threads, read) {
            let p = p?;
            deleted.push(p.is_none());
            if let Some((parsed, n)) = p {
                parts.push(parsed);
                bytes += n;
            }
        }
        Ok((parts, deleted, bytes))
    }
}

/// The bytes of `f` under `input`; `None` when it vanished after it was listed.
fn read_file(input: &Path, f: &FileEntry) -> Result<Option<Vec<u8>>> {
    let path = input.join(&f.path);
    match fs::read(&path) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SourceError::Io { path, source }),
    }
}

/// The answer of [`FileSource::latest_offset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatestOffset {
    /// No file is new: the offset stays where it was.
    NoNewData(Option<u64>),
    /// New files were just recorded under this log id.
    Logged(u64),
    /// A log entry written before a crash is still to be processed.
    Pending(Option<u64>),
}

impl LatestOffset {
    /// The end offset.
    pub fn offset(self) -> Option<u64> {
        match self {
            Self::NoNewData(o) | Self::Pending(o) => o,
            Self::Logged(k) => Some(k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files predicted for the next batch are exactly those `latest_offset` then records,
    /// from an available-now list and from the unread-files cache; nothing is predicted when a
    /// listing decides or a logged entry is pending.
    #[test]
    fn the_next_files_known_are_the_ones_then_logged() {
        let input = tempfile::tempdir().unwrap();
        let log = tempfile::tempdir().unwrap();
        for i in 0..7 {
            std::fs::write(input.path().join(format!("f{i}.json")), "{}\n").unwrap();
        }
        let names = |files: &[FileEntry]| {
            files
                .iter()
                .map(|f| (f.path.clone(), f.timestamp))
                .collect::<Vec<_>>()
        };
        let max = NonZeroUsize::new(2).unwrap();
        // Available-now: the frozen list, two at a time, the last batch one file.
        let mut source = FileSource::open(input.path(), log.path(), max).unwrap();
        assert_eq!(
            source.next_files_known(None),
            None,
            "no list yet: a listing decides"
        );
        source.freeze_admission(true).unwrap();
        let mut committed = None;
        let mut batches = 0;
        while let Some(predicted) = source.next_files_known(committed) {
            let LatestOffset::Logged(k) = source.latest_offset(committed).unwrap() else {
                panic!("predicted files but nothing was logged");
            };
            assert_eq!(source.next_files_known(committed), None, "entry {k} is pending");
            assert_eq!(names(&predicted), names(&source.entries(committed, k).unwrap()));
            committed = Some(k);
            batches += 1;
        }
        assert_eq!(batches, 4);
        assert_eq!(
            source.latest_offset(committed).unwrap(),
            LatestOffset::NoNewData(committed)
        );

        // The unread-files cache: a listing of five new files takes two and caches three.
        let log = tempfile::tempdir().unwrap();
        for i in 7..12 {
            std::fs::write(input.path().join(format!("f{i}.json")), "{}\n").unwrap();
        }
        let mut source = FileSource::open(input.path(), log.path(), max).unwrap();
        for i in 0..7 {
            source.seen.insert(format!("f{i}.json"));
        }
        let LatestOffset::Logged(k) = source.latest_offset(None).unwrap() else {
            panic!("five new files were listed");
        };
        let predicted = source.next_files_known(Some(k)).expect("three files are cached");
        let LatestOffset::Logged(k2) = source.latest_offset(Some(k)).unwrap() else {
            panic!("the cache holds files");
        };
        assert_eq!(names(&predicted), names(&source.entries(Some(k), k2).unwrap()));
        assert_eq!(predicted.len(), 2);
    }

    /// Files read and decoded one by one on several threads give what reading them all and
    /// decoding their pieces gives: rows, rejects (with their lines), records, vanished files.
    #[test]
    fn per_file_decoding_equals_the_whole_batchs() {
        let dir = tempfile::tempdir().unwrap();
        let line = |i: usize| {
            format!(
                r#"{{"event_id":"e{i}","timestamp":"2026-11-24T10:00:{:02}","user_id":{i},"event_type":"click","value":{i}.5}}"#,
                i % 60
            )
        };
        let mut files = Vec::new();
        for f in 0..7 {
            let mut text = String::new();
            for i in 0..300 {
                text.push_str(&if (f * 300 + i) % 97 == 0 {
                    "{bad".to_string()
                } else {
                    line(f * 300 + i)
                });
                text.push('\n');
            }
            let name = format!("f{f}.json");
            if f != 3 {
                std::fs::write(dir.path().join(&name), text).unwrap();
            }
            files.push(FileEntry {
                path: name,
                timestamp: 0,
                batch_id: 0,
            });
        }
        let decoders = [
            Decoder::seed(),
            Decoder::new(crate::event::event_schema(), Default::default()),
        ];
        for d in decoders {
            let (per_file, deleted, bytes) = d.read_and_decode(dir.path(), &files, 3).unwrap();
            let per_file = parse::Parsed::join(&d.schema(), per_file);
            let contents: Vec<_> = files.iter().map(|f| read_file(dir.path(), f).unwrap()).collect();
            let mut work = Vec::new();
            for (f, data) in files.iter().zip(&contents) {
                if let Some(data) = data {
                    work.extend(parse::pieces(&f.path, data, 4096));
                }
            }
            let whole = d.decode(&work, 2);
            assert_eq!(per_file.rows, whole.rows);
            assert_eq!(per_file.records, whole.records);
            let at = |p: &parse::Parsed| {
                p.rejects
                    .iter()
                    .map(|r| (r.file.clone(), r.line, r.reason.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(at(&per_file), at(&whole));
            assert!(!per_file.rejects.is_empty());
            assert_eq!(deleted, contents.iter().map(Option::is_none).collect::<Vec<_>>());
            assert_eq!(deleted.iter().filter(|d| **d).count(), 1);
            assert_eq!(
                bytes,
                contents.iter().flatten().map(|c| c.len() as u64).sum::<u64>()
            );
        }
    }
}
