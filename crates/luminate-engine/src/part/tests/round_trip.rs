//! Random parts round-trip (rows, pages and block summaries, for every column choice); summary chunks
//! decode once and name their damage; parts written without summaries; when a part carries them.

use super::*;

/// Timestamps that stress the codec: extremes, negatives, duplicates, realistic epochs.
fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX),
        -1_000i64..1_000,
        1_700_000_000_000i64..1_700_000_100_000,
    ]
}

/// Values as arbitrary bit patterns plus the special ones: -0.0, subnormals, extremes, infinities.
/// Not NaN, which a part refuses (the write path admits finite values only).
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("a part holds no NaN", |v| !v.is_nan()),
        Just(-0.0),
        Just(f64::from_bits(1)),
        Just(f64::MIN_POSITIVE / 3.0),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        (0..100_000i64).prop_map(|x| x as f64 / 10.0),
    ]
}

fn series_set() -> impl Strategy<Value = Vec<Series>> {
    prop::collection::btree_map(
        any::<u32>(),
        prop::collection::vec((timestamp(), value()), 1..40),
        1..24,
    )
    .prop_map(|map| {
        map.into_iter()
            .map(|(id, mut points)| {
                points.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
                series(id, &points)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn part_round_trip_of_random_series(
        all in series_set(),
        page_rows in 1u32..64,
        sub_rows in prop_oneof![1u32..8, Just(1_024)],
        bounds in (timestamp(), timestamp()),
        pick in any::<u64>(),
        block_ms in prop_oneof![1i64..10, 10i64..100_000, Just(MAX_BLOCK_MS)],
        chunk_entries in 1usize..40,
        earlier in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.part");
        let blocks = (block_ms, chunk_entries);
        let meta = if earlier {
            // Format 3 stores every count and every sum its format 4 derives.
            write_format(&path, (page_rows, sub_rows), blocks, &all, FORMAT_V3).unwrap()
        } else {
            write_summarised(&path, (page_rows, sub_rows), block_ms, chunk_entries, &all).unwrap()
        };
        let rows: usize = all.iter().map(|s| s.timestamps.len()).sum();
        let all_ts = all.iter().flat_map(|s| s.timestamps.iter().copied());
        prop_assert_eq!(&meta, &PartMeta {
            tenant: Tenant::new("acme"),
            metric: "latency".to_owned(),
            day: 19_000,
            rows: rows as u64,
            series: all.len() as u32,
            pages: rows.div_ceil(page_rows as usize) as u32,
            min_t: all_ts.clone().min().unwrap(),
            max_t: all_ts.max().unwrap(),
        });
        let part = Part::open(&path).unwrap();
        prop_assert_eq!(part.meta(), &meta);
        let ids: Vec<SeriesId> = all.iter().map(|s| s.id).collect();
        prop_assert_eq!(part.series_ids(), &ids[..]);
        let counts: Vec<(SeriesId, u32)> =
            all.iter().map(|s| (s.id, s.timestamps.len() as u32)).collect();
        prop_assert_eq!(part.row_counts().collect::<Vec<_>>(), counts);
        let mut first = 0u32;
        for s in &all {
            let end = first + s.timestamps.len() as u32;
            prop_assert_eq!(part.series_rows(s.id), Some(first..end));
            first = end;
        }
        // `..` reads everything, including points at i64::MAX that no half-open range holds.
        let everything: Vec<OwnedRun> = all
            .iter()
            .map(|s| (s.id, s.timestamps.clone(), s.values.iter().map(|v| v.to_bits()).collect()))
            .collect();
        prop_assert_eq!(collect(part.scan(Selection::All, ..)).unwrap(), everything.clone());
        let (start, end) = (bounds.0.min(bounds.1), bounds.0.max(bounds.1));
        let wanted: Vec<SeriesId> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| pick >> (i % 64) & 1 == 1)
            .map(|(_, &id)| id)
            .chain([u32::MAX].into_iter().filter(|m| !ids.contains(m)))
            .collect();
        prop_assert_eq!(
            collect(part.scan(Selection::Only(&wanted), start..end)).unwrap(),
            expected(&all, Some(&wanted), start, end)
        );
        let ts_only: Vec<OwnedRun> = expected(&all, None, start, end)
            .into_iter()
            .map(|(id, ts, _)| (id, ts, Vec::new()))
            .collect();
        prop_assert_eq!(
            collect(part.scan(Selection::All, start..end).timestamps_only()).unwrap(),
            ts_only
        );
        let values_only: Vec<OwnedRun> = everything
            .iter()
            .filter(|(id, _, _)| wanted.contains(id))
            .map(|(id, _, values)| (*id, Vec::new(), values.clone()))
            .collect();
        prop_assert_eq!(
            collect(part.scan(Selection::Only(&wanted), ..).values_only()).unwrap(),
            values_only
        );
        // Every series' block summaries, with every column and with each alone.
        prop_assert_eq!(part.block_ms(), Some(block_ms));
        for columns in column_choices() {
            let mut summaries = part.summaries(columns).unwrap();
            let mut first_row = 0;
            for s in &all {
                let got = summaries.series(s.id).unwrap().map(|(row, e)| (row, e.to_vec()));
                prop_assert_eq!(
                    got.map(|(row, e)| (row, summary_bits(&e))),
                    Some((first_row, summary_bits(&expected_summaries(s, block_ms, columns))))
                );
                first_row += s.timestamps.len() as u32;
            }
        }
    }
}

/// Every column, and each value column alone.
fn column_choices() -> [SummaryColumns; 4] {
    let none = SummaryColumns {
        sum: false,
        min: false,
        max: false,
    };
    [
        SummaryColumns {
            sum: true,
            min: true,
            max: true,
        },
        SummaryColumns { sum: true, ..none },
        SummaryColumns { min: true, ..none },
        SummaryColumns { max: true, ..none },
    ]
}

/// Summaries as bits, so that signed zeros compare exactly; every NaN is one (which NaN an
/// operation on two returns is not specified).
fn summary_bits(entries: &[BlockSummary]) -> Vec<(i64, u32, u64, u64, u64)> {
    let bits = |v: f64| {
        if v.is_nan() {
            f64::NAN.to_bits()
        } else {
            v.to_bits()
        }
    };
    entries
        .iter()
        .map(|e| (e.block, e.count, bits(e.sum), bits(e.min), bits(e.max)))
        .collect()
}

/// What a reader decoding `columns` must return for `s`: per block of `block_ms` holding a row, the
/// count, `0.0` plus the values in row order, and the `f64::min`/`max` folds from the first value;
/// columns not decoded read `0.0`.
fn expected_summaries(s: &Series, block_ms: i64, columns: SummaryColumns) -> Vec<BlockSummary> {
    let mut out: Vec<BlockSummary> = Vec::new();
    for (&t, &v) in s.timestamps.iter().zip(&s.values) {
        let block = t.div_euclid(block_ms);
        match out.last_mut() {
            Some(e) if e.block == block => {
                e.count += 1;
                e.sum += v;
                e.min = e.min.min(v);
                e.max = e.max.max(v);
            }
            _ => out.push(BlockSummary {
                block,
                count: 1,
                sum: 0.0 + v,
                min: v,
                max: v,
            }),
        }
    }
    for e in &mut out {
        e.sum = if columns.sum { e.sum } else { 0.0 };
        e.min = if columns.min { e.min } else { 0.0 };
        e.max = if columns.max { e.max } else { 0.0 };
    }
    out
}

fn write_summarised(
    path: &Path,
    pages: (u32, u32),
    block_ms: i64,
    chunk_entries: usize,
    all: &[Series],
) -> Result<PartMeta, EngineError> {
    write_format(path, pages, (block_ms, chunk_entries), all, FORMAT_V4)
}

/// Writes `all` in format `version` (3 or 4) with pages and sub-pages of the given rows and
/// summaries of the given block width and chunk entries.
fn write_format(
    path: &Path,
    (page_rows, sub_rows): (u32, u32),
    (block_ms, chunk_entries): (i64, usize),
    all: &[Series],
    version: u32,
) -> Result<PartMeta, EngineError> {
    let mut writer = PartWriter::create(path, Tenant::new("acme"), "latency", 19_000)?
        .with_page_rows(page_rows)
        .with_subpage_rows(sub_rows)
        .with_summary_blocks(block_ms, chunk_entries);
    if version == FORMAT_V3 {
        writer = writer.format_v3()?;
    }
    for s in all {
        writer.push_series(s.id, &s.timestamps, &s.values)?;
    }
    writer.finish()
}

#[test]
fn part_summaries_of_many_series_decode_each_chunk_once_and_name_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    // 100 series of 100 points 10 s apart from 1 000 s: 18 blocks of 60 s each; chunks of about 50
    // entries.
    let all = hundred_by_hundred();
    write_summarised(&path, (64, 1_024), 60_000, 50, &all).unwrap();
    let part = Part::open(&path).unwrap();
    let every = column_choices()[0];
    let mut summaries = part.summaries(every).unwrap();
    for s in &all {
        let (_, entries) = summaries.series(s.id).unwrap().unwrap();
        assert_eq!(entries, expected_summaries(s, 60_000, every));
        assert_eq!(entries.iter().map(|e| e.count).sum::<u32>(), 100);
    }
    // Three series of 18 entries close a chunk: 34 chunks.
    assert_eq!(summaries.chunks_decoded(), 34);
    // Every third series: still one decode per chunk holding one of them.
    let mut summaries = part.summaries(every).unwrap();
    for s in all.iter().step_by(3) {
        assert!(summaries.series(s.id).unwrap().is_some());
    }
    assert_eq!(summaries.chunks_decoded(), 34);

    // A damaged chunk fails the read that needs it, naming its offset; the section still opens.
    let mut bytes = fs::read(&path).unwrap();
    let footer: [u8; FOOTER_LEN] = bytes[bytes.len() - FOOTER_LEN..].try_into().unwrap();
    let footer = Footer::decode(&path, bytes.len() as u64, &footer).unwrap();
    // The last chunk is written last, right before the section.
    let mut summaries = part.summaries(every).unwrap();
    let last = all.last().unwrap().id;
    let (_, entries) = summaries.series(last).unwrap().unwrap();
    assert_eq!(entries.len(), 18);
    drop(summaries);
    bytes[footer.section_offset as usize - 3] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    let part = Part::open(&path).unwrap();
    let mut summaries = part.summaries(every).unwrap();
    assert!(summaries.series(all[0].id).unwrap().is_some());
    let (at, offset, reason) = corruption_of(summaries.series(last));
    assert_eq!(at, path);
    assert!(offset < footer.section_offset, "{offset}");
    assert!(
        reason.starts_with("summary chunk 33 checksum mismatch"),
        "{reason}"
    );
}

#[test]
fn part_written_without_summaries_has_a_block_of_0_and_reads_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let all = hundred_by_hundred();
    let (with, without) = (
        dir.path().join("with.part"),
        dir.path().join("without.part"),
    );
    write(&with, 64, &all).unwrap();
    let mut writer = PartWriter::create(&without, Tenant::new("acme"), "latency", 19_000)
        .unwrap()
        .with_page_rows(64)
        .without_summaries();
    for s in &all {
        writer.push_series(s.id, &s.timestamps, &s.values).unwrap();
    }
    writer.finish().unwrap();
    let bytes = fs::read(&without).unwrap();
    assert_eq!(bytes[4..8], FORMAT_V4.to_le_bytes());
    let (with, without) = (Part::open(&with).unwrap(), Part::open(&without).unwrap());
    assert_eq!(with.block_ms(), Some(3_600_000));
    assert_eq!(without.block_ms(), None);
    let every = SummaryColumns {
        sum: true,
        min: true,
        max: true,
    };
    assert!(without.summaries(every).is_none());
    assert_eq!(
        collect(without.scan(Selection::All, i64::MIN..)).unwrap(),
        expected(&all, None, i64::MIN, i64::MAX)
    );
    assert!(fs::metadata(without.path()).unwrap().len() < fs::metadata(with.path()).unwrap().len());
}

#[test]
fn a_part_gets_the_narrowest_summary_blocks_that_hold_enough_rows_of_a_series() {
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    let width = |rows, series, min_t, max_t| summary_block_ms(rows, series, min_t, max_t, 4);
    // A scrape every 15 s: 40 rows per series in a 10-minute head, 5 760 in a day's part.
    assert_eq!(width(40 * 1_000, 1_000, 0, 600_000), Some(HOUR));
    assert_eq!(width(5_760 * 1_000, 1_000, 0, DAY - 1), Some(HOUR));
    // The benchmark's shape, 2 M series of 5 points: inside one epoch hour, hourly blocks; over an
    // hour that starts on a minute (two epoch hours, 2.5 rows per block), one block per series.
    assert_eq!(width(10_000_000, 2_000_000, 0, HOUR - 1), Some(HOUR));
    assert_eq!(
        width(10_000_000, 2_000_000, 60_000, HOUR + 59_999),
        Some(DAY)
    );
    // 30 rows per series over a day: about one row per hour, 30 per day.
    assert_eq!(width(30 * 1_000, 1_000, 0, DAY - 1), Some(DAY));
    // Fewer rows per series than the minimum, even in a day: none.
    assert_eq!(width(3 * 1_000, 1_000, 0, HOUR - 1), None);
    assert_eq!(width(2_000_000, 2_000_000, 0, DAY - 1), None);
    // 0 summarises everything hourly; empty inputs do not divide by zero.
    assert_eq!(summary_block_ms(1, 1_000, 0, DAY - 1, 0), Some(HOUR));
    assert_eq!(width(0, 0, 0, 0), None);
}

#[test]
fn distinct_series_counts_each_id_once() {
    assert_eq!(distinct_series([5, 1, 5, 64, 1, 0].into_iter(), 64), 4);
    assert_eq!(distinct_series(std::iter::empty(), 0), 0);
}

/// Series of one, two and three rows under day-wide blocks, one entry each, in chunks of 7:
/// [`Summaries::for_each_series`] gives each series of a span its entry (block numbers not read:
/// 0) for every choice of columns, decoding each chunk once; [`Summaries::series`] after it
/// decodes the chunk again and gives the block numbers.
#[test]
fn whole_series_summaries_of_one_block_each_skip_block_numbers_and_agree_with_series() {
    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.part");
    let all: Vec<Series> = (0..50u32)
        .map(|id| {
            let rows = i64::from(id % 3) + 1;
            let points: Vec<(i64, f64)> = (0..rows)
                .map(|i| {
                    (
                        5 * DAY + i * 1_000 + i64::from(id),
                        f64::from(id) * 0.5 - i as f64,
                    )
                })
                .collect();
            series(id * 3, &points)
        })
        .collect();
    write_summarised(&path, (64, 1_024), DAY, 7, &all).unwrap();
    let part = Part::open(&path).unwrap();
    for columns in column_choices() {
        let mut summaries = part.summaries(columns).unwrap();
        let mut seen = Vec::new();
        summaries
            .for_each_series(5..40, |id, entries| {
                seen.push((id, entries.to_vec()));
                Ok::<_, EngineError>(())
            })
            .unwrap();
        let want: Vec<(SeriesId, Vec<BlockSummary>)> = all[5..40]
            .iter()
            .map(|s| {
                let mut entries = expected_summaries(s, DAY, columns);
                entries.iter_mut().for_each(|e| e.block = 0);
                (s.id, entries)
            })
            .collect();
        assert_eq!(seen, want, "{columns:?}");
        // Chunks 0..=5 hold the series 5..40.
        assert_eq!(summaries.chunks_decoded(), 6);
        let (_, entries) = summaries.series(all[41].id).unwrap().unwrap();
        assert_eq!(entries, expected_summaries(&all[41], DAY, columns));
        assert_eq!(entries[0].block, 5);
    }
}
