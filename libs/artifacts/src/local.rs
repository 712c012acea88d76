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
            // Opened before the first write: `syncfs` reports the write-back errors raised
            // since this descriptor was opened (Linux 5.8 and later), so none is missed.
            #[cfg(target_os = "linux")]
            let root = std::fs::File::open(&root)?;
            let largest = jobs.iter().map(|j| j.3.len()).max().unwrap_or(0);
            let mut scratch = AlignedScratch::for_objects_up_to(largest);
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
            rustix::fs::syncfs(&root)?;
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
const DIRECT_MIN_BYTES: usize = 64 << 10;

/// Alignment of `O_DIRECT` buffers, lengths and offsets: the largest logical block size.
const DIRECT_ALIGN: usize = 4096;

/// How [`write_new_file`] wrote an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
enum WritePath {
    /// Its whole blocks with `O_DIRECT`, the tail of the last block through the page cache.
    Direct,
    /// All of it through the page cache.
    Buffered,
}

/// A reusable buffer aligned to [`DIRECT_ALIGN`], for the whole blocks of one object at a time.
struct AlignedScratch {
    buf: Vec<u8>,
}

impl AlignedScratch {
    /// Room for the whole blocks of objects up to `largest` bytes (none if they are all
    /// written through the page cache): allocated once per batch.
    fn for_objects_up_to(largest: usize) -> Self {
        let blocks = if cfg!(target_os = "linux") && largest >= DIRECT_MIN_BYTES {
            largest - largest % DIRECT_ALIGN
        } else {
            0
        };
        AlignedScratch {
            buf: vec![0; blocks + DIRECT_ALIGN],
        }
    }

    /// An aligned slice of exactly `len` bytes.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn block(&mut self, len: usize) -> &mut [u8] {
        if self.buf.len() < len + DIRECT_ALIGN {
            self.buf.resize(len + DIRECT_ALIGN, 0);
        }
        let at = self.buf.as_ptr().align_offset(DIRECT_ALIGN);
        &mut self.buf[at..at + len]
    }
}

/// Writes `data` into `file`, new and empty. On Linux, for an object of at least
/// [`DIRECT_MIN_BYTES`], the whole 4 KiB blocks are copied into an aligned buffer and written
/// with `O_DIRECT`, and the last partial block (under 4 KiB) through the page cache: the bulk
/// of the bytes goes to the disk without the page cache's copy and write-back, which cost
/// about a quarter of the server's CPU during a dataset upload. Durability is unchanged: the
/// caller still syncs (the tail, the size, the device cache and the rename). Chunks written
/// this way are not in the page cache afterwards, so their first read (a profiled commit, a
/// restore) comes from the disk. Where the filesystem refuses `O_DIRECT` (tmpfs before Linux
/// 6.6, some network filesystems) or this write's alignment, all of it goes through the page
/// cache as before.
#[cfg(target_os = "linux")]
fn write_new_file(
    file: &std::fs::File,
    data: &[u8],
    scratch: &mut AlignedScratch,
) -> io::Result<WritePath> {
    use std::os::unix::fs::FileExt as _;

    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};

    if data.len() >= DIRECT_MIN_BYTES
        && let Ok(flags) = fcntl_getfl(file)
        && fcntl_setfl(file, flags | OFlags::DIRECT).is_ok()
    {
        let blocks = data.len() - data.len() % DIRECT_ALIGN;
        let block = scratch.block(blocks);
        block.copy_from_slice(&data[..blocks]);
        let direct = file.write_all_at(block, 0);
        return finish_direct(file, data, blocks, direct, flags);
    }
    file.write_all_at(data, 0)?;
    Ok(WritePath::Buffered)
}

/// After the direct write of the first `blocks` bytes of `data` (`direct`, its result):
/// clears `O_DIRECT` (restores `flags`) and writes the tail through the page cache. If the
/// direct write was refused (`EINVAL`: an alignment the filesystem does not take;
/// `EOPNOTSUPP`), writes all of `data` through the page cache instead, over whatever part was
/// written; any other failure is returned as it is.
#[cfg(target_os = "linux")]
fn finish_direct(
    file: &std::fs::File,
    data: &[u8],
    blocks: usize,
    direct: io::Result<()>,
    flags: rustix::fs::OFlags,
) -> io::Result<WritePath> {
    use std::os::unix::fs::FileExt as _;

    use rustix::io::Errno;

    let restored = rustix::fs::fcntl_setfl(file, flags);
    match direct {
        Ok(()) => {
            restored?;
            file.write_all_at(&data[blocks..], blocks as u64)?;
            Ok(WritePath::Direct)
        }
        Err(e)
            if e.raw_os_error() == Some(Errno::INVAL.raw_os_error())
                || e.raw_os_error() == Some(Errno::OPNOTSUPP.raw_os_error()) =>
        {
            restored?;
            file.write_all_at(data, 0)?;
            Ok(WritePath::Buffered)
        }
        Err(e) => Err(e),
    }
}

/// Writes `data` into `file`, new and empty.
#[cfg(not(target_os = "linux"))]
fn write_new_file(
    file: &std::fs::File,
    data: &[u8],
    _scratch: &mut AlignedScratch,
) -> io::Result<WritePath> {
    use std::io::Write as _;
    let mut file = file;
    file.write_all(data)?;
    Ok(WritePath::Buffered)
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::fs::FileExt as _;

    use rustix::fs::{Mode, OFlags};

    use super::*;

    /// Whether files in `dir` can be opened with `O_DIRECT` (ext4, xfs, btrfs: yes; tmpfs
    /// before Linux 6.6: no).
    fn direct_supported(dir: &Path) -> bool {
        rustix::fs::open(
            dir.join("probe"),
            OFlags::CREATE | OFlags::WRONLY | OFlags::DIRECT,
            Mode::RUSR | Mode::WUSR,
        )
        .is_ok()
    }

    fn direct_set(file: &std::fs::File) -> bool {
        rustix::fs::fcntl_getfl(file)
            .unwrap()
            .contains(OFlags::DIRECT)
    }

    fn new_file(dir: &Path, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join(name))
            .unwrap()
    }

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 4093) as u8).collect()
    }

    fn read_back(file: &std::fs::File) -> Vec<u8> {
        let len = file.metadata().unwrap().len() as usize;
        let mut got = vec![0; len];
        file.read_exact_at(&mut got, 0).unwrap();
        got
    }

    #[test]
    fn large_objects_skip_the_page_cache_and_keep_their_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let direct = direct_supported(dir.path());
        let mut scratch = AlignedScratch::for_objects_up_to(1 << 20);
        for (i, len) in [
            0,
            100,
            DIRECT_MIN_BYTES - 1,
            DIRECT_MIN_BYTES,
            DIRECT_MIN_BYTES + 1,
            20 * DIRECT_ALIGN + 4095,
            (1 << 20) + 5,
            (4 << 20) - 1,
        ]
        .into_iter()
        .enumerate()
        {
            let file = new_file(dir.path(), &format!("object-{i}"));
            let data = content(len);
            let path = write_new_file(&file, &data, &mut scratch).unwrap();
            let expected = if direct && len >= DIRECT_MIN_BYTES {
                WritePath::Direct
            } else {
                WritePath::Buffered
            };
            assert_eq!(path, expected, "{len} bytes");
            assert!(read_back(&file) == data, "{len} bytes: the file differs");
            assert!(!direct_set(&file), "{len} bytes: O_DIRECT is cleared");
        }
    }

    #[test]
    fn a_refused_direct_write_falls_back_to_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let file = new_file(dir.path(), "object");
        let data = content(3 * DIRECT_ALIGN + 10);
        // Part of the blocks got written before the filesystem refused the rest (EINVAL).
        file.write_all_at(&[0xAA; 1000], 0).unwrap();
        let flags = rustix::fs::fcntl_getfl(&file).unwrap();
        if direct_supported(dir.path()) {
            rustix::fs::fcntl_setfl(&file, flags | OFlags::DIRECT).unwrap();
        }
        let refused = Err(io::Error::from_raw_os_error(
            rustix::io::Errno::INVAL.raw_os_error(),
        ));
        let path = finish_direct(&file, &data, 3 * DIRECT_ALIGN, refused, flags).unwrap();
        assert_eq!(path, WritePath::Buffered);
        assert!(read_back(&file) == data, "the file differs");
        assert!(!direct_set(&file), "O_DIRECT is cleared");

        // Any other failure is the caller's error, not a fallback.
        let failed = Err(io::Error::from_raw_os_error(
            rustix::io::Errno::NOSPC.raw_os_error(),
        ));
        let e = finish_direct(&file, &data, 3 * DIRECT_ALIGN, failed, flags).unwrap_err();
        assert_eq!(
            e.raw_os_error(),
            Some(rustix::io::Errno::NOSPC.raw_os_error())
        );
    }
}
