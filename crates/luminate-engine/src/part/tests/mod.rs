use std::fs;
use std::path::{Path, PathBuf};

use luminate_model::Tenant;
use proptest::prelude::*;

use super::section::Footer;
use super::summary::BlockSummary;
use super::*;
use crate::EngineError;
use crate::record::SeriesId;

/// One series as the writer takes it.
#[derive(Debug, Clone)]
struct Series {
    id: SeriesId,
    timestamps: Vec<i64>,
    values: Vec<f64>,
}

/// A run as owned data, values as bits so NaN payloads compare exactly.
type OwnedRun = (SeriesId, Vec<i64>, Vec<u64>);

fn series(id: SeriesId, points: &[(i64, f64)]) -> Series {
    Series {
        id,
        timestamps: points.iter().map(|p| p.0).collect(),
        values: points.iter().map(|p| p.1).collect(),
    }
}

fn write(path: &Path, page_rows: u32, all: &[Series]) -> Result<PartMeta, EngineError> {
    let mut writer =
        PartWriter::create(path, Tenant::new("acme"), "latency", 19_000)?.with_page_rows(page_rows);
    for s in all {
        writer.push_series(s.id, &s.timestamps, &s.values)?;
    }
    writer.finish()
}

fn collect(mut scan: SeriesScan<'_>) -> Result<Vec<OwnedRun>, EngineError> {
    let mut out = Vec::new();
    while let Some(run) = scan.next_run()? {
        out.push((
            run.series,
            run.timestamps.to_vec(),
            run.values.iter().map(|v| v.to_bits()).collect(),
        ));
    }
    Ok(out)
}

/// What a scan of `wanted` (all when `None`) over `[start, end)` must return.
fn expected(all: &[Series], wanted: Option<&[SeriesId]>, start: i64, end: i64) -> Vec<OwnedRun> {
    all.iter()
        .filter(|s| wanted.is_none_or(|w| w.contains(&s.id)))
        .filter_map(|s| {
            let (ts, vs): (Vec<i64>, Vec<u64>) = s
                .timestamps
                .iter()
                .zip(&s.values)
                .filter(|(t, _)| (start..end).contains(*t))
                .map(|(&t, v)| (t, v.to_bits()))
                .unzip();
            (!ts.is_empty()).then_some((s.id, ts, vs))
        })
        .collect()
}

fn corruption_of(result: Result<impl std::fmt::Debug, EngineError>) -> (PathBuf, u64, String) {
    match result {
        Err(EngineError::Corruption {
            path,
            offset,
            reason,
        }) => (path, offset, reason),
        other => panic!("expected Corruption, got {other:?}"),
    }
}

fn invalid_input_of(result: Result<impl std::fmt::Debug, EngineError>) -> String {
    match result {
        Err(EngineError::Io { op, source, .. })
            if op == "write part" && source.kind() == std::io::ErrorKind::InvalidInput =>
        {
            source.to_string()
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// 100 series of 100 points at 10 s intervals, values id + i/10.
fn hundred_by_hundred() -> Vec<Series> {
    (0..100u32)
        .map(|id| {
            let points: Vec<(i64, f64)> = (0..100)
                .map(|i| (1_000_000 + i * 10_000, f64::from(id) + i as f64 / 10.0))
                .collect();
            series(id * 3, &points)
        })
        .collect()
}

fn blob_of<T: pco::data_types::Number>(numbers: &[T], delta: Delta) -> Vec<u8> {
    let mut out = Vec::new();
    compress(numbers, &mut out, delta).unwrap();
    out
}

/// A format 3 page column of a few numbers, built by hand: the sub-page table (sub-pages of 1 024
/// rows: one here; where the chunk metadata ends; where the sub-page ends), then pco's wrapped
/// header, chunk metadata and one page.
fn paged_blob_of<T: pco::data_types::Number>(numbers: &[T], delta: Delta) -> Vec<u8> {
    let delta = match delta {
        Delta::Auto => pco::DeltaSpec::Auto,
        Delta::Consecutive => pco::DeltaSpec::TryConsecutive(1),
    };
    let config = pco::ChunkConfig::default()
        .with_delta_spec(delta)
        .with_paging_spec(pco::PagingSpec::Exact(vec![numbers.len()]));
    let file = pco::wrapped::FileCompressor::default();
    let mut pco = file.write_header(Vec::new()).unwrap();
    let mut chunk = file.chunk_compressor(numbers, &config).unwrap();
    pco = chunk.write_meta(pco).unwrap();
    let meta_end = pco.len();
    pco = chunk.write_page(0, pco).unwrap();
    let table = 16;
    let mut blob = Vec::new();
    for word in [1_024, 1, table + meta_end, table + pco.len()] {
        blob.extend_from_slice(&(word as u32).to_le_bytes());
    }
    blob.extend_from_slice(&pco);
    blob
}

/// The page blobs of the one-series part, as format `version` encodes them: paged from format 3,
/// pco's standalone encoding before.
fn one_series_blobs(version: u32) -> (Vec<u8>, Vec<u8>) {
    // Timestamps take first-order deltas; values let pco choose.
    let (ts, values) = ([1_000i64, 2_000], [1.5f64, 2.5]);
    if version >= FORMAT_V3 {
        (
            paged_blob_of(&ts, Delta::Consecutive),
            paged_blob_of(&values, Delta::Auto),
        )
    } else {
        (
            blob_of(&ts, Delta::Consecutive),
            blob_of(&values, Delta::Auto),
        )
    }
}

/// The bytes of a one-series part (series 7, points (1000, 1.5), (2000, 2.5)) up to the end of the
/// series directory, built by hand: the header of `version`, the page blobs, then the section as
/// format 1 has it. Returns the bytes and the section's offset.
fn hand_built_part_start(version: u32, extra_blobs: &[u8]) -> (Vec<u8>, usize, Vec<u8>) {
    // The page blobs back to back after the header; ids take first-order deltas, counts let pco
    // choose.
    let (ts_blob, values_blob) = one_series_blobs(version);
    let ids_blob = blob_of(&[7u32], Delta::Consecutive);
    let counts_blob = blob_of(&[2u32], Delta::Auto);
    let ts_at = HEADER_LEN;
    let values_at = ts_at + ts_blob.len();
    let section_at = values_at + values_blob.len() + extra_blobs.len();

    let mut file = Vec::new();
    file.extend_from_slice(b"LPRT");
    file.extend_from_slice(&version.to_le_bytes());
    file.extend_from_slice(&ts_blob);
    file.extend_from_slice(&values_blob);
    file.extend_from_slice(extra_blobs);
    let mut section = Vec::new();
    section.extend_from_slice(&[1, 0, 0, 0, b't', 1, 0, 0, 0, b'm']);
    section.extend_from_slice(&19_000i64.to_le_bytes()); // day
    section.extend_from_slice(&2u64.to_le_bytes()); // rows
    section.extend_from_slice(&1u32.to_le_bytes()); // series
    section.extend_from_slice(&1u32.to_le_bytes()); // pages
    section.extend_from_slice(&DEFAULT_PAGE_ROWS.to_le_bytes());
    section.extend_from_slice(&1_000i64.to_le_bytes()); // min_t
    section.extend_from_slice(&2_000i64.to_le_bytes()); // max_t
    section.extend_from_slice(&0u32.to_le_bytes()); // page 0: first row
    section.extend_from_slice(&2u32.to_le_bytes()); // rows
    section.extend_from_slice(&1_000i64.to_le_bytes());
    section.extend_from_slice(&2_000i64.to_le_bytes());
    section.extend_from_slice(&(ts_at as u64).to_le_bytes());
    section.extend_from_slice(&(ts_blob.len() as u32).to_le_bytes());
    section.extend_from_slice(&crc32c::crc32c(&ts_blob).to_le_bytes());
    section.extend_from_slice(&(values_at as u64).to_le_bytes());
    section.extend_from_slice(&(values_blob.len() as u32).to_le_bytes());
    section.extend_from_slice(&crc32c::crc32c(&values_blob).to_le_bytes());
    section.extend_from_slice(&(ids_blob.len() as u32).to_le_bytes());
    section.extend_from_slice(&ids_blob);
    section.extend_from_slice(&(counts_blob.len() as u32).to_le_bytes());
    section.extend_from_slice(&counts_blob);
    assert_eq!(
        section.len(),
        10 + 44 + PAGE_ENTRY_LEN + 8 + ids_blob.len() + counts_blob.len()
    );
    (file, section_at, section)
}

/// Appends the section and its footer.
fn finish_hand_built(file: &mut Vec<u8>, section_at: usize, section: &[u8]) {
    file.extend_from_slice(section);
    file.extend_from_slice(&(section_at as u64).to_le_bytes());
    file.extend_from_slice(&(section.len() as u64).to_le_bytes());
    file.extend_from_slice(&crc32c::crc32c(section).to_le_bytes());
    file.extend_from_slice(b"LPRT");
}

fn one_series_meta() -> PartMeta {
    PartMeta {
        tenant: Tenant::new("t"),
        metric: "m".to_owned(),
        day: 19_000,
        rows: 2,
        series: 1,
        pages: 1,
        min_t: 1_000,
        max_t: 2_000,
    }
}

fn assert_reads_the_one_series(part: &Part, path: &Path, version: u32) {
    assert_eq!(part.meta(), &one_series_meta());
    assert_eq!(part.path(), path);
    assert_eq!(part.series_ids(), [7]);
    assert_eq!(part.series_rows(7), Some(0..2));
    assert_eq!(part.series_rows(8), None);
    assert_eq!(part.page_count(), 1);
    let ts_len = one_series_blobs(version).0.len();
    assert_eq!(part.pages()[0].timestamps.offset, HEADER_LEN as u64);
    assert_eq!(part.pages()[0].values.offset, (HEADER_LEN + ts_len) as u64);
    assert_eq!(
        collect(part.scan(Selection::All, ..)).unwrap(),
        [(
            7,
            vec![1_000, 2_000],
            vec![1.5f64.to_bits(), 2.5f64.to_bits()]
        )]
    );
}

/// The whole one-series part in format `version` (2 to 4): the page blobs, one summary chunk after
/// them, six columns each `len u32 | pco blob` (entries per series, block numbers, counts, mins, and
/// for entries of 2 rows or more maxes and sums), then the section with the summary index. Format 4
/// leaves the counts of a chunk of one entry per series and the sums of 2-row entries empty.
fn one_series_part(version: u32) -> Vec<u8> {
    let mut chunk = Vec::new();
    let v4 = version >= FORMAT_V4;
    for column in [
        blob_of(&[1u32], Delta::Auto),
        blob_of(&[0i64], Delta::Auto),
        if v4 {
            Vec::new()
        } else {
            blob_of(&[2u32], Delta::Auto)
        },
        blob_of(&[1.5f64], Delta::Auto),
        blob_of(&[2.5f64], Delta::Auto),
        if v4 {
            Vec::new()
        } else {
            blob_of(&[4.0f64], Delta::Auto)
        },
    ] {
        chunk.extend_from_slice(&(column.len() as u32).to_le_bytes());
        chunk.extend_from_slice(&column);
    }
    let (mut want, section_at, mut section) = hand_built_part_start(version, &chunk);
    let chunk_at = section_at - chunk.len();
    section.extend_from_slice(&3_600_000i64.to_le_bytes()); // block width
    section.extend_from_slice(&1u32.to_le_bytes()); // chunks
    section.extend_from_slice(&0u32.to_le_bytes()); // chunk 0: first series
    section.extend_from_slice(&1u32.to_le_bytes()); // series
    section.extend_from_slice(&1u32.to_le_bytes()); // entries
    section.extend_from_slice(&(chunk_at as u64).to_le_bytes());
    section.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
    section.extend_from_slice(&crc32c::crc32c(&chunk).to_le_bytes());
    finish_hand_built(&mut want, section_at, &section);
    want
}

#[test]
fn part_layout_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    let meta = write_part(
        &path,
        Tenant::new("t"),
        "m",
        19_000,
        [(7u32, &[1_000i64, 2_000][..], &[1.5f64, 2.5][..])],
    )
    .unwrap();
    assert_eq!(meta, one_series_meta());
    assert_eq!(fs::read(&path).unwrap(), one_series_part(FORMAT_V4));
    assert_eq!(dir_names(dir.path()), ["p.part"]);
    assert_reads_the_one_series_with_summaries(&Part::open(&path).unwrap(), &path, FORMAT_V4);
}

#[test]
fn parts_of_formats_2_and_3_of_earlier_builds_open_and_read_with_summaries() {
    type Earlier = fn(PartWriter) -> Result<PartWriter, EngineError>;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.part");
    for (version, earlier) in [
        (FORMAT_V2, PartWriter::format_v2 as Earlier),
        (FORMAT_V3, PartWriter::format_v3),
    ] {
        let mut writer =
            earlier(PartWriter::create(&path, Tenant::new("t"), "m", 19_000).unwrap()).unwrap();
        writer.push_series(7, &[1_000, 2_000], &[1.5, 2.5]).unwrap();
        writer.finish().unwrap();
        assert_eq!(fs::read(&path).unwrap(), one_series_part(version));
        assert_reads_the_one_series_with_summaries(&Part::open(&path).unwrap(), &path, version);
    }
}

fn assert_reads_the_one_series_with_summaries(part: &Part, path: &Path, version: u32) {
    assert_reads_the_one_series(part, path, version);
    assert_eq!(part.block_ms(), Some(3_600_000));
    let every = SummaryColumns {
        sum: true,
        min: true,
        max: true,
    };
    let mut summaries = part.summaries(every).unwrap();
    assert_eq!(summaries.series(6).unwrap(), None);
    assert_eq!(
        summaries.series(7).unwrap(),
        Some((
            0,
            &[BlockSummary {
                block: 0,
                count: 2,
                sum: 4.0,
                min: 1.5,
                max: 2.5,
            }][..]
        ))
    );
}

#[test]
fn blob_offsets_whose_end_passes_u64_are_corruption_at_open() {
    // Found by the `part` fuzz target: `offset + len` overflowed (a panic with overflow checks; in a
    // release build the sum wrapped into range and the reader went on to read at the offset).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forged.part");
    // A summary chunk at u64::MAX - 1 of 4 bytes.
    let (mut bytes, section_at, mut section) = hand_built_part_start(2, &[]);
    section.extend_from_slice(&3_600_000i64.to_le_bytes());
    section.extend_from_slice(&1u32.to_le_bytes());
    for n in [0u32, 1, 1] {
        section.extend_from_slice(&n.to_le_bytes());
    }
    section.extend_from_slice(&(u64::MAX - 1).to_le_bytes());
    section.extend_from_slice(&4u32.to_le_bytes());
    section.extend_from_slice(&0u32.to_le_bytes());
    finish_hand_built(&mut bytes, section_at, &section);
    fs::write(&path, &bytes).unwrap();
    let (_, _, reason) = corruption_of(Part::open(&path));
    assert!(reason.starts_with("summary chunk 0 "), "{reason}");
    // A page whose timestamps blob starts at u64::MAX (its entry's offset is at byte 54 of the
    // section: meta, then first_row, rows, min_t and max_t).
    let (mut bytes, section_at, mut section) = hand_built_part_start(1, &[]);
    section[54 + 24..54 + 32].copy_from_slice(&u64::MAX.to_le_bytes());
    finish_hand_built(&mut bytes, section_at, &section);
    fs::write(&path, &bytes).unwrap();
    let (_, _, reason) = corruption_of(Part::open(&path));
    assert!(reason.contains("are not adjacent"), "{reason}");
}

#[test]
fn part_format_1_of_earlier_builds_opens_and_reads_without_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.part");
    let (mut bytes, section_at, section) = hand_built_part_start(1, &[]);
    finish_hand_built(&mut bytes, section_at, &section);
    fs::write(&path, &bytes).unwrap();
    let part = Part::open(&path).unwrap();
    assert_reads_the_one_series(&part, &path, FORMAT_V1);
    assert_eq!(part.block_ms(), None);
    let every = SummaryColumns {
        sum: true,
        min: true,
        max: true,
    };
    assert!(part.summaries(every).is_none());

    // The test writer of format 1 writes exactly those bytes.
    let written = dir.path().join("written.part");
    let mut writer = PartWriter::create(&written, Tenant::new("t"), "m", 19_000)
        .unwrap()
        .format_v1()
        .unwrap();
    writer.push_series(7, &[1_000, 2_000], &[1.5, 2.5]).unwrap();
    writer.finish().unwrap();
    assert_eq!(fs::read(&written).unwrap(), bytes);
}

#[test]
fn part_truncated_file_is_corruption_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    write(&path, 64, &hundred_by_hundred()).unwrap();
    let full = fs::read(&path).unwrap();
    let cut = dir.path().join("cut.part");
    for keep in [0, 7, 31, full.len() / 2, full.len() - 1] {
        fs::write(&cut, &full[..keep]).unwrap();
        let (at, offset, reason) = corruption_of(Part::open(&cut));
        assert_eq!(at, cut);
        if keep < HEADER_LEN + FOOTER_LEN {
            assert_eq!(
                (offset, reason),
                (
                    0,
                    format!("truncated part: {keep} bytes, a part has at least 32")
                )
            );
        } else {
            // What ends the file is not a footer.
            assert_eq!(offset, (keep - 4) as u64, "{reason}");
            assert!(reason.starts_with("bad footer magic"), "{reason}");
        }
    }
}

#[test]
fn part_flipped_byte_in_section_is_corruption_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    write(&path, 64, &hundred_by_hundred()).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let footer: [u8; FOOTER_LEN] = bytes[bytes.len() - FOOTER_LEN..].try_into().unwrap();
    let footer = Footer::decode(&path, bytes.len() as u64, &footer).unwrap();
    let section_at = footer.section_offset as usize;
    for flip in [section_at, section_at + 30, bytes.len() - FOOTER_LEN - 1] {
        bytes[flip] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let (at, offset, reason) = corruption_of(Part::open(&path));
        assert_eq!(
            (at.as_path(), offset),
            (path.as_path(), footer.section_offset)
        );
        assert!(reason.starts_with("section checksum mismatch"), "{reason}");
        bytes[flip] ^= 0x10;
    }
    // A footer pointing elsewhere is caught before the checksum.
    let len = bytes.len();
    bytes[len - FOOTER_LEN] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    let (_, offset, reason) = corruption_of(Part::open(&path));
    assert_eq!(offset, (len - FOOTER_LEN) as u64, "{reason}");
}

#[test]
fn part_unknown_version_or_magic_is_corruption_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    write(&path, 64, &hundred_by_hundred()).unwrap();
    let good = fs::read(&path).unwrap();
    let mut bytes = good.clone();
    bytes[4] = 5;
    fs::write(&path, &bytes).unwrap();
    assert_eq!(
        corruption_of(Part::open(&path)),
        (
            path.clone(),
            4,
            "unsupported part format version 5 (this build reads 1 to 4)".to_owned()
        )
    );
    let mut bytes = good;
    bytes[0] = b'X';
    fs::write(&path, &bytes).unwrap();
    let (_, offset, reason) = corruption_of(Part::open(&path));
    assert_eq!(offset, 0);
    assert!(reason.starts_with("bad magic"), "{reason}");
}

#[test]
fn part_flipped_byte_in_page_blob_is_corruption_at_decode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    let all = hundred_by_hundred();
    write(&path, 1_000, &all).unwrap();
    let page = Part::open(&path).unwrap().pages()[3];
    let good = fs::read(&path).unwrap();
    for (column, blob) in [("timestamps", page.timestamps), ("values", page.values)] {
        let mut bytes = good.clone();
        bytes[(blob.offset + u64::from(blob.len) / 2) as usize] ^= 0x04;
        fs::write(&path, &bytes).unwrap();
        // The section is intact: the part opens, and pages other than 3 read fine.
        let part = Part::open(&path).unwrap();
        let wanted = [0, 297];
        assert_eq!(
            collect(part.scan(Selection::Only(&wanted), ..)).unwrap(),
            expected(&all, Some(&wanted), i64::MIN, i64::MAX)
        );
        let (at, offset, reason) = corruption_of(collect(part.scan(Selection::All, ..)));
        assert_eq!((at, offset), (path.clone(), blob.offset));
        assert!(
            reason.starts_with(&format!("page 3 {column} checksum mismatch")),
            "{reason}"
        );
    }
    // Timestamps-only scans never read the values blob, so its damage goes unseen by them.
    let part = Part::open(&path).unwrap();
    let runs = collect(part.scan(Selection::All, ..).timestamps_only()).unwrap();
    assert_eq!(runs.len(), 100);
    assert!(runs.iter().all(|r| r.1.len() == 100 && r.2.is_empty()));
}

#[test]
fn part_without_series_is_rejected_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    let writer = PartWriter::create(&path, Tenant::new("acme"), "latency", 0).unwrap();
    assert_eq!(dir_names(dir.path()), ["p.part.tmp"]);
    let reason = invalid_input_of(writer.finish());
    assert_eq!(reason, "a part needs at least one series");
    assert!(dir_names(dir.path()).is_empty());
}

#[test]
fn part_writer_rejects_a_bad_series_whole_and_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    let mut writer = PartWriter::create(&path, Tenant::new("acme"), "latency", 0)
        .unwrap()
        .with_page_rows(2);
    writer.push_series(5, &[1, 2, 3], &[1.0, 2.0, 3.0]).unwrap();
    let rejections = [
        invalid_input_of(writer.push_series(5, &[1], &[1.0])),
        invalid_input_of(writer.push_series(4, &[1], &[1.0])),
        invalid_input_of(writer.push_series(6, &[], &[])),
        invalid_input_of(writer.push_series(6, &[1, 2], &[1.0])),
        invalid_input_of(writer.push_series(6, &[1, 3, 2], &[1.0, 2.0, 3.0])),
        invalid_input_of(writer.push_series(6, &[1, 2], &[1.0, f64::NAN])),
    ];
    assert_eq!(
        rejections,
        [
            "series 5 pushed after series 5; ids must ascend",
            "series 4 pushed after series 5; ids must ascend",
            "series 6 has 0 timestamps and 0 values; a series needs as many of each, at least one",
            "series 6 has 2 timestamps and 1 values; a series needs as many of each, at least one",
            "series 6 timestamps not sorted: 3 then 2 at index 2",
            "series 6 value at index 1 is NaN",
        ]
    );
    writer.push_series(6, &[4], &[4.0]).unwrap();
    let meta = writer.finish().unwrap();
    assert_eq!((meta.rows, meta.series, meta.pages), (4, 2, 2));
    let part = Part::open(&path).unwrap();
    assert_eq!(
        collect(part.scan(Selection::All, ..)).unwrap(),
        vec![
            (
                5,
                vec![1, 2, 3],
                vec![1f64.to_bits(), 2f64.to_bits(), 3f64.to_bits()]
            ),
            (6, vec![4], vec![4f64.to_bits()]),
        ]
    );
}

#[test]
fn part_writer_dropped_unfinished_keeps_the_old_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    let old = write(&path, 16, &hundred_by_hundred()).unwrap();
    let mut writer = PartWriter::create(&path, Tenant::new("acme"), "latency", 1).unwrap();
    writer.push_series(1, &[1], &[1.0]).unwrap();
    drop(writer);
    assert_eq!(dir_names(dir.path()), ["p.part"]);
    assert_eq!(Part::open(&path).unwrap().meta(), &old);
}

#[test]
fn part_series_spanning_many_pages_reads_as_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    let points: Vec<(i64, f64)> = (0..10_000i64)
        .map(|i| (i * 1_000, (i % 97) as f64))
        .collect();
    let all = [series(42, &points)];
    let meta = write(&path, 256, &all).unwrap();
    assert_eq!((meta.rows, meta.series, meta.pages), (10_000, 1, 40));
    let part = Part::open(&path).unwrap();
    assert_eq!(part.page_count(), 40);
    let last = part.pages()[39];
    assert_eq!(
        (last.first_row, last.rows, last.min_t, last.max_t),
        (9_984, 16, 9_984_000, 9_999_000)
    );
    assert_eq!(part.row_counts().collect::<Vec<_>>(), [(42, 10_000)]);

    let mut scan = part.scan(Selection::All, ..);
    assert_eq!(
        collect_counting(&mut scan),
        expected(&all, None, i64::MIN, i64::MAX)
    );
    assert_eq!(scan.pages_decoded(), 40);

    // Rows 3 000..3 100 lie in pages 11 and 12: only those are decoded.
    let mut scan = part.scan(Selection::Only(&[42]), 3_000_000..3_100_000);
    assert_eq!(
        collect_counting(&mut scan),
        expected(&all, None, 3_000_000, 3_100_000)
    );
    assert_eq!(scan.pages_decoded(), 2);

    // Within one page the run borrows the page; the answer is the same.
    let mut scan = part.scan(Selection::Only(&[42]), 3_000_000..3_010_000);
    assert_eq!(
        collect_counting(&mut scan),
        expected(&all, None, 3_000_000, 3_010_000)
    );
    assert_eq!(scan.pages_decoded(), 1);
}

#[test]
fn part_rows_visited_page_by_page_are_every_row_of_the_ids_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    // Series of 1 to 300 rows over pages of 128: many share a page, many span several.
    let all: Vec<Series> = (0..200u32)
        .map(|i| {
            let n = 1 + (i as i64 * 37) % 300;
            let points: Vec<(i64, f64)> = (0..n)
                .map(|j| (j * 10 + i as i64, (i as i64 * 1_000 + j) as f64))
                .collect();
            series(i * 2 + 1, &points)
        })
        .collect();
    write(&path, 128, &all).unwrap();
    let part = Part::open(&path).unwrap();
    let combinations = [(true, true), (true, false), (false, true)];
    for ids in [0..=u32::MAX, 1..=1, 50..=151, 398..=399, 1_000..=2_000] {
        for (timestamps, values) in combinations {
            let columns = PageColumns { timestamps, values };
            let mut got: Vec<OwnedRun> = Vec::new();
            let mut pages = 0;
            part.visit_rows::<EngineError>(
                ids.clone(),
                columns,
                || {
                    pages += 1;
                    Ok(())
                },
                |id, ts, vs| {
                    // A series spanning pages comes once per page, in order: join its pieces.
                    let bits = vs.iter().map(|x| x.to_bits());
                    match got.last_mut() {
                        Some((last, t, v)) if *last == id => {
                            t.extend_from_slice(ts);
                            v.extend(bits);
                        }
                        _ => got.push((id, ts.to_vec(), bits.collect())),
                    }
                    Ok(())
                },
            )
            .unwrap();
            let want: Vec<OwnedRun> = all
                .iter()
                .filter(|s| ids.contains(&s.id))
                .map(|s| {
                    let ts = if timestamps {
                        s.timestamps.clone()
                    } else {
                        Vec::new()
                    };
                    let vs = if values {
                        s.values.iter().map(|x| x.to_bits()).collect()
                    } else {
                        Vec::new()
                    };
                    (s.id, ts, vs)
                })
                .collect();
            assert_eq!(got, want, "ids {ids:?}, {columns:?}");
            assert_eq!(pages > 0, !want.is_empty(), "ids {ids:?}: {pages} pages");
        }
    }
}

/// `collect`, leaving the scan for its counters.
fn collect_counting(scan: &mut SeriesScan<'_>) -> Vec<OwnedRun> {
    let mut out = Vec::new();
    while let Some(run) = scan.next_run().unwrap() {
        out.push((
            run.series,
            run.timestamps.to_vec(),
            run.values.iter().map(|v| v.to_bits()).collect(),
        ));
    }
    out
}

#[test]
fn part_many_tiny_series_share_one_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    let all: Vec<Series> = (0..1_000u32)
        .map(|id| series(id * 2, &[(i64::from(id), f64::from(id) / 10.0)]))
        .collect();
    let meta = write(&path, DEFAULT_PAGE_ROWS, &all).unwrap();
    assert_eq!((meta.rows, meta.series, meta.pages), (1_000, 1_000, 1));
    let part = Part::open(&path).unwrap();
    assert_eq!(part.series_rows(1_998), Some(999..1_000));
    assert_eq!(part.series_rows(1_999), None);
    // Every 7th id, odd ids the part does not hold, and one past its last.
    let wanted: Vec<SeriesId> = (0..2_100u32)
        .filter(|id| id % 7 == 0 || id % 14 == 3)
        .collect();
    let mut scan = part.scan(Selection::Only(&wanted), ..);
    let runs = collect_counting(&mut scan);
    assert_eq!(runs, expected(&all, Some(&wanted), i64::MIN, i64::MAX));
    assert_eq!(runs.len(), 143);
    assert_eq!(scan.pages_decoded(), 1);
}

#[test]
fn part_scan_reads_only_pages_holding_wanted_rows_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    let all = hundred_by_hundred();
    write(&path, 100, &all).unwrap();
    let part = Part::open(&path).unwrap();
    let wanted = [3, 150, 297];
    let mut scan = part.scan(Selection::Only(&wanted), ..);
    assert_eq!(
        collect_counting(&mut scan),
        expected(&all, Some(&wanted), i64::MIN, i64::MAX)
    );
    assert_eq!(scan.pages_decoded(), 3);
    // No page overlaps a range after the data.
    let mut scan = part.scan(Selection::All, 2_000_000..3_000_000);
    assert_eq!(collect_counting(&mut scan), []);
    assert_eq!(scan.pages_decoded(), 0);
}

#[test]
fn part_time_range_reads_return_exactly_rows_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    let all = [
        series(1, &[(10, 1.0), (20, 2.0), (20, 3.0), (30, 4.0)]),
        series(2, &[(i64::MIN, -1.0), (i64::MAX, 1.0)]),
        series(3, &[(30, 5.0)]),
    ];
    write(&path, 3, &all).unwrap();
    let part = Part::open(&path).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let read = |start: i64, end: i64| collect(part.scan(Selection::All, start..end)).unwrap();
    assert_eq!(read(20, 30), [(1, vec![20, 20], bits(&[2.0, 3.0]))]);
    assert_eq!(
        read(20, 31),
        [
            (1, vec![20, 20, 30], bits(&[2.0, 3.0, 4.0])),
            (3, vec![30], bits(&[5.0]))
        ]
    );
    let mut scan = part.scan(Selection::Only(&[3]), 30..31);
    assert_eq!(
        scan.next_run().unwrap(),
        Some(Run {
            series: 3,
            timestamps: &[30],
            values: &[5.0]
        })
    );
    assert_eq!(scan.next_run().unwrap(), None);
    assert_eq!(read(30, 30), []);
    assert_eq!(read(40, 10), []);
    assert_eq!(
        read(i64::MIN, 11),
        [
            (1, vec![10], bits(&[1.0])),
            (2, vec![i64::MIN], bits(&[-1.0]))
        ]
    );
    assert_eq!(
        collect(part.scan(Selection::Only(&[2]), ..)).unwrap(),
        [(2, vec![i64::MIN, i64::MAX], bits(&[-1.0, 1.0]))]
    );
    assert_eq!(
        collect(part.scan(Selection::Only(&[2]), i64::MAX..=i64::MAX)).unwrap(),
        [(2, vec![i64::MAX], bits(&[1.0]))]
    );
}

#[test]
fn part_is_shared_across_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Part>();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    let all = hundred_by_hundred();
    write(&path, 128, &all).unwrap();
    let part = Part::open(&path).unwrap();
    let want = expected(&all, None, 1_200_000, 1_500_000);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let runs = collect(part.scan(Selection::All, 1_200_000..1_500_000)).unwrap();
                assert_eq!(runs, want);
            });
        }
    });
}

mod round_trip;
