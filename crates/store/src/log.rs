//! The message log: messages appended to segment files, in the Arrow IPC
//! streaming format with zstd-compressed buffers (`*.arrows`), so an analyst
//! opens a segment in DuckDB, pandas, Polars or pyarrow as it is.
//!
//! A segment is written sequentially, one record batch per committed batch
//! of messages, and rolled once it holds [`SEGMENT_ROWS`] messages. The
//! log knows nothing of SQLite: the store records each segment's committed
//! length next to the metadata that refers to its messages, in one
//! transaction, after the segment data is on disk ([`SegmentLog::append`]
//! syncs it). What lies past the committed length is a torn or
//! unacknowledged tail; [`SegmentLog::recover`] cuts it off.
//!
//! Columns (see [`schema`]): `key` (the message's identity hash), `id`,
//! `ts` (UTC milliseconds), `sender`, `rcpt` (16-byte keyed hash, never the
//! number), `body`, `source`, `meta` (JSON text), `template` (the template's
//! key, as in the `templates` table) and `origin` (`file:line`).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{FixedSizeBinaryBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, FixedSizeBinaryArray, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_ipc::CompressionType;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use xxhash_rust::xxh3::Xxh3;

use crate::{NewMessage, StoreError};

/// Messages per segment before a new one is started.
pub const SEGMENT_ROWS: u64 = 1 << 20;

/// The end-of-stream marker of the Arrow IPC streaming format.
const EOS: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// Column positions in [`schema`].
pub mod col {
    pub const KEY: usize = 0;
    pub const ID: usize = 1;
    pub const TS: usize = 2;
    pub const SENDER: usize = 3;
    pub const RCPT: usize = 4;
    pub const BODY: usize = 5;
    pub const SOURCE: usize = 6;
    pub const META: usize = 7;
    pub const TEMPLATE: usize = 8;
    pub const ORIGIN: usize = 9;
}

/// The segments' schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("key", DataType::UInt64, false),
                Field::new("id", DataType::Utf8, true),
                Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
                Field::new("sender", DataType::Utf8, false),
                Field::new("rcpt", DataType::FixedSizeBinary(16), true),
                Field::new("body", DataType::Utf8, false),
                Field::new("source", DataType::Utf8, true),
                Field::new("meta", DataType::Utf8, true),
                Field::new("template", DataType::UInt64, false),
                Field::new("origin", DataType::Utf8, true),
            ]))
        })
        .clone()
}

/// A segment as the metadata records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub id: i64,
    /// Messages committed.
    pub rows: u64,
    /// Bytes committed (the rest of the file, if any, is a torn tail).
    pub bytes: u64,
    /// Whether the end-of-stream marker is written (no more appends).
    pub sealed: bool,
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
    /// xxh3-64 of the committed bytes: a reader that reads a segment to
    /// its end checks it, so damage is an error, not silently wrong data.
    pub hash: Option<u64>,
}

impl Segment {
    /// Counts `messages`, just written through `out`, in the segment.
    fn appended(&mut self, messages: &[NewMessage<'_>], out: &Counting) {
        self.rows += messages.len() as u64;
        self.bytes = out.written;
        self.hash = Some(out.hash.digest());
        for m in messages {
            let ts = m.msg.msg.ts_ms;
            self.min_ts = Some(self.min_ts.map_or(ts, |t| t.min(ts)));
            self.max_ts = Some(self.max_ts.map_or(ts, |t| t.max(ts)));
        }
    }
}

/// What an append wrote: the segment's new committed state once the
/// caller's metadata transaction records it.
#[derive(Clone, Debug)]
pub struct Appended {
    pub segment: Segment,
    /// A segment sealed to make room (its new length, with the marker).
    pub sealed: Option<Segment>,
}

/// What [`SegmentLog::recover`] did to one segment.
#[derive(Clone, Debug)]
pub struct Recovered {
    pub segment: Segment,
    /// Bytes past the committed length that were cut off.
    pub truncated: u64,
}

enum Sink {
    File(BufWriter<File>),
    Mem(Vec<u8>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Mem(v) => v.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Mem(_) => Ok(()),
        }
    }
}

struct Open {
    writer: StreamWriter<Counting>,
    seg: Segment,
}

struct Counting {
    sink: Sink,
    written: u64,
    hash: Xxh3,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.sink.write(buf)?;
        self.written += n as u64;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }
}

/// A segment's stream writer (zstd buffers, the segments' schema written
/// first) over `sink`, counting and hashing what it writes.
fn stream_writer(sink: Sink, id: i64) -> Result<StreamWriter<Counting>, StoreError> {
    let opts = IpcWriteOptions::default()
        .try_with_compression(Some(CompressionType::ZSTD))
        .map_err(|e| io_err("segment options", e))?;
    StreamWriter::try_new_with_options(Counting { sink, written: 0, hash: Xxh3::new() }, &schema(), opts)
        .map_err(|e| io_err(format!("starting segment {id}"), e))
}

/// The log: a directory of segments, or memory (tests, `check`).
pub struct SegmentLog {
    dir: Option<PathBuf>,
    mem: HashMap<i64, Vec<u8>>,
    open: Option<Open>,
    lock: Option<File>,
    roll_rows: u64,
}

impl std::fmt::Debug for SegmentLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentLog").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn io_err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> StoreError {
    StoreError::Log(format!("{what}: {e}"))
}

impl SegmentLog {
    /// The log in `dir` (created on the first append).
    pub fn in_dir(dir: PathBuf) -> Self {
        SegmentLog { dir: Some(dir), mem: HashMap::new(), open: None, lock: None, roll_rows: SEGMENT_ROWS }
    }

    /// A log kept in memory.
    pub fn in_memory() -> Self {
        SegmentLog { dir: None, mem: HashMap::new(), open: None, lock: None, roll_rows: SEGMENT_ROWS }
    }

    /// Rolls segments after `rows` messages instead of [`SEGMENT_ROWS`]
    /// (tests).
    pub fn with_roll_rows(mut self, rows: u64) -> Self {
        self.roll_rows = rows.max(1);
        self
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The file of segment `id`.
    pub fn path_of(&self, id: i64) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{id:08}.arrows")))
    }

    /// Takes the writer's lock (one writing process per database), creating
    /// the directory if needed.
    pub fn lock(&mut self) -> Result<(), StoreError> {
        if self.lock.is_some() {
            return Ok(());
        }
        let Some(dir) = &self.dir else { return Ok(()) };
        std::fs::create_dir_all(dir).map_err(|e| io_err(format!("creating {}", dir.display()), e))?;
        let path = dir.join("LOCK");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(format!("opening {}", path.display()), e))?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(dir.display().to_string())),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(format!("locking {}", path.display()), e)),
        }
        self.lock = Some(f);
        Ok(())
    }

    /// Makes the files agree with the committed metadata before the first
    /// write: a tail past a segment's committed length (a batch whose
    /// metadata never committed, or a torn write) is cut off, and a segment
    /// left open by a stopped process is sealed. Returns what changed; the
    /// caller records the sealed segments.
    pub fn recover(&mut self, segments: &[Segment]) -> Result<Vec<Recovered>, StoreError> {
        self.lock()?;
        let mut out = Vec::new();
        if let Some(dir) = &self.dir {
            // Files no metadata refers to: a segment started by a process
            // that stopped before its first batch committed.
            let entries = std::fs::read_dir(dir).map_err(|e| io_err(format!("reading {}", dir.display()), e))?;
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(id) =
                    name.to_str().and_then(|n| n.strip_suffix(".arrows")).and_then(|n| n.parse::<i64>().ok())
                else {
                    continue;
                };
                if !segments.iter().any(|s| s.id == id) {
                    tracing::warn!(segment = %e.path().display(), "removed a segment no batch was committed to");
                    std::fs::remove_file(e.path())
                        .map_err(|err| io_err(format!("removing {}", e.path().display()), err))?;
                }
            }
        }
        for s in segments {
            let Some(path) = self.path_of(s.id) else {
                // In memory nothing outlives the process.
                continue;
            };
            let len = match std::fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) => {
                    return Err(io_err(
                        format!(
                            "segment {} (recorded in the database; restore it from the backup taken with the \
                             database, then retry)",
                            path.display()
                        ),
                        e,
                    ))
                }
            };
            if len < s.bytes {
                return Err(StoreError::Log(format!(
                    "segment {} holds {len} bytes where {} were committed: the file was damaged outside textwatch \
                     (restore it from the backup taken with the database, then retry)",
                    path.display(),
                    s.bytes
                )));
            }
            if len == s.bytes && s.sealed {
                continue;
            }
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_err(format!("opening segment {}", path.display()), e))?;
            let truncated = len - s.bytes;
            if truncated > 0 {
                tracing::warn!(segment = %path.display(), bytes = truncated, "cut off an uncommitted tail");
                f.set_len(s.bytes).map_err(|e| io_err(format!("truncating {}", path.display()), e))?;
            }
            let mut seg = s.clone();
            if !s.sealed {
                // Left open by a process that stopped: close the stream.
                f.seek(SeekFrom::End(0)).map_err(|e| io_err(path.display(), e))?;
                f.write_all(&EOS).map_err(|e| io_err(format!("sealing {}", path.display()), e))?;
                seg.sealed = true;
                seg.bytes += EOS.len() as u64;
            }
            f.sync_data().map_err(|e| io_err(format!("syncing {}", path.display()), e))?;
            seg.hash = Some(hash_file(&path, seg.bytes)?);
            out.push(Recovered { segment: seg, truncated });
        }
        Ok(out)
    }

    /// Appends one batch of messages to the open segment (starting segment
    /// `next_id` if none is open or the open one is full) and makes it
    /// durable. The caller must record the returned segment state in the
    /// same transaction as the metadata that refers to these messages, or
    /// call [`SegmentLog::abort`].
    pub fn append(&mut self, messages: &[NewMessage<'_>], next_id: i64) -> Result<Appended, StoreError> {
        self.lock()?;
        let mut sealed = None;
        if self.open.as_ref().is_some_and(|o| o.seg.rows >= self.roll_rows) {
            sealed = self.seal()?;
        }
        if self.open.is_none() {
            self.start(next_id)?;
        }
        let batch = to_batch(messages).map_err(|e| io_err("encoding messages", e))?;
        let open = self.open.as_mut().ok_or_else(|| StoreError::Log("no open segment".into()))?;
        let id = open.seg.id;
        let write = (|| -> Result<(), String> {
            open.writer.write(&batch).map_err(|e| e.to_string())?;
            open.writer.flush().map_err(|e| e.to_string())?;
            if let Sink::File(f) = &mut open.writer.get_mut().sink {
                f.get_ref().sync_data().map_err(|e| e.to_string())?;
            }
            Ok(())
        })();
        if let Err(e) = write {
            self.abort();
            return Err(StoreError::Log(format!("writing segment {id}: {e}")));
        }
        let open = self.open.as_mut().ok_or_else(|| StoreError::Log("no open segment".into()))?;
        open.seg.appended(messages, open.writer.get_ref());
        Ok(Appended { segment: open.seg.clone(), sealed })
    }

    fn start(&mut self, id: i64) -> Result<(), StoreError> {
        let sink = match self.path_of(id) {
            Some(path) => {
                // Ids are never reused and recovery removed unreferenced
                // files, so a file already there is an error, not data to
                // overwrite.
                let f = OpenOptions::new()
                    .create_new(true)
                    .write(true)
                    .open(&path)
                    .map_err(|e| io_err(format!("creating segment {}", path.display()), e))?;
                self.sync_dir()?;
                Sink::File(BufWriter::with_capacity(1 << 20, f))
            }
            None => Sink::Mem(Vec::new()),
        };
        let writer = stream_writer(sink, id)?;
        self.open = Some(Open {
            writer,
            seg: Segment { id, rows: 0, bytes: 0, sealed: false, min_ts: None, max_ts: None, hash: None },
        });
        Ok(())
    }

    /// Forgets the open segment after a failed write or a failed metadata
    /// commit: the next append starts a new segment, and the next
    /// [`SegmentLog::recover`] cuts this one back to what was committed.
    pub fn abort(&mut self) {
        self.open = None;
    }

    /// Writes the open segment's end marker; returns its final state.
    pub fn seal(&mut self) -> Result<Option<Segment>, StoreError> {
        let Some(mut o) = self.open.take() else { return Ok(None) };
        let id = o.seg.id;
        o.writer.finish().map_err(|e| io_err(format!("sealing segment {id}"), e))?;
        let Counting { sink, written, hash } =
            o.writer.into_inner().map_err(|e| io_err(format!("sealing segment {id}"), e))?;
        match sink {
            Sink::File(f) => {
                f.get_ref().sync_data().map_err(|e| io_err(format!("syncing segment {id}"), e))?;
            }
            Sink::Mem(v) => {
                self.mem.insert(id, v);
            }
        }
        o.seg.bytes = written;
        o.seg.sealed = true;
        o.seg.hash = Some(hash.digest());
        Ok(Some(o.seg))
    }

    /// Makes the folder's entries (a created or removed segment) durable.
    fn sync_dir(&self) -> Result<(), StoreError> {
        if let Some(dir) = &self.dir {
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_err(format!("syncing {}", dir.display()), e))?;
        }
        Ok(())
    }

    /// Removes a segment's file (retention).
    pub fn remove(&mut self, id: i64) -> Result<(), StoreError> {
        if self.open.as_ref().is_some_and(|o| o.seg.id == id) {
            self.abort();
        }
        self.mem.remove(&id);
        if let Some(p) = self.path_of(id) {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(format!("removing {}", p.display()), e)),
            }
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Bytes a segment takes on disk (0 in memory or when missing).
    pub fn disk_bytes(&self, id: i64) -> u64 {
        self.path_of(id).and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len())
    }

    /// Reads the committed part of a segment, batch by batch, with only the
    /// columns in `cols` (positions from [`col`]); `f` returns false to
    /// stop. Returns false if `f` stopped.
    pub fn read(&self, seg: &Segment, cols: &[usize], f: &mut dyn FnMut(&Rows) -> bool) -> Result<bool, StoreError> {
        if seg.rows == 0 {
            return Ok(true);
        }
        let projection = projection(cols);
        let reader: Box<dyn Read + '_> = match self.path_of(seg.id) {
            Some(p) => {
                let file = File::open(&p).map_err(|e| {
                    io_err(
                        format!(
                            "opening segment {} (recorded in the database; restore the segments folder)",
                            p.display()
                        ),
                        e,
                    )
                })?;
                let len = file.metadata().map_err(|e| io_err(p.display(), e))?.len();
                if len < seg.bytes {
                    return Err(StoreError::Log(format!(
                        "segment {} holds {len} bytes where {} were committed: the file was damaged outside textwatch",
                        p.display(),
                        seg.bytes
                    )));
                }
                Box::new(file.take(seg.bytes))
            }
            None => {
                let bytes: &[u8] = match (self.mem.get(&seg.id), &self.open) {
                    (Some(v), _) => v,
                    (None, Some(o)) if o.seg.id == seg.id => match &o.writer.get_ref().sink {
                        Sink::Mem(v) => v,
                        Sink::File(_) => &[],
                    },
                    _ => return Err(StoreError::Log(format!("segment {} is not in memory", seg.id))),
                };
                Box::new(&bytes[..(seg.bytes as usize).min(bytes.len())])
            }
        };
        decode(seg, reader, &projection, f)
    }
}

/// A segment written as a sequence of byte chunks instead of a file: one
/// chunk per appended batch (the first carries the stream's schema, a
/// sealed segment's last is the end marker). The chunks of a segment,
/// concatenated in order, are exactly the bytes a [`SegmentLog`] file of
/// the same messages holds, so the PostgreSQL store keeps the same format
/// in rows and a reader decodes it with [`decode`].
pub struct ChunkWriter {
    writer: StreamWriter<Counting>,
    seg: Segment,
}

impl std::fmt::Debug for ChunkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkWriter").field("segment", &self.seg).finish_non_exhaustive()
    }
}

impl ChunkWriter {
    /// Starts segment `id`.
    pub fn start(id: i64) -> Result<Self, StoreError> {
        let writer = stream_writer(Sink::Mem(Vec::new()), id)?;
        Ok(ChunkWriter {
            writer,
            seg: Segment { id, rows: 0, bytes: 0, sealed: false, min_ts: None, max_ts: None, hash: None },
        })
    }

    /// The segment as committed once the last chunk returned is stored.
    pub fn segment(&self) -> &Segment {
        &self.seg
    }

    fn take(&mut self) -> Vec<u8> {
        match &mut self.writer.get_mut().sink {
            Sink::Mem(v) => std::mem::take(v),
            Sink::File(_) => Vec::new(),
        }
    }

    /// Encodes one batch of messages; returns its chunk. The writer's
    /// segment then describes the segment with this chunk stored: if
    /// storing it fails, drop the writer and start a new segment.
    pub fn append(&mut self, messages: &[NewMessage<'_>]) -> Result<Vec<u8>, StoreError> {
        let id = self.seg.id;
        let batch = to_batch(messages).map_err(|e| io_err("encoding messages", e))?;
        self.writer.write(&batch).map_err(|e| io_err(format!("encoding segment {id}"), e))?;
        self.writer.flush().map_err(|e| io_err(format!("encoding segment {id}"), e))?;
        self.seg.appended(messages, self.writer.get_ref());
        Ok(self.take())
    }

    /// The end marker's chunk and the sealed segment.
    pub fn seal(mut self) -> Result<(Vec<u8>, Segment), StoreError> {
        let id = self.seg.id;
        self.writer.finish().map_err(|e| io_err(format!("sealing segment {id}"), e))?;
        let chunk = self.take();
        self.seg.bytes = self.writer.get_ref().written;
        self.seg.hash = Some(self.writer.get_ref().hash.digest());
        self.seg.sealed = true;
        Ok((chunk, self.seg))
    }
}

/// The end-of-stream marker, for sealing a chunked segment whose writer is
/// gone (a process stopped with it open): with it, the segment's hash is
/// [`seal_hash`].
pub const END_MARKER: [u8; 8] = EOS;

/// The hash of a segment's committed chunks followed by the end marker.
pub fn seal_hash<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h = Xxh3::new();
    for c in chunks {
        h.update(c);
    }
    h.update(&EOS);
    h.digest()
}

/// Where a store keeps its segments' bytes: files ([`SegmentLog`]) or rows
/// of a database (the PostgreSQL store). The readers of campaigns, samples
/// and streams work on either.
pub trait SegmentSource {
    /// Reads the committed part of a segment, batch by batch, with only
    /// the columns in `cols` (positions from [`col`]); `f` returns false to
    /// stop. Returns false if `f` stopped.
    fn read_segment(&self, seg: &Segment, cols: &[usize], f: &mut dyn FnMut(&Rows) -> bool)
        -> Result<bool, StoreError>;
}

impl SegmentSource for SegmentLog {
    fn read_segment(
        &self,
        seg: &Segment,
        cols: &[usize],
        f: &mut dyn FnMut(&Rows) -> bool,
    ) -> Result<bool, StoreError> {
        self.read(seg, cols, f)
    }
}

/// The columns to decode: `cols` sorted, without repeats.
pub fn projection(cols: &[usize]) -> Vec<usize> {
    let mut c = cols.to_vec();
    c.sort_unstable();
    c.dedup();
    c
}

/// Decodes a segment's committed bytes from `reader` (which yields exactly
/// them), checking its schema, checksum and message count; `projection`
/// as [`projection`] makes it.
pub fn decode(
    seg: &Segment,
    reader: Box<dyn Read + '_>,
    projection: &[usize],
    f: &mut dyn FnMut(&Rows) -> bool,
) -> Result<bool, StoreError> {
    let reader = BufReader::with_capacity(1 << 20, Hashing { inner: reader, hash: Xxh3::new() });
    let what = |e: arrow_schema::ArrowError| io_err(format!("reading segment {}", seg.id), e);
    // A damaged file can make the decoder panic (a length field
    // pointing past the end): that is an error for this segment, not a
    // crash of the process.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let reader = StreamReader::try_new(reader, Some(projection.to_vec())).map_err(what)?;
        let expected = schema();
        let got = reader.schema();
        for &c in projection {
            let want = expected.field(c);
            let field = got.fields().get(c);
            if field.is_none_or(|g| g.name() != want.name() || g.data_type() != want.data_type()) {
                return Err(StoreError::Log(format!(
                    "segment {} is not a textwatch segment: its column {} is {}, expected {} {}",
                    seg.id,
                    c,
                    field.map_or("missing".to_string(), |g| format!("{} {}", g.name(), g.data_type())),
                    want.name(),
                    want.data_type()
                )));
            }
        }
        let mut rows_read = 0u64;
        let mut reader = reader;
        for batch in reader.by_ref() {
            let batch = batch.map_err(what)?;
            rows_read += batch.num_rows() as u64;
            let rows = Rows::new(&batch, projection);
            if !f(&rows) {
                return Ok(false);
            }
        }
        // The end marker and anything the decoder did not need count too.
        std::io::copy(reader.get_mut(), &mut std::io::sink())
            .map_err(|e| io_err(format!("reading segment {}", seg.id), e))?;
        if let Some(want) = seg.hash {
            if reader.get_ref().get_ref().hash.digest() != want {
                return Err(StoreError::Log(format!(
                    "segment {} does not match its checksum: the file was damaged outside textwatch",
                    seg.id
                )));
            }
        }
        if rows_read != seg.rows {
            return Err(StoreError::Log(format!(
                "segment {} gave {rows_read} messages where {} were committed: the file was damaged outside textwatch",
                seg.id, seg.rows
            )));
        }
        Ok(true)
    }))
    .unwrap_or_else(|_| Err(StoreError::Log(format!("segment {} is damaged: its data could not be decoded", seg.id))))
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Xxh3,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// xxh3-64 of the first `len` bytes of a file.
fn hash_file(path: &Path, len: u64) -> Result<u64, StoreError> {
    let f = File::open(path).map_err(|e| io_err(format!("reading {}", path.display()), e))?;
    let mut h = Hashing { inner: f.take(len), hash: Xxh3::new() };
    std::io::copy(&mut h, &mut std::io::sink()).map_err(|e| io_err(format!("reading {}", path.display()), e))?;
    Ok(h.hash.digest())
}

/// One record batch of a segment, by column.
pub struct Rows {
    len: usize,
    key: Option<UInt64Array>,
    id: Option<StringArray>,
    ts: Option<TimestampMillisecondArray>,
    sender: Option<StringArray>,
    rcpt: Option<FixedSizeBinaryArray>,
    body: Option<StringArray>,
    source: Option<StringArray>,
    meta: Option<StringArray>,
    template: Option<UInt64Array>,
    origin: Option<StringArray>,
}

fn column<T: Clone + 'static>(batch: &RecordBatch, projection: &[usize], c: usize) -> Option<T> {
    let i = projection.iter().position(|&p| p == c)?;
    batch.column(i).as_any().downcast_ref::<T>().cloned()
}

fn opt_str(a: &Option<StringArray>, i: usize) -> Option<&str> {
    a.as_ref().filter(|a| a.is_valid(i)).map(|a| a.value(i))
}

impl Rows {
    fn new(batch: &RecordBatch, p: &[usize]) -> Self {
        Rows {
            len: batch.num_rows(),
            key: column(batch, p, col::KEY),
            id: column(batch, p, col::ID),
            ts: column(batch, p, col::TS),
            sender: column(batch, p, col::SENDER),
            rcpt: column(batch, p, col::RCPT),
            body: column(batch, p, col::BODY),
            source: column(batch, p, col::SOURCE),
            meta: column(batch, p, col::META),
            template: column(batch, p, col::TEMPLATE),
            origin: column(batch, p, col::ORIGIN),
        }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn key(&self, i: usize) -> u64 {
        self.key.as_ref().map_or(0, |a| a.value(i))
    }
    pub fn id(&self, i: usize) -> Option<&str> {
        opt_str(&self.id, i)
    }
    pub fn ts(&self, i: usize) -> i64 {
        self.ts.as_ref().map_or(0, |a| a.value(i))
    }
    pub fn sender(&self, i: usize) -> &str {
        opt_str(&self.sender, i).unwrap_or("")
    }
    pub fn rcpt(&self, i: usize) -> Option<&[u8]> {
        self.rcpt.as_ref().filter(|a| a.is_valid(i)).map(|a| a.value(i))
    }
    pub fn body(&self, i: usize) -> &str {
        opt_str(&self.body, i).unwrap_or("")
    }
    pub fn source(&self, i: usize) -> Option<&str> {
        opt_str(&self.source, i)
    }
    pub fn meta(&self, i: usize) -> Option<&str> {
        opt_str(&self.meta, i)
    }
    pub fn template(&self, i: usize) -> u64 {
        self.template.as_ref().map_or(0, |a| a.value(i))
    }
    pub fn origin(&self, i: usize) -> Option<&str> {
        opt_str(&self.origin, i)
    }
}

type TextOf = for<'x, 'y> fn(&'x NewMessage<'y>) -> Option<&'x str>;

fn text_column(messages: &[NewMessage<'_>], f: TextOf) -> ArrayRef {
    let bytes: usize = messages.iter().map(|m| f(m).map_or(0, str::len)).sum();
    let mut b = StringBuilder::with_capacity(messages.len(), bytes);
    for m in messages {
        b.append_option(f(m));
    }
    Arc::new(b.finish())
}

fn to_batch(messages: &[NewMessage<'_>]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = messages.len();
    let text = |f: TextOf| text_column(messages, f);
    let key: UInt64Array = messages.iter().map(|m| m.msg.key).collect();
    let ts = TimestampMillisecondArray::from_iter_values(messages.iter().map(|m| m.msg.msg.ts_ms)).with_timezone("UTC");
    let mut rcpt = FixedSizeBinaryBuilder::with_capacity(n, 16);
    for m in messages {
        match &m.msg.rcpt {
            Some(r) => rcpt.append_value(r)?,
            None => rcpt.append_null(),
        }
    }
    let template: UInt64Array = messages.iter().map(|m| m.msg.template_key).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(key),
            text(|m| m.msg.msg.id.as_deref()),
            Arc::new(ts),
            text(|m| Some(m.msg.sender.as_str())),
            Arc::new(rcpt.finish()),
            text(|m| Some(m.msg.msg.body.as_str())),
            text(|m| m.msg.msg.source.as_deref()),
            text(|m| m.msg.msg.meta.as_deref()),
            Arc::new(template),
            text(|m| Some(m.origin)),
        ],
    )
}
