//! Layout and round-trip tests of the WAL and series-log records.

use super::*;

fn dims(pairs: &[(&str, &str)]) -> Dimensions {
    Dimensions::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

#[test]
fn write_batch_layout_is_pinned() {
    let batch = WriteBatch {
        tenant: Tenant::new("t"),
        new_series: vec![SeriesDef {
            id: 7,
            metric: "m".into(),
            dims: dims(&[("k", "v")]),
        }],
        points: vec![SeriesPoint {
            series: 7,
            timestamp: -2,
            value: 1.5,
        }],
    };
    let bytes = batch.encode();
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[1u8][..],                                  // kind
        &[1, 0, 0, 0], b"t",                         // tenant
        &[1, 0, 0, 0],                               // one new series
        &[7, 0, 0, 0], &[1, 0, 0, 0], b"m",          // id 7, metric "m"
        &[1, 0], &[1, 0, 0, 0], b"k", &[1, 0, 0, 0], b"v",
        &[1, 0, 0, 0],                               // one point
        &[7, 0, 0, 0],
        &(-2i64).to_le_bytes(),
        &[0, 0, 0, 0, 0, 0, 0xf8, 0x3f],             // 1.5
    ]
    .concat();
    assert_eq!(bytes, expected);
    assert_eq!(Record::decode(&bytes), Ok(Record::Write(batch)));
}

#[test]
fn delete_layout_is_pinned() {
    let delete = DeleteBefore {
        tenant: Tenant::new("t"),
        metric: "mm".into(),
        before: 256,
    };
    let bytes = delete.encode();
    assert_eq!(
        bytes,
        [
            &[2u8, 1, 0, 0, 0][..],
            b"t",
            &[2, 0, 0, 0],
            b"mm",
            &[0, 1, 0, 0, 0, 0, 0, 0]
        ]
        .concat()
    );
    assert_eq!(Record::decode(&bytes), Ok(Record::DeleteBefore(delete)));
}

#[test]
fn series_defs_layout_is_pinned() {
    let defs = SeriesDefs {
        tenant: Tenant::new("t"),
        series: vec![SeriesDef {
            id: 2,
            metric: "m".into(),
            dims: dims(&[]),
        }],
    };
    let bytes = defs.encode();
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[3u8][..], &[1, 0, 0, 0], b"t", &[1, 0, 0, 0],
        &[2, 0, 0, 0], &[1, 0, 0, 0], b"m", &[0, 0],
    ]
    .concat();
    assert_eq!(bytes, expected);
    assert_eq!(Record::decode(&bytes), Ok(Record::Series(defs)));
}

/// A length-prefixed pco blob, as `SERIES_BATCH` writes each column.
fn blob(numbers: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    put_blob(&mut out, numbers).unwrap();
    assert_eq!(
        u32::from_le_bytes(out[..4].try_into().unwrap()) as usize,
        out.len() - 4
    );
    out
}

fn sample_batch() -> SeriesBatch {
    SeriesBatch {
        tenant: Tenant::new("t"),
        first_string: 3,
        strings: vec!["m".into(), "k".into()],
        first_series: 9,
        metrics: vec![3, 3, 0],
        pair_counts: vec![2, 0, 1],
        pairs: vec![(4, 1), (2, 5), (4, 0)],
    }
}

#[test]
fn series_batch_layout_is_pinned() {
    let batch = sample_batch();
    let bytes = batch.encode().unwrap();
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[4u8][..],                                   // kind
        &[1, 0, 0, 0], b"t",                          // tenant
        &[3, 0, 0, 0], &[2, 0, 0, 0],                 // strings 3 and 4:
        &[1, 0, 0, 0], b"m", &[1, 0, 0, 0], b"k",
        &[9, 0, 0, 0], &[3, 0, 0, 0],                 // series 9, 10, 11
        &blob(&[3, 3, 0]),                            // metrics
        &blob(&[2, 0, 1]),                            // pair counts
        &blob(&[4, 4]), &blob(&[1, 0]),               // first pairs of series 9 and 11
        &blob(&[2]), &blob(&[5]),                     // second pair of series 9
    ]
    .concat();
    assert_eq!(bytes, expected);
    let Ok(Record::SeriesBatch(back)) = Record::decode(&bytes) else {
        panic!("not a series batch")
    };
    assert_eq!(back, batch);
    // (id, metric, pairs) of each series.
    type Def = (SeriesId, u32, Vec<(u32, u32)>);
    let series: Vec<Def> = back
        .series()
        .map(|(id, m, p)| (id, m, p.to_vec()))
        .collect();
    assert_eq!(
        series,
        vec![
            (9, 3, vec![(4, 1), (2, 5)]),
            (10, 3, vec![]),
            (11, 0, vec![(4, 0)])
        ]
    );
}

#[test]
fn series_batches_of_many_series_round_trip() {
    let n = MAX_BATCH_SERIES as u32;
    let pair_counts: Vec<u32> = (0..n).map(|i| i % 5).collect();
    let pairs: Vec<(u32, u32)> = pair_counts
        .iter()
        .enumerate()
        .flat_map(|(i, &c)| {
            (0..c).map(move |j| (j, (i as u32).wrapping_mul(2_654_435_761) % 100_000))
        })
        .collect();
    let batch = SeriesBatch {
        tenant: Tenant::new("big"),
        first_string: 0,
        strings: vec![],
        first_series: 0,
        metrics: vec![7; n as usize],
        pair_counts,
        pairs,
    };
    let bytes = batch.encode().unwrap();
    assert!(
        bytes.len() < 4 * n as usize,
        "{} bytes for {n} series",
        bytes.len()
    );
    assert_eq!(Record::decode(&bytes), Ok(Record::SeriesBatch(batch)));
}

#[test]
fn damaged_series_batches_are_rejected() {
    let bytes = sample_batch().encode().unwrap();
    // Every cut of the record fails to decode, never panics.
    for len in 0..bytes.len() {
        assert!(Record::decode(&bytes[..len]).is_err(), "cut at {len}");
    }
    // Series count past the bound (the count sits after kind, tenant and the strings).
    let count_at = 1 + 5 + 8 + 5 + 5 + 4;
    let mut big = bytes.clone();
    big[count_at..count_at + 4].copy_from_slice(&(MAX_BATCH_SERIES as u32 + 1).to_le_bytes());
    let err = Record::decode(&big).unwrap_err();
    assert!(err.reason.contains("series in one batch"), "{}", err.reason);
    // A column holding fewer numbers than the batch has series.
    let mut short = bytes[..count_at].to_vec();
    short.extend_from_slice(&3u32.to_le_bytes());
    short.extend_from_slice(&blob(&[3, 3]));
    let err = Record::decode(&short).unwrap_err();
    assert!(err.reason.contains("expected 3"), "{}", err.reason);
}

#[test]
fn damaged_payloads_name_the_offset() {
    assert_eq!(
        Record::decode(&[9]).unwrap_err().reason,
        "unknown record kind 9"
    );
    let err = Record::decode(&[2, 5, 0, 0, 0, b'a']).unwrap_err();
    assert_eq!(err.offset, 5);
    let mut bytes = DeleteBefore {
        tenant: Tenant::new("t"),
        metric: "m".into(),
        before: 1,
    }
    .encode();
    bytes.push(0);
    assert_eq!(
        Record::decode(&bytes).unwrap_err(),
        DecodeError {
            offset: 19,
            reason: "1 trailing bytes".into()
        }
    );
    let err = Record::decode(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255]).unwrap_err();
    assert!(err.reason.contains("points need"), "{}", err.reason);
}

#[test]
fn values_round_trip_bit_exactly() {
    let points: Vec<SeriesPoint> = [0.0, -0.0, f64::MIN_POSITIVE, f64::MAX, -1e-300, 0.25]
        .iter()
        .enumerate()
        .map(|(i, &value)| SeriesPoint {
            series: i as u32,
            timestamp: i64::MIN + i as i64,
            value,
        })
        .collect();
    let batch = WriteBatch {
        tenant: Tenant::new("x"),
        new_series: vec![],
        points: points.clone(),
    };
    let Ok(Record::Write(back)) = Record::decode(&batch.encode()) else {
        panic!("not a write batch")
    };
    assert!(
        back.points
            .iter()
            .zip(&points)
            .all(|(a, b)| a.value.to_bits() == b.value.to_bits())
    );
}

fn key_entry(key: &str, at: i64, status: u16, body: &str) -> KeyEntry {
    KeyEntry {
        tenant: Tenant::new("t"),
        key: key.to_owned(),
        at,
        response: KeyedResponse {
            status,
            body: body.as_bytes().into(),
        },
    }
}

#[test]
fn keyed_write_layout_is_pinned() {
    let batch = WriteBatch {
        tenant: Tenant::new("t"),
        new_series: vec![],
        points: vec![SeriesPoint {
            series: 3,
            timestamp: 5,
            value: 1.5,
        }],
    };
    let key = key_entry("k1", 1_700_000_000_000, 207, "{}");
    let bytes = batch.encode_keyed(&key);
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[5u8][..],                                  // kind
        &[1, 0, 0, 0], b"t",                         // tenant
        &[2, 0, 0, 0], b"k1",                        // key
        &1_700_000_000_000i64.to_le_bytes(),         // at
        &207u16.to_le_bytes(),                       // status
        &[2, 0, 0, 0], b"{}",                        // body
        &[0, 0, 0, 0],                               // no new series
        &[1, 0, 0, 0],                               // one point
        &[3, 0, 0, 0], &5i64.to_le_bytes(),
        &[0, 0, 0, 0, 0, 0, 0xf8, 0x3f],             // 1.5
    ]
    .concat();
    assert_eq!(bytes, expected);
    // The batch part is a WRITE_BATCH's after its tenant: old and new records share the decoder.
    assert_eq!(&bytes[bytes.len() - 28..], &batch.encode()[6..]);
    assert_eq!(Record::decode(&bytes), Ok(Record::KeyedWrite(key, batch)));
}

#[test]
fn key_window_round_trips_every_byte_of_the_answers() {
    let mut other = key_entry("k2", -1, 200, "");
    other.tenant = Tenant::new("other");
    let binary: String = (0u8..128).map(char::from).collect();
    let keys = vec![key_entry("k1", 42, 400, &binary), other];
    let bytes = encode_key_window(&keys.iter().collect::<Vec<_>>());
    assert_eq!(bytes[0], 6);
    assert_eq!(&bytes[1..5], &[2, 0, 0, 0]);
    assert_eq!(
        bytes.len(),
        5 + keys.iter().map(KeyEntry::encoded_len).sum::<usize>()
    );
    assert_eq!(Record::decode(&bytes), Ok(Record::KeyWindow(keys)));
    assert_eq!(
        Record::decode(&encode_key_window(&[])),
        Ok(Record::KeyWindow(vec![]))
    );
}

#[test]
fn damaged_key_records_are_rejected_never_panic() {
    let batch = WriteBatch {
        tenant: Tenant::new("t"),
        new_series: vec![SeriesDef {
            id: 0,
            metric: "m".into(),
            dims: dims(&[("k", "v")]),
        }],
        points: vec![SeriesPoint {
            series: 0,
            timestamp: 1,
            value: 2.0,
        }],
    };
    let key = key_entry("k", 1, 200, "{\"accepted\":1}");
    for bytes in [batch.encode_keyed(&key), encode_key_window(&[&key, &key])] {
        for len in 0..bytes.len() {
            assert!(Record::decode(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Record::decode(&long).is_err());
    }
    // A body length past the payload names its offset.
    let mut bad = encode_key_window(&[&key]);
    let body_len_at = 1 + 4 + 5 + 5 + 8 + 2;
    bad[body_len_at..body_len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = Record::decode(&bad).unwrap_err();
    assert_eq!(err.offset, body_len_at + 4);
    assert!(
        err.reason.starts_with("body of 4294967295 bytes"),
        "{}",
        err.reason
    );
}

#[test]
fn a_small_series_batch_cannot_claim_billions_of_pairs() {
    // 65 536 series of 65 535 pairs each, in two pco columns of equal numbers: a record of about
    // a hundred bytes that asked the reader for 34 GB before the first pair column was read (an
    // abort at start-up, not an error naming the file).
    let n = MAX_BATCH_SERIES;
    let mut bytes = vec![SERIES_BATCH];
    put_str(&mut bytes, "t");
    bytes.extend_from_slice(&[0; 12]); // first string, no strings, first series
    put_len(&mut bytes, n);
    bytes.extend(blob(&vec![0; n]));
    bytes.extend(blob(&vec![MAX_PAIRS; n]));
    assert!(bytes.len() < 200, "{} bytes", bytes.len());
    let err = Record::decode(&bytes).unwrap_err();
    assert_eq!(
        err.reason,
        format!(
            "{} pairs in one batch, at most {MAX_BATCH_PAIRS}",
            n * MAX_PAIRS as usize
        )
    );
}
