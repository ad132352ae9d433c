//! Durable, atomic, never-overwriting file creation.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temp file (name starting with `.`) in the same folder
/// is written and fsynced, then hard-linked to `path` — which fails with `AlreadyExists` rather
/// than replace an existing file — and the folder is fsynced. A crash leaves either no `path` or
/// the complete one; a leftover temp file is harmless (readers skip `.` names).
pub fn create_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, tmp) = write_temp(path, bytes)?;
    let result = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    result?;
    sync_dir(dir)
}

/// Writes `bytes` to `path` atomically, replacing any existing file (temp + fsync + rename).
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, tmp) = write_temp(path, bytes)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Writes and fsyncs `bytes` to a fresh temp file (name starting with `.`) beside `path`;
/// returns the folder and the temp file.
fn write_temp<'a>(path: &'a Path, bytes: &[u8]) -> io::Result<(&'a Path, std::path::PathBuf)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut f = File::create_new(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_new_never_overwrites_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("7");
        create_new(&p, b"first").unwrap();
        let err = create_new(&p, b"second").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"first");
        replace(&p, b"third").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"third");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("7")]);
    }
}
