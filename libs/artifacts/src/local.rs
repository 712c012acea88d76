//! Artifacts on the local filesystem, under one root directory.
//!
//! An upload is written to a temporary file beside its destination
//! (`.steward-upload-{uuid}.tmp`), flushed with `fsync`, renamed over the destination, and the
//! directory is synced: readers never see a partial file, an aborted or failed upload leaves
//! nothing behind, and an acknowledged upload survives a crash.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use steward_common::{Error, Result};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::key::ObjectKey;
use crate::store::{
    ARTIFACT_NOT_FOUND, ByteStream, OBJECT_STORE_UNAVAILABLE, ObjectMeta, ObjectStore,
    READ_CHUNK_SIZE,
};
use crate::stream::HashingReader;

/// Prefix of the temporary files uploads are written to.
const TEMP_PREFIX: &str = ".steward-upload-";

/// Characters escaped in the `file://` URL returned by `describe`.
const URL_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`');

/// An [`ObjectStore`] keeping objects as files under a root directory.
#[derive(Debug)]
pub(crate) struct LocalObjectStore {
    root: PathBuf,
}

impl LocalObjectStore {
    /// Creates the root directory if needed and opens the store on its absolute path.
    pub(crate) async fn open(root: &Path) -> Result<Self> {
        let unusable = |e: io::Error| {
            Error::unavailable(
                OBJECT_STORE_UNAVAILABLE,
                format!("artifact root {} is not usable: {e}", root.display()),
            )
        };
        tokio::fs::create_dir_all(root).await.map_err(unusable)?;
        let root = tokio::fs::canonicalize(root).await.map_err(unusable)?;
        Ok(Self { root })
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(key.segments());
        path
    }
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    async fn put(&self, key: &ObjectKey, data: ByteStream) -> Result<ObjectMeta> {
        let dest = self.path_of(key);
        let dir = dest
            .parent()
            .expect("an object key has at least one segment")
            .to_path_buf();
        ensure_dir(&self.root, &dir)
            .await
            .map_err(|e| io_error(key, "create directory", e))?;

        let (temp, file) = TempFile::create(&dir)
            .await
            .map_err(|e| io_error(key, "create", e))?;
        let mut file = tokio::fs::File::from_std(file);
        let mut reader = HashingReader::new(data);
        while let Some(chunk) = reader.next_chunk().await? {
            file.write_all(&chunk)
                .await
                .map_err(|e| io_error(key, "write", e))?;
        }
        file.flush().await.map_err(|e| io_error(key, "write", e))?;
        file.sync_all()
            .await
            .map_err(|e| io_error(key, "sync", e))?;
        drop(file);
        temp.persist(&dest)
            .await
            .map_err(|e| io_error(key, "rename", e))?;
        sync_dir(dir)
            .await
            .map_err(|e| io_error(key, "sync directory", e))?;

        let (size, sha256) = reader.finish();
        Ok(ObjectMeta {
            key: key.as_str().to_owned(),
            size,
            sha256,
        })
    }

    async fn put_known_many(&self, items: Vec<(ObjectKey, bytes::Bytes)>) -> Result<()> {
        // Write every temporary file, rename each into place, then make all of it durable
        // with one filesystem sync (on Linux; elsewhere each file and directory is synced).
        // A crash before the sync may leave a renamed file without its bytes: the caller
        // records objects as stored only after this returns, and a later write replaces them.
        let mut guards = Vec::with_capacity(items.len());
        let mut jobs = Vec::with_capacity(items.len());
        for (key, data) in items {
            let dest = self.path_of(&key);
            let dir = dest
                .parent()
                .expect("an object key has at least one segment")
                .to_path_buf();
            ensure_dir(&self.root, &dir)
                .await
                .map_err(|e| io_error(&key, "create directory", e))?;
            let (temp, file) = TempFile::create(&dir)
                .await
                .map_err(|e| io_error(&key, "create", e))?;
            jobs.push((temp.path.clone(), dest, file, data));
            guards.push((key, temp));
        }
        let root = self.root.clone();
        let done = tokio::task::spawn_blocking(move || -> io::Result<()> {
            let mut scratch = Vec::new();
            for (tmp, dest, file, data) in jobs {
                write_new_file(&file, &data, &mut scratch)?;
                drop(file);
                std::fs::rename(&tmp, &dest)?;
                #[cfg(not(target_os = "linux"))]
                {
                    std::fs::File::open(&dest)?.sync_all()?;
                    if let Some(dir) = dest.parent() {
                        std::fs::File::open(dir)?.sync_all()?;
                    }
                }
            }
            #[cfg(target_os = "linux")]
            rustix::fs::syncfs(std::fs::File::open(&root)?)?;
            #[cfg(not(target_os = "linux"))]
            let _ = root;
            Ok(())
        })
        .await
        .map_err(io::Error::other)
        .and_then(|r| r);
        match done {
            Ok(()) => {
                for (_, temp) in guards {
                    temp.mark_persisted();
                }
                Ok(())
            }
            // Temporary files not renamed yet are removed by their guards.
            Err(e) => match guards.first() {
                Some((key, _)) => Err(io_error(key, "write", e)),
                None => Ok(()),
            },
        }
    }

    async fn get_bytes(&self, key: &ObjectKey) -> Result<bytes::Bytes> {
        match tokio::fs::read(self.path_of(key)).await {
            Ok(v) => Ok(bytes::Bytes::from(v)),
            Err(e) if is_missing(&e) || e.kind() == io::ErrorKind::IsADirectory => {
                Err(Error::not_found(ARTIFACT_NOT_FOUND, key.artifact_path()))
            }
            Err(e) => Err(io_error(key, "read", e)),
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<(u64, ByteStream)> {
        let not_found = || Error::not_found(ARTIFACT_NOT_FOUND, key.artifact_path());
        let file = match tokio::fs::File::open(self.path_of(key)).await {
            Ok(file) => file,
            Err(e) if is_missing(&e) => return Err(not_found()),
            Err(e) => return Err(io_error(key, "open", e)),
        };
        let meta = file
            .metadata()
            .await
            .map_err(|e| io_error(key, "stat", e))?;
        if !meta.is_file() {
            return Err(not_found());
        }
        let owned_key = key.clone();
        let stream = ReaderStream::with_capacity(file, READ_CHUNK_SIZE)
            .map_err(move |e| io_error(&owned_key, "read", e));
        Ok((meta.len(), Box::pin(stream)))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        let path = self.path_of(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                let dir = path
                    .parent()
                    .expect("an object key has a parent")
                    .to_path_buf();
                sync_dir(dir)
                    .await
                    .map_err(|e| io_error(key, "sync directory", e))
            }
            Err(e) if is_missing(&e) || e.kind() == io::ErrorKind::IsADirectory => Ok(()),
            Err(e) => Err(io_error(key, "delete", e)),
        }
    }

    async fn presign_get(&self, _key: &ObjectKey, _expires_in: Duration) -> Result<Option<String>> {
        Ok(None)
    }

    fn describe(&self) -> String {
        let path = self.root.to_string_lossy();
        format!("file://{}", utf8_percent_encode(&path, URL_PATH))
    }

    async fn check(&self) -> Result<()> {
        let root = self.root.clone();
        let probe = tokio::task::spawn_blocking(move || -> io::Result<()> {
            if !root.is_dir() {
                return Err(io::Error::new(io::ErrorKind::NotFound, "not a directory"));
            }
            let path = root.join(format!(".steward-check-{}", uuid::Uuid::new_v4().simple()));
            std::fs::write(&path, b"ok")?;
            std::fs::remove_file(&path)
        });
        match probe.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::unavailable(
                OBJECT_STORE_UNAVAILABLE,
                format!("artifact root {} is not writable: {e}", self.root.display()),
            )),
            Err(e) => Err(Error::internal(format!(
                "artifact root check panicked: {e}"
            ))),
        }
    }
}

/// Objects from this size up are written past the page cache (Linux): below it, the copy into
/// an aligned buffer and the synchronous device write cost more than they save.
#[cfg(target_os = "linux")]
const DIRECT_MIN_BYTES: usize = 64 << 10;

/// Alignment of `O_DIRECT` buffers, lengths and offsets: the largest logical block size.
#[cfg(target_os = "linux")]
const DIRECT_ALIGN: usize = 4096;

/// Writes `data` into `file`, new and empty. On Linux an object of at least
/// [`DIRECT_MIN_BYTES`] is written with `O_DIRECT` from an aligned copy padded to whole blocks,
/// and the file is then cut to its length: the bytes go to the disk without passing through
/// the page cache, whose copy and write-back cost a quarter of the server's CPU during a
/// dataset upload (each chunk is written once and seldom read back soon). Durability is
/// unchanged: the caller still syncs (the device cache, the size and the rename). Where the
/// filesystem refuses `O_DIRECT` (tmpfs on older kernels, some network filesystems), or
/// refuses this write's alignment, the bytes go through the page cache as before.
/// `scratch` is the aligned buffer, reused from one object to the next.
#[cfg(target_os = "linux")]
fn write_new_file(file: &std::fs::File, data: &[u8], scratch: &mut Vec<u8>) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::FileExt as _;

    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};

    let mut buffered = file;
    if data.len() < DIRECT_MIN_BYTES {
        return buffered.write_all(data);
    }
    let flags = fcntl_getfl(file)?;
    if fcntl_setfl(file, flags | OFlags::DIRECT).is_err() {
        return buffered.write_all(data);
    }
    let padded = data.len().next_multiple_of(DIRECT_ALIGN);
    if scratch.len() < padded + DIRECT_ALIGN {
        scratch.resize(padded + DIRECT_ALIGN, 0);
    }
    let at = scratch.as_ptr().align_offset(DIRECT_ALIGN);
    let block = &mut scratch[at..at + padded];
    block[..data.len()].copy_from_slice(data);
    block[data.len()..].fill(0);
    let direct = file.write_all_at(block, 0);
    fcntl_setfl(file, flags)?;
    match direct {
        Ok(()) => file.set_len(data.len() as u64),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            file.set_len(0)?;
            file.write_all_at(data, 0)
        }
        Err(e) => Err(e),
    }
}

/// Writes `data` into `file`, new and empty.
#[cfg(not(target_os = "linux"))]
fn write_new_file(file: &std::fs::File, data: &[u8], _scratch: &mut Vec<u8>) -> io::Result<()> {
    use std::io::Write as _;
    let mut file = file;
    file.write_all(data)
}

/// A temporary upload file, removed unless persisted, even if the upload future is dropped.
struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// Creates a new, empty temporary file in `dir`.
    async fn create(dir: &Path) -> io::Result<(Self, std::fs::File)> {
        let path = dir.join(format!(
            "{TEMP_PREFIX}{}.tmp",
            uuid::Uuid::new_v4().simple()
        ));
        // The open runs on a blocking thread and completes even if this future is dropped
        // meanwhile; the guard then flags the file as abandoned and whichever side comes last
        // removes it.
        let mut guard = AbandonOnDrop {
            path: path.clone(),
            abandoned: Arc::default(),
            armed: true,
        };
        let (open_path, abandoned) = (path.clone(), guard.abandoned.clone());
        let file = tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&open_path)?;
            if abandoned.load(Ordering::SeqCst) {
                let _ = std::fs::remove_file(&open_path);
            }
            Ok::<_, io::Error>(file)
        })
        .await
        .map_err(io::Error::other)??;
        guard.armed = false;
        Ok((
            Self {
                path,
                persisted: false,
            },
            file,
        ))
    }

    /// Records that the file was renamed into place by other code.
    fn mark_persisted(mut self) {
        self.persisted = true;
    }

    /// Renames the file to `dest`, atomically replacing what was there.
    async fn persist(mut self, dest: &Path) -> io::Result<()> {
        tokio::fs::rename(&self.path, dest).await?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Flags an in-flight temporary-file creation as abandoned and removes what exists so far.
struct AbandonOnDrop {
    path: PathBuf,
    abandoned: Arc<AtomicBool>,
    armed: bool,
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.abandoned.store(true, Ordering::SeqCst);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates `dir` (under `root`) and any missing parents, syncing each parent that gained an
/// entry so the new directories survive a crash.
async fn ensure_dir(root: &Path, dir: &Path) -> io::Result<()> {
    if tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let relative = dir.strip_prefix(root).map_err(io::Error::other)?;
    let mut current = root.to_path_buf();
    for component in relative.components() {
        current.push(component);
        match tokio::fs::create_dir(&current).await {
            Ok(()) => sync_dir(current.parent().unwrap_or(root).to_path_buf()).await?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !tokio::fs::metadata(&current).await?.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        "a file is in the way",
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `fsync`s a directory so that entries created, renamed or removed in it are durable.
async fn sync_dir(dir: PathBuf) -> io::Result<()> {
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Maps a filesystem error on `key` to the caller's error.
fn io_error(key: &ObjectKey, op: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory => Error::failed_precondition(
            "ARTIFACT_PATH_CONFLICT",
            format!(
                "artifact {} conflicts with an existing artifact: a file and a directory would \
                 have the same path",
                key.artifact_path()
            ),
        ),
        io::ErrorKind::StorageFull
        | io::ErrorKind::ReadOnlyFilesystem
        | io::ErrorKind::QuotaExceeded => {
            tracing::warn!(key = %key, op, error = %e, "artifact store cannot write");
            Error::unavailable(
                OBJECT_STORE_UNAVAILABLE,
                "the artifact store is out of space or read-only",
            )
        }
        _ => Error::internal(format!("local artifact store: {op} {key}: {e}")),
    }
}
