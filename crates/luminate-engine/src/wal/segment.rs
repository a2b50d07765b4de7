//! One WAL segment file: its name, its header, and the scan that walks its records and says where (and
//! why) the valid prefix ends. Knows nothing of what the records mean.

use std::path::{Path, PathBuf};

use super::{FORMAT_V1, HEADER_LEN, MAGIC, RECORD_HEADER_LEN};
use crate::error::EngineError;

/// The file name of segment `seq`: eight decimal digits and `.wal`, so names sort in log order.
pub(crate) fn file_name(seq: u64) -> String {
    format!("{seq:08}.wal")
}

/// The sequence number of a segment file name, `None` for any other file.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header every segment starts with.
pub(crate) fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4..].copy_from_slice(&FORMAT_V1.to_le_bytes());
    h
}

/// Where the valid prefix of a segment ends, and why, when it ends before the file does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Offset of the first byte that is not part of a complete, checksummed record.
    pub offset: u64,
    /// What was found there.
    pub reason: String,
    /// The segment header itself is incomplete: nothing in the file is usable.
    pub in_header: bool,
}

/// Walks the records of a segment's bytes, calling `on_record(offset, payload)` for each complete one in
/// order. Returns the damage that ended the scan early, if any. A header that is complete but not ours
/// (wrong magic, unknown version) is `Corruption` wherever the segment is: no crash writes those bytes;
/// so is a short header that is not the start of ours, and a zero-filled header with non-zero bytes
/// after it (the file system's zero-fill of a file whose first write was lost covers the whole file).
pub(crate) fn scan(
    path: &Path,
    bytes: &[u8],
    mut on_record: impl FnMut(u64, &[u8]) -> Result<(), EngineError>,
) -> Result<Option<Damage>, EngineError> {
    if bytes.len() < HEADER_LEN {
        if !header().starts_with(bytes) && bytes.iter().any(|&b| b != 0) {
            return Err(corruption(
                path,
                0,
                format!(
                    "a {}-byte file that is not the start of a segment header: {bytes:02x?}",
                    bytes.len()
                ),
            ));
        }
        let reason = format!(
            "truncated segment header ({} of {HEADER_LEN} bytes)",
            bytes.len()
        );
        return Ok(Some(Damage {
            offset: 0,
            reason,
            in_header: true,
        }));
    }
    let (head, mut rest) = bytes.split_at(HEADER_LEN);
    if head.iter().all(|&b| b == 0) {
        if let Some(i) = rest.iter().position(|&b| b != 0) {
            return Err(corruption(
                path,
                (HEADER_LEN + i) as u64,
                "non-zero bytes after a zero-filled segment header: not a torn header".to_owned(),
            ));
        }
        return Ok(Some(Damage {
            offset: 0,
            reason: "zero-filled segment header".to_owned(),
            in_header: true,
        }));
    }
    if head[..4] != MAGIC {
        return Err(corruption(
            path,
            0,
            format!("bad magic {:02x?}, expected {MAGIC:02x?}", &head[..4]),
        ));
    }
    let version = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if version != FORMAT_V1 {
        return Err(corruption(
            path,
            4,
            format!("unsupported WAL format version {version} (this build reads {FORMAT_V1})"),
        ));
    }
    let mut offset = HEADER_LEN as u64;
    while !rest.is_empty() {
        let damage = |reason: String| {
            Ok(Some(Damage {
                offset,
                reason,
                in_header: false,
            }))
        };
        let zero_tail = rest.iter().all(|&b| b == 0);
        if rest.len() < RECORD_HEADER_LEN {
            let reason = if zero_tail {
                "zero-filled tail"
            } else {
                "truncated record header"
            };
            return damage(format!("{reason} ({} bytes)", rest.len()));
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let stored_crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len == 0 {
            let reason = if zero_tail {
                "zero-filled tail"
            } else {
                "zero-length record"
            };
            return damage(format!("{reason} ({} bytes)", rest.len()));
        }
        let present = rest.len() - RECORD_HEADER_LEN;
        if len > present {
            return damage(format!(
                "truncated payload: record of {len} bytes, {present} present"
            ));
        }
        let payload = &rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len];
        let crc = crc32c::crc32c(payload);
        if crc != stored_crc {
            return damage(format!(
                "checksum mismatch: stored {stored_crc:#010x}, computed {crc:#010x}"
            ));
        }
        on_record(offset, payload)?;
        offset += (RECORD_HEADER_LEN + len) as u64;
        rest = &rest[RECORD_HEADER_LEN + len..];
    }
    Ok(None)
}

/// `damage`, the end of the valid prefix of the last segment, if it is a torn tail: no complete frame
/// (see [`super::resync`]) starts anywhere after it. Otherwise the damage lies before records a crash
/// could not have left behind it, which is `Corruption` at the damage, naming where the next complete
/// record is: the engine refuses to cut them off.
pub(crate) fn torn_tail(path: &Path, bytes: &[u8], damage: Damage) -> Result<Damage, EngineError> {
    if damage.in_header {
        return Ok(damage);
    }
    match super::resync::first_complete_frame(bytes, damage.offset as usize + 1) {
        None => Ok(damage),
        Some(next) => Err(corruption(
            path,
            damage.offset,
            format!(
                "{}, with a complete record after it at offset {next}: not a torn tail",
                damage.reason
            ),
        )),
    }
}

/// A `Corruption` error for `path` at `offset`.
pub(crate) fn corruption(path: &Path, offset: u64, reason: String) -> EngineError {
    EngineError::Corruption {
        path: PathBuf::from(path),
        offset,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn records(bytes: &[u8]) -> (Vec<(u64, Vec<u8>)>, Option<Damage>) {
        let mut out = Vec::new();
        let damage = scan(Path::new("s"), bytes, |o, p| {
            out.push((o, p.to_vec()));
            Ok(())
        })
        .unwrap();
        (out, damage)
    }

    #[test]
    fn layout_is_pinned() {
        assert_eq!(file_name(1), "00000001.wal");
        assert_eq!(parse_file_name("00000042.wal"), Some(42));
        assert_eq!(parse_file_name("42.wal"), None);
        assert_eq!(parse_file_name("00000042.wal.tmp"), None);
        let mut seg = header().to_vec();
        assert_eq!(seg, [b'L', b'W', b'A', b'L', 1, 0, 0, 0]);
        seg.extend(frame(b"abc"));
        // len 3, then crc32c("abc") = 0x364b3fb7.
        assert_eq!(&seg[8..16], &[3, 0, 0, 0, 0xb7, 0x3f, 0x4b, 0x36]);
        assert_eq!(records(&seg), (vec![(8, b"abc".to_vec())], None));
    }

    #[test]
    fn every_kind_of_tail_damage_is_named() {
        let mut seg = header().to_vec();
        seg.extend(frame(b"first"));
        let good = seg.len() as u64;
        let damaged = |tail: &[u8]| {
            let mut s = seg.clone();
            s.extend_from_slice(tail);
            let (recs, damage) = records(&s);
            assert_eq!(recs.len(), 1);
            let damage = damage.unwrap();
            assert_eq!(damage.offset, good);
            damage.reason
        };
        assert!(damaged(&[5, 0, 0]).starts_with("truncated record header"));
        assert!(damaged(&[0; 40]).starts_with("zero-filled tail"));
        assert!(damaged(&[0, 0, 0, 0, 0, 0, 0, 0, 1]).starts_with("zero-length record"));
        assert!(damaged(&frame(b"second")[..10]).starts_with("truncated payload"));
        let mut flipped = frame(b"second");
        flipped[9] ^= 1;
        assert!(damaged(&flipped).starts_with("checksum mismatch"));
        let (_, d) = records(&header()[..5]);
        assert!(d.unwrap().in_header);
        let (_, d) = records(&[0; 8]);
        assert!(d.unwrap().in_header);
    }

    #[test]
    fn foreign_header_is_corruption() {
        let err = scan(Path::new("x.wal"), b"NOPE\x01\0\0\0", |_, _| Ok(())).unwrap_err();
        assert!(
            matches!(err, EngineError::Corruption { offset: 0, .. }),
            "{err}"
        );
        let err = scan(Path::new("x.wal"), b"LWAL\x09\0\0\0", |_, _| Ok(())).unwrap_err();
        assert!(
            matches!(err, EngineError::Corruption { offset: 4, .. }),
            "{err}"
        );
    }
}
