//! A shard's Raft snapshots as files, so a snapshot of millions of twins is never a copy in
//! memory: it is written twin by twin as a scan yields them, sent to a replica in chunks read
//! from the file, received into a file, and installed twin by twin from it.
//!
//! The file is `RADARSNP`, a format version (u32, big endian), then length-framed postcard
//! records: the header ([`FileHead`]: the snapshot's meta, the applied state, the path
//! dictionary's templates and the number of twins), then each twin in key order, then (from
//! format 2) the shard's audit records (a frame of `A`, the 20-byte key and the record) and an
//! empty frame that ends the file. A frame is its length (u32, big endian) and its bytes; a
//! frame longer than [`MAX_FRAME`], a short read, a missing end or bytes after it are errors,
//! so a truncated or corrupt file never installs. Format 1 files (no audit records) still read.
//!
//! Files live in `raft-snapshots/` of the node's sled directory: `group-<g>.snapshot` is the
//! group's current snapshot; files are written under a temporary name and renamed over it
//! (atomic), so a reader or a replica being sent the old one keeps reading the old inode.

use openraft::{BasicNode, LogId, SnapshotMeta};
use radar_twin::Twin;
use serde::{Deserialize, Serialize};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

const MAGIC: &[u8; 8] = b"RADARSNP";
const VERSION: u32 = 2;
/// Files before audit records: the twins end the file.
const VERSION_WITHOUT_AUDIT: u32 = 1;
const AUDIT_TAG: u8 = b'A';
/// The largest frame read back: far above any twin (a TR-181 gateway is ~20 KB), far below
/// what a corrupt length would make us allocate.
pub const MAX_FRAME: u32 = 256 * 1024 * 1024;

/// What precedes the twins in a snapshot file.
#[derive(Serialize, Deserialize)]
pub struct FileHead<A> {
    pub meta: SnapshotMeta<u64, BasicNode>,
    /// The state machine's applied state (log id, membership, frozen partitions).
    pub applied: A,
    pub templates: Vec<Box<str>>,
    pub twins: u64,
}

fn invalid(message: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}

fn write_frame(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|len| *len <= MAX_FRAME)
        .ok_or_else(|| invalid(format!("a snapshot record of {} bytes", bytes.len())))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(bytes)
}

/// Reads one frame into `buf`; `Ok(false)` at a clean end of file.
fn read_frame(input: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(invalid(format!("a snapshot record claims {len} bytes")));
    }
    buf.clear();
    input.take(len as u64).read_to_end(buf)?;
    if buf.len() != len as usize {
        return Err(invalid("the snapshot file ends inside a record"));
    }
    Ok(true)
}

/// The magic, the version and the header of a snapshot file.
fn read_head<A: serde::de::DeserializeOwned>(
    input: &mut impl Read,
    buf: &mut Vec<u8>,
) -> std::io::Result<(u32, FileHead<A>)> {
    let mut magic = [0u8; 12];
    input
        .read_exact(&mut magic)
        .map_err(|_| invalid("not a Radar snapshot file (too short)"))?;
    if &magic[..8] != MAGIC {
        return Err(invalid("not a Radar snapshot file"));
    }
    let version = u32::from_be_bytes(magic[8..].try_into().expect("4 bytes"));
    if version != VERSION && version != VERSION_WITHOUT_AUDIT {
        return Err(invalid(format!(
            "snapshot file format {version}; this Radar reads {VERSION_WITHOUT_AUDIT} and {VERSION}"
        )));
    }
    if !read_frame(input, buf)? {
        return Err(invalid("the snapshot file has no header"));
    }
    Ok((version, postcard::from_bytes(buf).map_err(invalid)?))
}

/// Writes a snapshot file twin by twin; [`SnapshotWriter::finish`] checks the count and makes
/// it durable.
pub struct SnapshotWriter {
    out: BufWriter<std::fs::File>,
    path: PathBuf,
    scratch: Vec<u8>,
    expected: u64,
    written: u64,
}

impl SnapshotWriter {
    pub fn create<A: Serialize>(path: PathBuf, head: &FileHead<A>) -> std::io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        out.write_all(MAGIC)?;
        out.write_all(&VERSION.to_be_bytes())?;
        let bytes = postcard::to_allocvec(head).map_err(invalid)?;
        write_frame(&mut out, &bytes)?;
        Ok(Self {
            out,
            path,
            scratch: Vec::new(),
            expected: head.twins,
            written: 0,
        })
    }

    pub fn push(&mut self, twin: &Twin) -> std::io::Result<()> {
        let scratch = std::mem::take(&mut self.scratch);
        self.scratch = postcard::to_extend(twin, {
            let mut v = scratch;
            v.clear();
            v
        })
        .map_err(invalid)?;
        write_frame(&mut self.out, &self.scratch)?;
        self.written += 1;
        Ok(())
    }

    fn check_count(&self) -> std::io::Result<()> {
        if self.written != self.expected {
            return Err(invalid(format!(
                "the snapshot holds {} twins, its header says {}",
                self.written, self.expected
            )));
        }
        Ok(())
    }

    /// Adds an audit record (its key and encoded record), after every twin.
    pub fn push_audit(&mut self, key: &[u8], record: &[u8]) -> std::io::Result<()> {
        self.check_count()?;
        self.scratch.clear();
        self.scratch.push(AUDIT_TAG);
        self.scratch.extend_from_slice(key);
        self.scratch.extend_from_slice(record);
        write_frame(&mut self.out, &self.scratch)
    }

    /// Ends the file and flushes it (not to disk: see [`SnapshotDir::publish`]), checking the
    /// count; its path.
    pub fn finish(mut self) -> std::io::Result<PathBuf> {
        self.check_count()?;
        write_frame(&mut self.out, &[])?;
        self.out.into_inner().map_err(|e| e.into_error())?;
        Ok(self.path)
    }
}

/// Reads a snapshot file: [`SnapshotReader::open`] gives the header, iterating gives the twins.
pub struct SnapshotReader {
    input: BufReader<std::fs::File>,
    version: u32,
    remaining: u64,
    buf: Vec<u8>,
    failed: bool,
}

impl SnapshotReader {
    pub fn open<A: serde::de::DeserializeOwned>(
        path: &Path,
    ) -> std::io::Result<(FileHead<A>, Self)> {
        let mut input = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        let mut buf = Vec::new();
        let (version, head): (u32, FileHead<A>) = read_head(&mut input, &mut buf)?;
        let remaining = head.twins;
        Ok((
            head,
            Self {
                input,
                version,
                remaining,
                buf,
                failed: false,
            },
        ))
    }
}

impl Iterator for SnapshotReader {
    type Item = std::io::Result<Twin>;

    /// The twins, then `None`; after an error, `None` (the file is not read further).
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || (self.remaining == 0 && self.version != VERSION_WITHOUT_AUDIT) {
            return None;
        }
        let item = match read_frame(&mut self.input, &mut self.buf) {
            Err(e) => Err(e),
            Ok(false) if self.remaining == 0 => return None,
            Ok(false) => Err(invalid(format!(
                "the snapshot file ends {} twins early",
                self.remaining
            ))),
            Ok(true) if self.remaining == 0 => {
                Err(invalid("the snapshot file has bytes after its last twin"))
            }
            Ok(true) => {
                self.remaining -= 1;
                postcard::from_bytes(&self.buf).map_err(invalid)
            }
        };
        self.failed = item.is_err();
        Some(item)
    }
}

impl SnapshotReader {
    /// After the twins, the audit records as (key, encoded record), up to the end of the file;
    /// an error for a missing end, bytes after it, or a reader whose twins were not all read.
    pub fn audit_records(mut self) -> impl Iterator<Item = std::io::Result<(Vec<u8>, Vec<u8>)>> {
        let mut done = self.version == VERSION_WITHOUT_AUDIT && self.remaining == 0;
        let mut first_error = (self.failed || self.remaining > 0)
            .then(|| invalid("the snapshot's twins were not all read"));
        std::iter::from_fn(move || {
            if let Some(e) = first_error.take() {
                done = true;
                return Some(Err(e));
            }
            if done {
                return None;
            }
            let item = match read_frame(&mut self.input, &mut self.buf) {
                Err(e) => Err(e),
                Ok(false) => Err(invalid("the snapshot file has no end")),
                Ok(true) if self.buf.is_empty() => {
                    done = true;
                    let mut rest = [0u8; 1];
                    return match self.input.read(&mut rest) {
                        Ok(0) => None,
                        Ok(_) => Some(Err(invalid("the snapshot file has bytes after its end"))),
                        Err(e) => Some(Err(e)),
                    };
                }
                Ok(true) => match self.buf.split_first() {
                    Some((&AUDIT_TAG, rest)) if rest.len() > radar_twin::audit::AuditKey::LEN => {
                        let (key, record) = rest.split_at(radar_twin::audit::AuditKey::LEN);
                        Ok((key.to_vec(), record.to_vec()))
                    }
                    _ => Err(invalid("an unknown record after the snapshot's twins")),
                },
            };
            done = item.is_err();
            Some(item)
        })
    }
}

/// A group's snapshot directory: the current file, temporary files, and the lock that keeps
/// an older snapshot from replacing a newer one.
#[derive(Clone)]
pub struct SnapshotDir {
    dir: PathBuf,
    group: u64,
    /// The last log id of the current file (None: none yet), updated under this lock.
    published: Arc<Mutex<Option<LogId<u64>>>>,
}

static TEMPORARIES: AtomicU64 = AtomicU64::new(0);

impl SnapshotDir {
    /// Opens (creating) `dir` for group `group`, removing the temporary files a crash left.
    pub fn open(dir: PathBuf, group: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let prefix = format!("group-{group}.");
        let current = format!("group-{group}.snapshot");
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name != current && !name.ends_with(".installing") {
                std::fs::remove_file(dir.join(&*name))?;
            }
        }
        Ok(Self {
            dir,
            group,
            published: Arc::new(Mutex::new(None)),
        })
    }

    pub fn current(&self) -> PathBuf {
        self.dir.join(format!("group-{}.snapshot", self.group))
    }

    /// A new file name for a snapshot being built or received.
    pub fn temporary(&self, kind: &str) -> PathBuf {
        let n = TEMPORARIES.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("group-{}.{kind}-{n}", self.group))
    }

    /// Where a received snapshot waits while it is installed (see the state machine).
    pub fn installing(&self) -> PathBuf {
        self.dir.join(format!("group-{}.installing", self.group))
    }

    /// Records that the current file holds the snapshot at `last` (at open).
    pub fn set_published(&self, last: Option<LogId<u64>>) {
        *self.published.lock().unwrap_or_else(|e| e.into_inner()) = last;
    }

    /// Makes `file` the current snapshot, durably, unless `only_if_newer` and the current one
    /// is newer; whether it did. The rename and the directory's fsync happen under the lock,
    /// so two publishers never cross.
    pub fn publish(
        &self,
        file: &Path,
        last: Option<LogId<u64>>,
        only_if_newer: bool,
    ) -> std::io::Result<bool> {
        std::fs::File::open(file)?.sync_all()?;
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        if only_if_newer && *published > last {
            std::fs::remove_file(file)?;
            return Ok(false);
        }
        self.rename_durably(file, &self.current())?;
        *published = last;
        Ok(true)
    }

    /// Moves a received snapshot to [`SnapshotDir::installing`], durably.
    pub fn stage_install(&self, received: &Path) -> std::io::Result<()> {
        std::fs::File::open(received)?.sync_all()?;
        self.rename_durably(received, &self.installing())
    }

    fn rename_durably(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::rename(from, to)?;
        std::fs::File::open(&self.dir)?.sync_all()
    }
}

/// A snapshot file as openraft reads and writes it: sent to a replica in chunks read from it,
/// received into it chunk by chunk.
pub struct SnapshotFile {
    file: tokio::fs::File,
    path: PathBuf,
}

impl SnapshotFile {
    /// The file at `path` with its header, positioned at its start (to be sent). One open,
    /// so the header is the file's even if another snapshot is published meanwhile.
    pub async fn open_with_head<A: serde::de::DeserializeOwned + Send + 'static>(
        path: PathBuf,
    ) -> std::io::Result<(FileHead<A>, Self)> {
        let (head, file, path) = tokio::task::spawn_blocking(move || {
            use std::io::Seek;
            let mut file = std::fs::File::open(&path)?;
            let (_, head) = read_head(&mut BufReader::new(&file), &mut Vec::new())?;
            file.rewind()?;
            Ok::<_, std::io::Error>((head, file, path))
        })
        .await
        .map_err(std::io::Error::other)??;
        let file = tokio::fs::File::from_std(file);
        Ok((head, Self { file, path }))
    }

    pub async fn create(path: PathBuf) -> std::io::Result<Self> {
        Ok(Self {
            file: tokio::fs::File::create(&path).await?,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and fsyncs what was received.
    pub async fn sync(&mut self) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await?;
        self.file.sync_all().await
    }
}

impl tokio::io::AsyncRead for SnapshotFile {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for SnapshotFile {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.file).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

impl tokio::io::AsyncSeek for SnapshotFile {
    fn start_seek(mut self: Pin<&mut Self>, position: std::io::SeekFrom) -> std::io::Result<()> {
        Pin::new(&mut self.file).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        Pin::new(&mut self.file).poll_complete(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use radar_core::DeviceKey;

    fn head(twins: u64) -> FileHead<u32> {
        FileHead {
            meta: SnapshotMeta::default(),
            applied: 7,
            templates: vec!["Device.X".into()],
            twins,
        }
    }

    fn twin(key: &str) -> Twin {
        Twin::new(DeviceKey::parse(key).unwrap())
    }

    fn written(dir: &Path, twins: &[&str], declared: u64) -> PathBuf {
        let mut writer = SnapshotWriter::create(dir.join("s"), &head(declared)).unwrap();
        for key in twins {
            writer.push(&twin(key)).unwrap();
        }
        writer.out.flush().unwrap();
        dir.join("s")
    }

    #[test]
    fn a_file_reads_back_twin_by_twin() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SnapshotWriter::create(dir.path().join("s"), &head(2)).unwrap();
        writer.push(&twin("A")).unwrap();
        writer.push(&twin("B")).unwrap();
        let path = writer.finish().unwrap();
        let (head, reader) = SnapshotReader::open::<u32>(&path).unwrap();
        assert_eq!((head.applied, head.twins), (7, 2));
        let keys: Vec<String> = reader.map(|t| t.unwrap().key.to_string()).collect();
        assert_eq!(keys, ["A", "B"]);
    }

    #[test]
    fn audit_records_follow_the_twins() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SnapshotWriter::create(dir.path().join("s"), &head(1)).unwrap();
        assert!(
            writer.push_audit(&[0; 20], b"early").is_err(),
            "before a twin"
        );
        writer.push(&twin("A")).unwrap();
        writer.push_audit(&[1; 20], b"one").unwrap();
        writer.push_audit(&[2; 20], b"two").unwrap();
        let path = writer.finish().unwrap();
        let mut reader = SnapshotReader::open::<u32>(&path).unwrap().1;
        assert_eq!(reader.by_ref().count(), 1);
        let records: Vec<_> = reader.audit_records().map(|r| r.unwrap()).collect();
        assert_eq!(
            records,
            [
                (vec![1; 20], b"one".to_vec()),
                (vec![2; 20], b"two".to_vec())
            ]
        );
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(0);
        std::fs::write(&path, &bytes).unwrap();
        let mut reader = SnapshotReader::open::<u32>(&path).unwrap().1;
        assert_eq!(reader.by_ref().count(), 1);
        assert!(
            reader.audit_records().any(|r| r.is_err()),
            "bytes after the end"
        );
    }

    /// Truncated, padded, mislabelled or absurd files are errors, never a partial install or
    /// a huge allocation.
    #[test]
    fn damaged_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let short = written(dir.path(), &["A"], 2);
        let results: Vec<_> = SnapshotReader::open::<u32>(&short).unwrap().1.collect();
        assert!(results.last().unwrap().is_err(), "a missing twin");

        let long = written(dir.path(), &["A", "B"], 1);
        let mut reader = SnapshotReader::open::<u32>(&long).unwrap().1;
        assert!(reader.by_ref().all(|t| t.is_ok()));
        let rest: Vec<_> = reader.audit_records().collect();
        assert!(rest[0].is_err(), "a twin after the last twin");

        let unended = written(dir.path(), &["A"], 1);
        let mut reader = SnapshotReader::open::<u32>(&unended).unwrap().1;
        assert!(reader.by_ref().all(|t| t.is_ok()));
        let rest: Vec<_> = reader.audit_records().collect();
        assert!(rest[0].is_err(), "no end frame");

        let mut bytes = std::fs::read(written(dir.path(), &["A"], 1)).unwrap();
        let cut = bytes.len() - 2;
        bytes.truncate(cut);
        std::fs::write(dir.path().join("cut"), &bytes).unwrap();
        let results: Vec<_> = SnapshotReader::open::<u32>(&dir.path().join("cut"))
            .unwrap()
            .1
            .collect();
        assert!(results[0].is_err(), "a record cut short");

        let mut huge = MAGIC.to_vec();
        huge.extend(VERSION.to_be_bytes());
        huge.extend(u32::MAX.to_be_bytes());
        std::fs::write(dir.path().join("huge"), &huge).unwrap();
        assert!(SnapshotReader::open::<u32>(&dir.path().join("huge")).is_err());

        std::fs::write(dir.path().join("other"), b"something else entirely").unwrap();
        let err = SnapshotReader::open::<u32>(&dir.path().join("other")).err();
        assert!(err.unwrap().to_string().contains("not a Radar snapshot"));
    }

    /// A snapshot built from an older state never replaces a newer one (a build racing an
    /// install); an install replaces whatever is there.
    #[test]
    fn an_older_snapshot_does_not_replace_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = SnapshotDir::open(dir.path().join("snaps"), 3).unwrap();
        let at = |index| Some(LogId::new(openraft::CommittedLeaderId::new(1, 0), index));
        let file = |text: &str| {
            let path = snapshots.temporary("building");
            std::fs::write(&path, text).unwrap();
            path
        };
        assert!(snapshots.publish(&file("ten"), at(10), true).unwrap());
        assert!(!snapshots.publish(&file("five"), at(5), true).unwrap());
        assert_eq!(std::fs::read_to_string(snapshots.current()).unwrap(), "ten");
        assert!(snapshots.publish(&file("three"), at(3), false).unwrap());
        assert_eq!(
            std::fs::read_to_string(snapshots.current()).unwrap(),
            "three"
        );
        // Temporary files do not outlive a restart.
        let left = file("left by a crash");
        SnapshotDir::open(dir.path().join("snaps"), 3).unwrap();
        assert!(!left.exists());
        assert!(snapshots.current().exists());
    }
}
