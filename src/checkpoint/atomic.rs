//! Atomic, never-overwriting file creation, fsynced when the query asks for durability across
//! power loss.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// What a query's durable writes survive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// The process dying at any instant (kill -9, a panic, an OOM kill): every file is written
    /// whole under a temp name and linked or renamed into place, so it is there complete or not
    /// at all — but left to the OS to write out. Spark on a local file system gives the same.
    #[default]
    ProcessCrash,
    /// The machine losing power as well: every checkpoint file and its folder, and the Delta
    /// tables' new data files and log entries, are fsynced before the step that depends on them.
    PowerLoss,
}

impl Durability {
    /// From the `fsync` setting.
    pub fn from_fsync(fsync: bool) -> Self {
        if fsync {
            Self::PowerLoss
        } else {
            Self::ProcessCrash
        }
    }

    /// True when files are fsynced.
    pub fn fsyncs(self) -> bool {
        self == Self::PowerLoss
    }
}

/// Writes `bytes` to `path` atomically: a temp file (name starting with `.`) in the same folder
/// is written, then hard-linked to `path` — which fails with `AlreadyExists` rather than replace
/// an existing file. A crash leaves either no `path` or the complete one; a leftover temp file is
/// harmless (readers skip `.` names). With [`Durability::PowerLoss`] the file and then the
/// folder are fsynced.
pub fn create_new(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    let (dir, tmp) = write_temp(path, bytes, durability)?;
    let result = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    result?;
    sync_dir_if(dir, durability)
}

/// Writes `bytes` to `path` atomically, replacing any existing file (temp + rename; fsynced as
/// `durability` says).
pub fn replace(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    let (dir, tmp) = write_temp(path, bytes, durability)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir_if(dir, durability)
}

fn sync_dir_if(dir: &Path, durability: Durability) -> io::Result<()> {
    match durability.fsyncs() {
        true => sync_dir(dir),
        false => Ok(()),
    }
}

/// Writes `bytes` to a fresh temp file (name starting with `.`) beside `path`, fsynced as
/// `durability` says; returns the folder and the temp file.
fn write_temp<'a>(
    path: &'a Path,
    bytes: &[u8],
    durability: Durability,
) -> io::Result<(&'a Path, std::path::PathBuf)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut f = File::create_new(&tmp)?;
        f.write_all(bytes)?;
        match durability.fsyncs() {
            true => f.sync_all(),
            false => Ok(()),
        }
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((dir, tmp))
}

/// Fsyncs a folder so a rename or link inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Fsyncs a file written by someone else (a Delta data file or log entry).
pub fn sync_file(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_new_never_overwrites_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("7");
        create_new(&p, b"first", Durability::PowerLoss).unwrap();
        let err = create_new(&p, b"second", Durability::ProcessCrash).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"first");
        replace(&p, b"third", Durability::ProcessCrash).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"third");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("7")]);
    }
}
