//! The metrics reference: every metric this process registers, with its type, labels and help, as
//! recorded at registration ([`MetricDoc`]). docs/metrics.md holds its Markdown table between two
//! markers; a test regenerates the table and fails when the file differs, so the reference cannot drift
//! from the code (`LUMINATE_BLESS=1 cargo test -p luminate-server reference` rewrites it).

use prometheus_client::metrics::MetricType;

/// First line of the generated part of docs/metrics.md.
pub const BEGIN_MARKER: &str = "<!-- BEGIN GENERATED: cargo test -p luminate-server reference -->";
/// Last line of the generated part.
pub const END_MARKER: &str = "<!-- END GENERATED -->";

/// One metric of the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricDoc {
    /// The name as exposed (`luminate_` prefix; counters end in `_total`, histograms add `_bucket`,
    /// `_sum` and `_count` to it).
    pub name: String,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// Label names (histograms also have `le`).
    pub labels: &'static [&'static str],
    /// What it measures.
    pub help: &'static str,
}

impl MetricDoc {
    /// The entry of a metric registered as `name` under the `luminate_` prefix.
    pub fn new(
        name: &str,
        kind: MetricType,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        let (kind, suffix) = match kind {
            MetricType::Counter => ("counter", "_total"),
            MetricType::Gauge => ("gauge", ""),
            MetricType::Histogram => ("histogram", ""),
            MetricType::Info => ("info", "_info"),
            _ => ("unknown", ""),
        };
        Self {
            name: format!("{}_{name}{suffix}", super::PREFIX),
            kind,
            labels,
            help,
        }
    }
}

/// The reference's Markdown table, between the markers.
pub fn markdown(docs: &[MetricDoc]) -> String {
    let mut out =
        format!("{BEGIN_MARKER}\n| metric | type | labels | meaning |\n|---|---|---|---|\n");
    for doc in docs {
        let labels = if doc.labels.is_empty() {
            "—".to_owned()
        } else {
            doc.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            doc.name,
            doc.kind,
            labels,
            doc.help.replace('|', "\\|")
        ));
    }
    out.push_str(END_MARKER);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};
    use std::path::PathBuf;

    use super::*;
    use crate::telemetry::tests::exposition;
    use crate::telemetry::{Registry, Telemetry};

    fn reference_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/metrics.md")
    }

    /// docs/metrics.md's table is exactly what the registrations give.
    #[test]
    fn the_reference_in_docs_is_the_registered_metrics() {
        let docs = Telemetry::register(&mut Registry::default(), 10)
            .reference()
            .to_vec();
        let table = markdown(&docs);
        let path = reference_path();
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text
            .find(BEGIN_MARKER)
            .expect("docs/metrics.md has the begin marker");
        let end = text
            .find(END_MARKER)
            .expect("docs/metrics.md has the end marker")
            + END_MARKER.len();
        if std::env::var_os("LUMINATE_BLESS").is_some() {
            let updated = format!("{}{table}{}", &text[..start], &text[end..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        assert_eq!(
            &text[start..end],
            table,
            "docs/metrics.md is out of date: run LUMINATE_BLESS=1 cargo test -p luminate-server reference"
        );
    }

    /// Every metric in an exposition is in the reference with the same type, and the reference names no
    /// metric twice. (Families without samples yet are not exposed; the end-to-end test in
    /// crates/luminate/tests/metrics.rs checks the labels of a busy server's exposition.)
    #[test]
    fn the_exposition_and_the_reference_agree() {
        let mut registry = Registry::default();
        let telemetry = Telemetry::register(&mut registry, 10);
        let documented: HashMap<&str, &str> = telemetry
            .reference()
            .iter()
            .map(|d| (d.name.trim_end_matches("_total"), d.kind))
            .collect();
        assert_eq!(
            documented.len(),
            telemetry.reference().len(),
            "a name is registered twice"
        );
        let text = exposition(&registry);
        let exposed: BTreeSet<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        assert!(exposed.len() > 20, "{exposed:?}");
        for (name, kind) in exposed {
            assert_eq!(documented.get(name), Some(&kind), "{name}");
        }
    }
}
