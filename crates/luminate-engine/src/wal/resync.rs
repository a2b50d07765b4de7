//! resync: whether a complete record frame lies anywhere after the damage a segment scan stopped at —
//! what tells a torn tail (nothing valid after the damage: a write the crash cut short) from
//! corruption (damage with records after it, which a crash does not produce).
//!
//! A frame is complete at offset `a` when its length `L` (u32 LE at `a`) is non-zero, its payload
//! `[a + 8, a + 8 + L)` lies inside the segment, and the crc32c of that payload equals the one stored
//! at `a + 4`. Every byte offset is tried: the damage may have changed a length field, so the record
//! boundaries after it are unknown.
//!
//! Hashing each candidate's payload would cost the sum of their lengths — quadratic in the tail, as
//! lengths read from point data are often hundreds of kilobytes — so a payload's crc is derived from
//! prefix crcs instead (the identity behind zlib's `crc32_combine`): with `C(i)` the crc32c of the bytes
//! from the search's start to `i`, `crc32c([p, q)) = C(q) ^ C(p)·x^(8(q-p)) mod P`. `C` is kept every
//! [`CHECKPOINT`] bytes (a value in between extends the checkpoint before it); the multiplication by
//! `x^(8n)` takes four table lookups and four carry-less products. A candidate then costs the same
//! whatever its length: a 16 MiB tail shaped like point data (no complete frame in it, so every offset
//! is tried) is searched in about a second in a release build. The search stops at the first frame
//! found: damage before records costs only the bytes up to the next record.

/// Bytes between stored prefix crcs: memory is a sixteenth of the searched bytes.
const CHECKPOINT: usize = 64;
/// The crc32c polynomial, bit-reversed (bit 31 is the coefficient of x^0).
const POLY: u32 = 0x82f6_3b78;
/// x^0, the multiplicative identity, bit-reversed.
const ONE: u32 = 1 << 31;

/// The offset of the first complete frame starting at or after `from` in `bytes`, if any.
pub(crate) fn first_complete_frame(bytes: &[u8], from: usize) -> Option<u64> {
    if from >= bytes.len() {
        return None;
    }
    let prefix = Prefix::new(&bytes[from..]);
    let shifts = Shifts::new();
    let tail = &bytes[from..];
    for a in 0..tail.len().saturating_sub(super::RECORD_HEADER_LEN - 1) {
        let len = u32::from_le_bytes([tail[a], tail[a + 1], tail[a + 2], tail[a + 3]]);
        let p = a + super::RECORD_HEADER_LEN;
        if len == 0 || len as usize > tail.len() - p {
            continue;
        }
        let q = p + len as usize;
        let stored = u32::from_le_bytes([tail[a + 4], tail[a + 5], tail[a + 6], tail[a + 7]]);
        if prefix.at(q) ^ shifts.shift(prefix.at(p), len) == stored {
            return Some((from + a) as u64);
        }
    }
    None
}

/// crc32c of every prefix of a slice, from checkpoints.
struct Prefix<'a> {
    bytes: &'a [u8],
    /// `checkpoints[j]` = crc32c of `bytes[..j * CHECKPOINT]`.
    checkpoints: Vec<u32>,
}

impl<'a> Prefix<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let mut checkpoints = Vec::with_capacity(bytes.len() / CHECKPOINT + 1);
        let mut crc = 0;
        checkpoints.push(crc);
        for chunk in bytes.chunks_exact(CHECKPOINT) {
            crc = crc32c::crc32c_append(crc, chunk);
            checkpoints.push(crc);
        }
        Self { bytes, checkpoints }
    }

    /// crc32c of `bytes[..i]`.
    fn at(&self, i: usize) -> u32 {
        let j = i / CHECKPOINT;
        crc32c::crc32c_append(self.checkpoints[j], &self.bytes[j * CHECKPOINT..i])
    }
}

/// Multiplication by x^(8n) mod P, for any `n: u32`, by the bytes of `n`.
struct Shifts {
    /// `tables[k][b]` = x^(8 · b · 256^k) mod P.
    tables: [[u32; 256]; 4],
}

impl Shifts {
    fn new() -> Self {
        let mut tables = [[0; 256]; 4];
        // x^8: one byte of zeros.
        let mut unit = ONE >> 8;
        for table in &mut tables {
            table[0] = ONE;
            for b in 1..256 {
                table[b] = multiply(table[b - 1], unit);
            }
            unit = multiply(table[255], unit);
        }
        Self { tables }
    }

    /// `crc` · x^(8n) mod P: the crc of a prefix, carried across `n` more bytes.
    fn shift(&self, crc: u32, n: u32) -> u32 {
        let mut out = crc;
        for (k, table) in self.tables.iter().enumerate() {
            let b = (n >> (8 * k)) & 0xff;
            if b != 0 {
                out = multiply(table[b as usize], out);
            }
        }
        out
    }
}

/// `a · b mod P` over GF(2), both bit-reversed.
fn multiply(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    for bit in (0..32).rev() {
        if a & (1 << bit) != 0 {
            product ^= b;
        }
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    product
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// The definition, one candidate at a time.
    fn naive(bytes: &[u8], from: usize) -> Option<u64> {
        (from..bytes.len().saturating_sub(7)).find_map(|a| {
            let len = u32::from_le_bytes(bytes[a..a + 4].try_into().unwrap()) as usize;
            let stored = u32::from_le_bytes(bytes[a + 4..a + 8].try_into().unwrap());
            let payload = bytes.get(a + 8..a + 8 + len)?;
            (len > 0 && crc32c::crc32c(payload) == stored).then_some(a as u64)
        })
    }

    #[test]
    fn shifting_a_crc_is_the_crates_combine() {
        let data: Vec<u8> = (0..5_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let shifts = Shifts::new();
        for split in [0, 1, 63, 64, 65, 1_000, 4_999] {
            let (a, b) = data.split_at(split);
            let (ca, cb) = (crc32c::crc32c(a), crc32c::crc32c(b));
            assert_eq!(
                shifts.shift(ca, b.len() as u32) ^ cb,
                crc32c::crc32c(&data),
                "split at {split}"
            );
            assert_eq!(
                crc32c::crc32c_combine(ca, cb, b.len()),
                crc32c::crc32c(&data)
            );
        }
    }

    #[test]
    fn finds_the_first_frame_after_garbage_and_none_in_a_cut_one() {
        let mut bytes = vec![0xab, 0, 0, 0, 1, 2, 3];
        let at = bytes.len() as u64;
        bytes.extend(frame(&[7; 300]));
        bytes.extend(frame(b"second"));
        assert_eq!(first_complete_frame(&bytes, 0), Some(at));
        assert_eq!(
            first_complete_frame(&bytes, at as usize + 1),
            Some(at + 308)
        );
        let cut = &bytes[..bytes.len() - 1];
        assert_eq!(first_complete_frame(cut, at as usize + 1), None);
        assert_eq!(first_complete_frame(&[0; 100], 0), None);
        assert_eq!(first_complete_frame(&bytes, bytes.len()), None);
    }

    proptest! {
        #[test]
        fn agrees_with_checking_every_candidate(
            mut bytes in prop::collection::vec(any::<u8>(), 0..400),
            frames in prop::collection::vec((any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..150)), 0..3),
            lens in prop::collection::vec((any::<prop::sample::Index>(), 1u32..400), 0..8),
            from in any::<prop::sample::Index>(),
        ) {
            // Real frames spliced in, and small lengths planted (most random u32 lengths fit nothing).
            for (at, payload) in frames {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, frame(&payload));
            }
            for (at, len) in lens {
                if bytes.len() >= 4 {
                    let at = at.index(bytes.len() - 3);
                    bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
                }
            }
            let from = from.index(bytes.len() + 1);
            prop_assert_eq!(first_complete_frame(&bytes, from), naive(&bytes, from));
        }
    }
}
