//! The series table's lookup, id discipline and views; counters after writes and deletes are tested with
//! `apply`, discovery answers by the differential conformance test.

use luminate_model::{Dimensions, Tenant};

use super::*;

fn dims(pairs: &[(&str, &str)]) -> Dimensions {
    Dimensions::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

#[test]
fn series_lookup_finds_exactly_the_defined_series() {
    let mut t = TenantIndex::default();
    let defs = [
        ("m", dims(&[])),
        ("m", dims(&[("a", "1")])),
        ("m", dims(&[("a", "1"), ("b", "2")])),
        ("m", dims(&[("a", "12")])),
        ("n", dims(&[("a", "1")])),
        // Same strings, split differently: hashing with terminators keeps them apart.
        ("m", dims(&[("a1", "")])),
    ];
    for (id, (metric, d)) in defs.iter().enumerate() {
        t.insert_with_id(id as SeriesId, metric, d).unwrap();
    }
    for (id, (metric, d)) in defs.iter().enumerate() {
        assert_eq!(t.find(metric, d), Some(id as SeriesId), "{metric} {d:?}");
        let view = t.series(id as SeriesId);
        assert_eq!((view.metric(), view.dimensions()), (*metric, d.clone()));
    }
    assert_eq!(t.find("m", &dims(&[("b", "2")])), None);
    assert_eq!(t.find("m", &dims(&[("a", "2")])), None);
    assert_eq!(t.find("n", &dims(&[])), None);
    assert_eq!(t.find("unknown", &dims(&[("a", "1")])), None);
    // Strings shared by series are interned once.
    assert_eq!(t.strings().len(), 9);
}

#[test]
fn lookup_survives_table_growth() {
    let mut t = TenantIndex::default();
    let customer = |i: u32| dims(&[("customer", &format!("c{i}")), ("region", "eu")]);
    for i in 0..20_000u32 {
        t.insert_with_id(i, "m", &customer(i)).unwrap();
    }
    for i in (0..20_000u32).step_by(97) {
        assert_eq!(t.find("m", &customer(i)), Some(i));
    }
    let m = t.metric(t.metric_id("m").unwrap());
    assert_eq!(m.series.len(), 20_000);
    let (eu, region) = (
        t.strings().get("eu").unwrap(),
        t.strings().get("region").unwrap(),
    );
    let eu = &m.postings[m.posting_id(region, eu).unwrap() as usize];
    assert!(eu.series.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(eu.series.len(), 20_000);
}

#[test]
fn insert_with_id_requires_the_next_id_and_a_new_series() {
    let mut t = TenantIndex::default();
    let err = t.insert_with_id(1, "m", &dims(&[])).unwrap_err();
    assert!(err.contains("series 0 was expected"), "{err}");
    t.insert_with_id(0, "m", &dims(&[("k", "v")])).unwrap();
    let err = t.insert_with_id(1, "m", &dims(&[("k", "v")])).unwrap_err();
    assert!(err.contains("redefines"), "{err}");
    assert_eq!(t.series_count(), 1);
    t.insert_with_id(1, "m", &dims(&[("k", "w")])).unwrap();
    assert_eq!(t.series_count(), 2);
}

#[test]
fn definitions_iterate_in_id_order_for_persisting() {
    let mut index = Index::default();
    let t = index.tenant_mut(&Tenant::new("t"));
    t.insert_with_id(0, "b", &dims(&[("k", "2"), ("j", "1")]))
        .unwrap();
    t.insert_with_id(1, "a", &dims(&[])).unwrap();
    let defs: Vec<(SeriesId, String, Dimensions)> = (0..t.series_count() as SeriesId)
        .map(|id| {
            let s = t.series(id);
            (id, s.metric().to_owned(), s.dimensions())
        })
        .collect();
    // The same series as string ids, as the series log writes them.
    let (metric, pairs) = t.series_str_ids(0);
    let resolve = |id| t.strings().resolve(id).to_owned();
    assert_eq!(resolve(metric), "b");
    let pairs: Vec<(String, String)> = pairs.map(|(k, v)| (resolve(k), resolve(v))).collect();
    assert_eq!(
        pairs,
        vec![("j".into(), "1".into()), ("k".into(), "2".into())]
    );
    assert_eq!(
        defs,
        vec![
            (0, "b".to_owned(), dims(&[("j", "1"), ("k", "2")])),
            (1, "a".to_owned(), dims(&[])),
        ]
    );
    assert_eq!(index.tenants().count(), 1);
    // Not live until a point is counted.
    assert_eq!(index.live_tenants().count(), 0);
    assert!(index.metric_names(&Tenant::new("t")).is_empty());
    index.tenant_mut(&Tenant::new("t")).add_points(1, 1);
    index.tenant_mut(&Tenant::new("t")).add_points(0, 1);
    assert_eq!(index.metric_names(&Tenant::new("t")), vec!["a", "b"]);
}

#[test]
fn values_and_dimension_order_come_from_ids() {
    let mut t = TenantIndex::default();
    t.insert_with_id(0, "m", &dims(&[("a", "2")])).unwrap();
    t.insert_with_id(1, "m", &dims(&[("a", "10"), ("b", "x")]))
        .unwrap();
    t.insert_with_id(2, "m", &dims(&[("a", "10")])).unwrap();
    let a = t.strings().get("a").unwrap();
    let b = t.strings().get("b").unwrap();
    assert_eq!(t.value_of(1, a), t.strings().get("10"));
    assert_eq!(t.value_of(0, b), None);
    let mut ids = vec![0, 1, 2];
    ids.sort_by(|&x, &y| t.cmp_dims(x, y));
    // As `Dimensions` orders: [("a","10")] < [("a","10"),("b","x")] < [("a","2")].
    assert_eq!(ids, vec![2, 1, 0]);
    let mut by_dims: Vec<Dimensions> = (0..3).map(|i| t.series(i).dimensions()).collect();
    by_dims.sort();
    assert_eq!(
        by_dims,
        ids.iter()
            .map(|&i| t.series(i).dimensions())
            .collect::<Vec<_>>()
    );
}

/// A batch of one point per (metric, pairs), in order.
fn batch_of(points: &[(&str, Dimensions)]) -> luminate_model::PointBatch {
    luminate_model::PointBatch::from_points(points.iter().map(|(metric, d)| {
        luminate_model::Point {
            name: (*metric).to_owned(),
            timestamp: 1,
            value: 1.0,
            dimensions: d.clone(),
        }
    }))
}

#[test]
fn looking_up_a_run_answers_like_one_lookup_at_a_time_and_leaves_tag_matches_of_other_series_unresolved()
 {
    let mut t = TenantIndex::default();
    let customer = |i: u32| dims(&[("customer", &format!("c{i}")), ("region", "eu")]);
    // 100 series; the odd ones hold points (live), the even ones do not.
    for i in 0..100u32 {
        t.insert_with_id(i, "m", &customer(i)).unwrap();
        if i % 2 == 1 {
            t.add_points(i, 1);
        }
    }
    // More points than a run: live, dead, undefined, another metric, one pair fewer.
    let mut asked: Vec<(&str, Dimensions)> = (0..150u32).map(|i| ("m", customer(i))).collect();
    asked.push(("n", customer(1)));
    asked.push(("m", dims(&[("customer", "c1")])));
    let batch = batch_of(&asked);
    let points: Vec<_> = batch.iter().collect();
    let mut hashes: Vec<u64> = points.iter().map(|p| t.hash(p.name, p.pairs())).collect();
    let mut found = Vec::new();
    t.find_live_run(&hashes, &points, &mut found);
    let one_at_a_time: Vec<Option<SeriesId>> = points
        .iter()
        .map(|p| t.find_pairs(p.name, p.pairs()).filter(|&id| t.is_live(id)))
        .collect();
    assert_eq!(found, one_at_a_time);
    assert_eq!(found.iter().flatten().count(), 50);

    // A point whose hash carries the tag of another live series (as a series sharing its tag would):
    // the strings differ, so it is left unresolved for the writer thread, never given that series.
    hashes[3] = hashes[5];
    found.clear();
    t.find_live_run(&hashes, &points, &mut found);
    assert_eq!(found[3], None);
    assert_eq!(found[5], Some(5));
}

#[test]
fn a_series_defined_from_known_ids_equals_one_defined_from_its_strings() {
    let (mut by_ids, mut by_strings) = (TenantIndex::default(), TenantIndex::default());
    let first = dims(&[("customer", "c1"), ("region", "eu")]);
    let second = dims(&[("customer", "c2"), ("region", "eu")]);
    let again = dims(&[("customer", "c2"), ("region", "us")]);
    for t in [&mut by_ids, &mut by_strings] {
        t.insert_with_id(0, "m", &first).unwrap();
        t.insert_with_id(1, "m", &second).unwrap();
        t.insert_with_id(2, "m", &dims(&[("region", "us")]))
            .unwrap();
    }
    // Every name of `again` is in the index already: it is defined from ids alone.
    let batch = batch_of(&[("m", again.clone())]);
    let point = batch.get(0);
    let mut postings = Vec::new();
    let m = by_ids
        .known_names(point.name, point.pairs(), &mut postings)
        .unwrap();
    let hash = by_ids.hash(point.name, point.pairs());
    by_ids.insert_known(3, m, &postings, hash).unwrap();
    by_strings.insert_with_id(3, "m", &again).unwrap();
    for t in [&by_ids, &by_strings] {
        assert_eq!(t.find("m", &again), Some(3));
        assert_eq!(t.series(3).dimensions(), again);
        let mi = t.metric(m);
        assert_eq!(mi.series, vec![0, 1, 2, 3]);
        let posting = |k: &str, v: &str| {
            let (k, v) = (t.strings().get(k).unwrap(), t.strings().get(v).unwrap());
            mi.postings[mi.posting_id(k, v).unwrap() as usize]
                .series
                .clone()
        };
        assert_eq!(posting("customer", "c2"), vec![1, 3]);
        assert_eq!(posting("region", "us"), vec![2, 3]);
    }
    assert_eq!(by_ids.strings().len(), by_strings.strings().len());
    // A name the index has not seen: not known, so the writer thread interns it.
    let new = batch_of(&[("m", dims(&[("customer", "c9")]))]);
    let p = new.get(0);
    assert_eq!(by_ids.known_names(p.name, p.pairs(), &mut Vec::new()), None);
    // Only the next id may be defined.
    assert!(by_ids.insert_known(7, m, &postings, hash).is_err());
}

/// Discovery's top values where most values tie on their point count (1 to 3 points each): at every
/// limit around the ties, with and without a prefix, exactly the values of the reference order (points
/// descending, ties by value), values of series without points left out.
#[test]
fn top_values_at_the_limit_break_ties_by_value() {
    let tenant = Tenant::new("t");
    let mut index = Index::default();
    let t = index.tenant_mut(&tenant);
    let mut expected: Vec<(String, u64)> = Vec::new();
    for i in 0..500u32 {
        // Inserted out of value order, so that posting order and value order differ.
        let customer = format!("c{:03}", (i * 7) % 500);
        let points = u64::from(i % 3);
        let id = i as SeriesId;
        t.insert_with_id(id, "m", &dims(&[("customer", &customer), ("region", "eu")]))
            .unwrap();
        t.add_points(id, points as i64);
        if points > 0 {
            expected.push((customer, points));
        }
    }
    expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for prefix in ["", "c1", "c49", "x"] {
        let matching: Vec<(String, u64)> = expected
            .iter()
            .filter(|(v, _)| v.starts_with(prefix))
            .cloned()
            .collect();
        for limit in [0, 1, 2, 100, 166, 167, 168, 333, 334, 335, 1_000] {
            let actual: Vec<(String, u64)> = index
                .dimension_values(&tenant, "m", "customer", prefix, limit)
                .unwrap()
                .into_iter()
                .map(|v| (v.value, v.points))
                .collect();
            let want = &matching[..limit.min(matching.len())];
            assert_eq!(actual, want, "prefix {prefix:?}, limit {limit}");
        }
    }
    assert_eq!(
        index.dimension_values(&tenant, "m", "no_such_key", "", 10),
        Some(Vec::new())
    );
}
