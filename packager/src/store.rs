//! `store`: where output objects go. One trait, so the packager does not care
//! whether it writes to local disk or (later) S3 (house style rule 9).
//!
//! Keys are relative, `/`-separated paths: no empty parts, no `.` or `..`,
//! no leading `/`. Every put replaces the whole object atomically, so a
//! reader never sees half a segment or half a playlist.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{PackagerError, Result};

pub trait Store: Send + Sync {
    /// Write `data` under `key`, replacing any previous object.
    fn put(&self, key: &str, data: &[u8], content_type: &str) -> Result<()>;
    /// The object's size, or `None` when it does not exist.
    fn size(&self, key: &str) -> Result<Option<u64>>;
    /// Remove the object; removing a missing object is not an error.
    fn delete(&self, key: &str) -> Result<()>;
    /// Where `key` lives, for messages (a path or URI).
    fn locate(&self, key: &str) -> String;
    /// Every object under `prefix` (a key prefix, `""` for all) with its
    /// size: one listing instead of a request per object.
    fn list(&self, prefix: &str) -> Result<BTreeMap<String, u64>>;
    /// Wait until every `put` so far is stored; report the first failure.
    /// Stores that write synchronously have nothing to wait for.
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// Reject keys that could escape the output root or name nothing.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(PackagerError::BadKey {
            key: key.into(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("it is empty");
    }
    if key.starts_with('/') {
        return bad("it is absolute");
    }
    for part in key.split('/') {
        match part {
            "" => return bad("it has an empty path segment"),
            "." | ".." => return bad("it has a '.' or '..' segment"),
            _ => {}
        }
    }
    if key.contains('\\') || key.contains('\0') {
        return bad("it contains '\\' or NUL");
    }
    Ok(())
}

/// The Content-Type for an object, from its extension.
pub fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next().unwrap_or("") {
        "m3u8" => "application/vnd.apple.mpegurl",
        "m4s" => "video/iso.segment",
        "mp4" => "video/mp4",
        "ts" => "video/mp2t",
        "vtt" => "text/vtt",
        "json" => "application/json",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

/// Objects as files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Open (creating if needed) `root`, and prove it is writable before any
    /// work starts.
    pub fn open(root: &Path) -> Result<Self> {
        let write_err = |source| PackagerError::Write {
            key: root.display().to_string(),
            source,
        };
        if root.exists() && !root.is_dir() {
            return Err(write_err(std::io::Error::other(
                "it exists and is not a directory",
            )));
        }
        std::fs::create_dir_all(root).map_err(write_err)?;
        let probe = root.join(format!(".strata-write-test-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(write_err)?;
        let _ = std::fs::remove_file(&probe);
        Ok(LocalStore {
            root: root.to_path_buf(),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

impl Store for LocalStore {
    fn put(&self, key: &str, data: &[u8], _content_type: &str) -> Result<()> {
        let path = self.path(key)?;
        let write_err = |source| PackagerError::Write {
            key: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        // Write beside the target, then rename: readers see all or nothing.
        // The temporary name keeps the whole file name and a counter:
        // `slides.json` and `slides.vtt` are written at once by different
        // uploaders and must not share one.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let tmp = path.with_file_name(format!(
            ".{}.tmp-{}-{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut f = std::fs::File::create(&tmp).map_err(write_err)?;
        f.write_all(data).map_err(write_err)?;
        f.sync_data().map_err(write_err)?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            write_err(e)
        })
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path(key)?;
        match std::fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PackagerError::Read {
                key: path.display().to_string(),
                source,
            }),
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PackagerError::Write {
                key: path.display().to_string(),
                source,
            }),
        }
    }

    fn locate(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    fn list(&self, prefix: &str) -> Result<BTreeMap<String, u64>> {
        let mut found = BTreeMap::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let read_err = |source| PackagerError::Read {
                key: dir.display().to_string(),
                source,
            };
            for entry in std::fs::read_dir(&dir).map_err(read_err)? {
                let entry = entry.map_err(read_err)?;
                let meta = entry.metadata().map_err(read_err)?;
                if meta.is_dir() {
                    dirs.push(entry.path());
                } else if let Ok(rel) = entry.path().strip_prefix(&self.root) {
                    let key = rel
                        .to_string_lossy()
                        .replace(std::path::MAIN_SEPARATOR, "/");
                    if key.starts_with(prefix) {
                        found.insert(key, meta.len());
                    }
                }
            }
        }
        Ok(found)
    }
}

/// A store seen through a key prefix (`slides/`): a second packager writes
/// its own tree, master included, inside the job's output.
pub struct Prefixed {
    inner: std::sync::Arc<dyn Store>,
    prefix: String,
}

impl Prefixed {
    pub fn new(inner: std::sync::Arc<dyn Store>, prefix: &str) -> Self {
        Prefixed {
            inner,
            prefix: format!("{}/", prefix.trim_matches('/')),
        }
    }
}

impl Store for Prefixed {
    fn put(&self, key: &str, data: &[u8], content_type: &str) -> Result<()> {
        self.inner
            .put(&format!("{}{key}", self.prefix), data, content_type)
    }
    fn size(&self, key: &str) -> Result<Option<u64>> {
        self.inner.size(&format!("{}{key}", self.prefix))
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(&format!("{}{key}", self.prefix))
    }
    fn locate(&self, key: &str) -> String {
        self.inner.locate(&format!("{}{key}", self.prefix))
    }
    fn list(&self, prefix: &str) -> Result<BTreeMap<String, u64>> {
        Ok(self
            .inner
            .list(&format!("{}{prefix}", self.prefix))?
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix(&self.prefix).map(|k| (k.to_string(), v)))
            .collect())
    }
    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        assert!(validate_key("video/720p/seg_00001.m4s").is_ok());
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "a/", "a\\b"] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn local_store_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::open(dir.path()).unwrap();
        s.put("a/b.m4s", b"abc", content_type("a/b.m4s")).unwrap();
        assert_eq!(s.size("a/b.m4s").unwrap(), Some(3));
        s.delete("a/b.m4s").unwrap();
        assert_eq!(s.size("a/b.m4s").unwrap(), None);
        s.put("a/c/d.ts", b"abcd", "video/mp2t").unwrap();
        s.put("b/e.ts", b"ab", "video/mp2t").unwrap();
        let listed: Vec<(String, u64)> = s.list("a/").unwrap().into_iter().collect();
        assert_eq!(listed, vec![("a/c/d.ts".to_string(), 4)]);
        assert_eq!(s.list("").unwrap().len(), 2);
        s.delete("a/b.m4s").unwrap();
        assert!(s.put("../x", b"", "x").is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("master.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type("x/seg_00001.ts"), "video/mp2t");
        assert_eq!(content_type("x/init.mp4"), "video/mp4");
    }
}
