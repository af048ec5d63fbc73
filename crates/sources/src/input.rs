//! Opening inputs and reading them in bounded chunks.
//!
//! An [`Input`] is a file (plain or gzip, detected by magic bytes) or
//! standard input (`-`). It yields [`Chunk`]s of at most
//! [`CHUNK_RECORDS`] records, so memory stays flat however large the file.
//! JSONL chunks are raw lines for the caller to decode in parallel; CSV
//! chunks are decoded here, because CSV records can span lines.
//!
//! A line longer than [`MAX_LINE_BYTES`] is not buffered whole: its start is
//! kept for the reject and the rest is skipped.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use crate::chunk::{Chunk, FileFormat, InputError, CHUNK_RECORDS, MAX_LINE_BYTES};
use crate::csv::CsvDecoder;
use crate::Reject;

struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

enum Inner {
    Jsonl { reader: Box<dyn BufRead + Send>, line: u64 },
    Csv(Box<CsvDecoder>),
}

/// An open input.
pub struct Input {
    /// Name as the user gave it.
    pub name: Arc<str>,
    pub format: FileFormat,
    /// Size on disk, if known (for progress).
    pub size: Option<u64>,
    /// Bytes read from disk so far (compressed bytes for gzip).
    pub progress: Arc<AtomicU64>,
    inner: Inner,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("name", &self.name).field("format", &self.format).finish_non_exhaustive()
    }
}

/// Opens `path` (`-` for standard input), detecting gzip and the format.
pub fn open(path: &str) -> Result<Input, InputError> {
    let progress = Arc::new(AtomicU64::new(0));
    let (raw, size): (Box<dyn Read + Send>, Option<u64>) = if path == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let f = File::open(path).map_err(|source| InputError::Open { path: path.into(), source })?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let counting = Counting { inner: raw, read: progress.clone() };
    let mut buffered = BufReader::with_capacity(1 << 20, counting);
    let head = buffered.fill_buf().map_err(|source| InputError::Read { path: path.into(), line: 0, source })?;
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead + Send> = if gz {
        Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    };
    let head = reader.fill_buf().map_err(|source| InputError::Read { path: path.into(), line: 0, source })?;
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    if let Some(at) = binary_at(head) {
        return Err(InputError::Format {
            path: path.into(),
            reason: format!(
                "binary data (byte {at} is a NUL), not a message file: textwatch reads JSONL, CSV or Twilio's CSV export, plain or gzip"
            ),
        });
    }
    let name: Arc<str> = Arc::from(path);
    let by_name = format_from_name(path);
    let first = head.iter().copied().find(|b| !b.is_ascii_whitespace());
    let jsonl = match by_name {
        Some(FileFormat::Jsonl) => true,
        Some(_) => false,
        None => first == Some(b'{') || first.is_none(),
    };
    if jsonl {
        return Ok(Input { name, format: FileFormat::Jsonl, size, progress, inner: Inner::Jsonl { reader, line: 0 } });
    }
    let dec = CsvDecoder::new(reader, name.clone())?;
    let format = dec.format();
    Ok(Input { name, format, size, progress, inner: Inner::Csv(Box::new(dec)) })
}

/// Where the first NUL byte of the first 8 KiB is: text formats never hold
/// one (UTF-16 text does, and is refused the same way).
fn binary_at(head: &[u8]) -> Option<usize> {
    head[..head.len().min(8192)].iter().position(|&b| b == 0)
}

fn format_from_name(path: &str) -> Option<FileFormat> {
    let p = path.strip_suffix(".gz").unwrap_or(path).to_ascii_lowercase();
    match Path::new(&p).extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "ndjson" | "json") => Some(FileFormat::Jsonl),
        Some("csv" | "tsv") => Some(FileFormat::Csv),
        _ => None,
    }
}

impl Input {
    /// Reads the next chunk, or `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, InputError> {
        match &mut self.inner {
            Inner::Jsonl { reader, line } => read_lines(reader.as_mut(), line, &self.name),
            Inner::Csv(dec) => dec.next_chunk(),
        }
    }
}

fn read_lines(reader: &mut dyn BufRead, line: &mut u64, file: &Arc<str>) -> Result<Option<Chunk>, InputError> {
    let mut buf = Vec::with_capacity(4 << 20);
    let mut lines = Vec::with_capacity(CHUNK_RECORDS);
    let mut rejects = Vec::new();
    let mut any = false;
    while lines.len() + rejects.len() < CHUNK_RECORDS && buf.len() < (8 << 20) {
        let start = buf.len();
        let (n, overflow) = read_line_limited(reader, &mut buf, MAX_LINE_BYTES).map_err(|source| InputError::Read {
            path: file.to_string(),
            line: *line + 1,
            source,
        })?;
        if n == 0 {
            break;
        }
        any = true;
        *line += 1;
        let mut end = buf.len();
        while end > start && matches!(buf[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        let mut s = start;
        if *line == 1 && buf[s..end].starts_with(b"\xEF\xBB\xBF") {
            s += 3;
        }
        if overflow {
            rejects.push(Reject::new(
                file,
                *line,
                format!("record is longer than {} MiB; no text message is that long", MAX_LINE_BYTES >> 20),
                &buf[s..end],
            ));
            buf.truncate(start);
            continue;
        }
        if buf[s..end].iter().all(u8::is_ascii_whitespace) {
            buf.truncate(start);
            continue;
        }
        lines.push((*line, s, end));
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(Chunk::Lines { file: file.clone(), buf, lines, rejects }))
}

/// Appends one line (with its newline) to `buf`, keeping at most `limit`
/// bytes of it; the rest of an overlong line is read and dropped. Returns the
/// bytes consumed and whether the line was cut.
fn read_line_limited(r: &mut dyn BufRead, buf: &mut Vec<u8>, limit: usize) -> io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut kept = 0;
    let mut overflow = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok((consumed, overflow));
        }
        let (take, done) = match memchr_newline(avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let room = limit.saturating_sub(kept);
        let keep = take.min(room);
        if keep < take {
            overflow = true;
        }
        buf.extend_from_slice(&avail[..keep]);
        kept += keep;
        r.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, overflow));
        }
    }
}

#[inline]
fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn overlong_lines_are_cut_and_reading_goes_on() {
        let data = format!("{}\nshort\n", "x".repeat(100));
        let mut r = io::Cursor::new(data.into_bytes());
        let mut buf = Vec::new();
        assert_eq!(read_line_limited(&mut r, &mut buf, 10).unwrap(), (101, true));
        assert_eq!(buf.len(), 10);
        buf.clear();
        assert_eq!(read_line_limited(&mut r, &mut buf, 10).unwrap(), (6, false));
        assert_eq!(buf, b"short\n");
    }

    #[test]
    fn binary_files_are_refused_before_any_byte_is_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.out");
        std::fs::write(&p, b"\x7fELF\x02\x01\x01\x00\x00\x00garbage,more\n").unwrap();
        let Err(e) = open(p.to_str().unwrap()) else { panic!("a binary file was accepted") };
        let e = e.to_string();
        assert!(e.contains("binary data (byte 7 is a NUL)"), "{e}");
        assert!(!e.contains("ELF"), "raw bytes echoed: {e}");
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("messages.data");
        let mut gz = flate2::write::GzEncoder::new(File::create(&p).unwrap(), flate2::Compression::fast());
        gz.write_all(b"{\"ts\":1604502131,\"from\":\"1\",\"body\":\"a\"}\n\n{\"x\":1}\n").unwrap();
        gz.finish().unwrap();
        let mut input = open(p.to_str().unwrap()).unwrap();
        assert_eq!(input.format, FileFormat::Jsonl);
        match input.next_chunk().unwrap().unwrap() {
            Chunk::Lines { lines, .. } => assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), vec![1, 3]),
            other => panic!("{other:?}"),
        }
        assert!(input.next_chunk().unwrap().is_none());
    }

    #[test]
    fn missing_files_name_the_path() {
        let e = open("/nonexistent/messages.jsonl").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/messages.jsonl"));
    }
}
