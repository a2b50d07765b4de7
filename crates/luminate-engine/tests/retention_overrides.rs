//! Retention overrides are stored in the data directory and survive a restart; tenants with only an
//! override are listed among `tenants()`.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::time::Duration;

use common::{open, point};
use luminate_model::Tenant;
use luminate_model::store::RetentionOverride;

#[test]
fn retention_overrides_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Tenant::new("a"), Tenant::new("b"));
    let day = Duration::from_secs(86_400);
    let engine = open(dir.path());
    engine.set_retention(&a, "requests", 7 * day).unwrap();
    engine.set_retention(&a, "latency", day).unwrap();
    engine.set_retention(&a, "requests", 3 * day).unwrap(); // replaces
    engine.set_retention(&b, "latency", 30 * day).unwrap();
    engine
        .write(&Tenant::new("c"), vec![point("m", 1, 1.0, &[])])
        .unwrap();
    drop(engine);

    let engine = open(dir.path());
    let ov = |metric: &str, retention| RetentionOverride {
        metric: metric.to_owned(),
        retention,
    };
    assert_eq!(
        engine.retention_overrides(&a),
        vec![ov("latency", day), ov("requests", 3 * day)]
    );
    assert_eq!(
        engine.retention_overrides(&b),
        vec![ov("latency", 30 * day)]
    );
    assert_eq!(engine.retention_overrides(&Tenant::new("c")), vec![]);
    assert_eq!(engine.tenants(), vec![a, b, Tenant::new("c")]);
    // Nothing but the file itself is left behind by the atomic rewrite.
    assert!(!dir.path().join("retention.json.tmp").exists());
}
