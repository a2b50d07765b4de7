//! contain: damaged parts set aside while the engine runs — by the query that met the damage, or by
//! the compaction job that did — so that the engine goes on serving everything else. Holds the
//! sequence of locks and file operations (`crate::quarantine`'s module doc says why in that order);
//! the records and the quarantine directory are `crate::quarantine`'s.

use luminate_model::Tenant;

use crate::error::EngineError;
use crate::quarantine::{QuarantinedPart, remove_from_parts, set_aside};
use crate::shared::Shared;
use crate::stored::{self, LivePart, Stored};

/// Verifies every live part of (`tenant`, `metric`) and sets aside those that fail (module doc);
/// returns the records of the parts set aside now (none: the damage was not in a part, or another
/// query set it aside first).
pub(crate) fn damaged_parts(
    shared: &Shared,
    tenant: &Tenant,
    metric: &str,
) -> Result<Vec<QuarantinedPart>, EngineError> {
    // Verified outside every lock: reading a part needs none, and a metric's parts may be large.
    let snapshot = shared.read_stored();
    let damaged: Vec<(LivePart, EngineError)> = snapshot
        .parts
        .iter()
        .filter(|lp| lp.is_of(tenant, metric))
        .filter_map(|lp| lp.part.verify().err().map(|e| (lp.clone(), e)))
        .collect();
    drop(snapshot);
    if damaged.is_empty() {
        return Ok(Vec::new());
    }
    let data_dir = shared.data_dir();
    let catalog = shared.catalog();
    let current = shared.read_stored();
    let mut set: Vec<(LivePart, QuarantinedPart)> = Vec::new();
    for (lp, error) in damaged {
        if !current.parts.iter().any(|p| p.file == lp.file) {
            continue;
        }
        let series = lp.part.series_ids().len() as u64;
        let record = QuarantinedPart::new(&lp.entry(), Some(series), error.to_string());
        set_aside(data_dir, &record)?;
        set.push((lp, record));
    }
    if set.is_empty() {
        return Ok(Vec::new());
    }
    let next = Stored {
        frozen: current.frozen.clone(),
        parts: current
            .parts
            .iter()
            .filter(|p| !set.iter().any(|(lp, _)| lp.file == p.file))
            .cloned()
            .collect(),
    };
    shared.write_manifest(catalog.wal_start, catalog.next_part, &next)?;
    {
        let (mut index, _head) = shared.write_both();
        // A series may stop counting: the writer's lookups made before this must be redone, as after
        // a delete (`crate::commit::Found`).
        shared.count_delete(&index);
        if let Some(ti) = index.existing_tenant_mut(tenant) {
            for (lp, record) in &set {
                match stored::visible_rows(lp) {
                    Ok(rows) => {
                        for (id, n) in rows {
                            ti.add_points(id, -(n as i64));
                        }
                    }
                    Err(e) => tracing::warn!(
                        file = %record.file, error = %e,
                        "the rows a quarantined part hid under its tombstone cannot be read: its \
                         series' point counts are left as they were until the next start"
                    ),
                }
            }
        }
        // Swapped before the index lock is released: a query sees the counts and the parts agree.
        shared.set_stored(&catalog, next);
    }
    drop(catalog);
    let mut records = Vec::with_capacity(set.len());
    for (_, record) in set {
        remove_from_parts(data_dir, &record.file)?;
        tracing::error!(
            file = %record.file, reason = %record.reason, held = %record.held(),
            "a damaged part was moved to quarantine: queries answer without it, flagged partial"
        );
        shared.add_quarantined(record.clone());
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use luminate_model::query::QueryKind;
    use luminate_model::{Dimensions, Point, QueryContext, QueryPlan, QueryResult};

    use super::*;
    use crate::{Engine, EngineConfig};

    fn tenant() -> Tenant {
        Tenant::new("t")
    }

    /// Writes `n` points of metric `m` at `t0`, `t0 + 1`, … and flushes them into a part.
    fn write_part(engine: &Engine, t0: i64, n: usize) {
        let points = (0..n)
            .map(|i| Point {
                name: "m".into(),
                timestamp: t0 + i as i64,
                value: i as f64,
                dimensions: Dimensions::from_pairs([("k".to_owned(), "v".to_owned())]),
            })
            .collect();
        engine.write(&tenant(), points).unwrap();
        engine.flush().unwrap();
    }

    fn range() -> QueryPlan {
        QueryPlan {
            kind: QueryKind::Range,
            metric: "m".into(),
            start: 0,
            end: i64::MAX,
            filters: vec![],
            group_by: vec![],
            interval_ms: None,
            limit: 1000,
            timeout: Duration::from_secs(10),
        }
    }

    /// The timestamps a range query answers, and its warnings.
    fn answer(engine: &Engine) -> (Vec<i64>, Vec<String>) {
        let ctx = QueryContext::new(Duration::from_secs(10));
        let QueryResult::Range { results, .. } = engine.query(&tenant(), &range(), &ctx).unwrap()
        else {
            panic!("not a range answer");
        };
        (
            results.iter().map(|p| p.timestamp).collect(),
            ctx.warnings(),
        )
    }

    /// Flips the first byte of the part's first page (right after its 8-byte header).
    fn damage_first_page(dir: &Path, file: &str) {
        let path = dir.join("parts").join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8] ^= 0xff;
        // In place: the engine's open handle reads the damaged bytes.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
            .unwrap();
    }

    #[test]
    fn a_query_sets_a_damaged_part_aside_and_answers_from_the_rest_flagged_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        write_part(&engine, 1_000, 3);
        write_part(&engine, 2_000, 3);
        damage_first_page(dir.path(), "0000000002.part");

        let (timestamps, warnings) = answer(&engine);
        assert_eq!(timestamps, [1_000, 1_001, 1_002]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("part 0000000002.part quarantined (tenant t, metric m: 3 rows"),
            "{warnings:?}"
        );
        assert_eq!(engine.part_count(), 1);
        assert_eq!(engine.stats().quarantined_parts, 1);
        // The index no longer counts the part's points.
        let values = engine
            .dimension_values(&tenant(), "m", "k", "", 10)
            .unwrap();
        assert_eq!(values[0].points, 3);
        drop(engine);

        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let (timestamps, warnings) = answer(&engine);
        assert_eq!(timestamps, [1_000, 1_001, 1_002]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(engine.quarantined()[0].file, "0000000002.part");
    }

    #[test]
    fn compaction_sets_a_damaged_input_part_aside_and_merges_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig {
            compaction_min_parts: 100,
            ..EngineConfig::new(dir.path())
        })
        .unwrap();
        for p in 0..3 {
            write_part(&engine, 1_000 * (p + 1), 2);
        }
        damage_first_page(dir.path(), "0000000001.part");
        engine.settle().unwrap();
        assert_eq!(engine.part_count(), 1);
        assert_eq!(engine.quarantined()[0].file, "0000000001.part");
        let (timestamps, warnings) = answer(&engine);
        assert_eq!(timestamps, [2_000, 2_001, 3_000, 3_001]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }
}
