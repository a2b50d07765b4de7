//! Prometheus remote write 1.0 (`prometheus.WriteRequest`) and 2.0 (`io.prometheus.write.v2.Request`)
//! bodies: the bounded snappy decode, the protobuf messages (1.0 read by [`scan`] straight from the
//! bytes, 2.0 declared by hand for prost, no protoc), and the mapping of time series to validated points
//! (docs/ingest.md). Owns no HTTP: the route
//! ([`crate::routes::remote_write`]) picks the version from the `Content-Type` and answers.
//!
//! The mapping: `__name__` is the metric name, the other labels are dimensions; other `__*` labels and
//! empty values are dropped; names and keys go through [`protocol_name`] (`:` → `_`). Stale markers,
//! other non-finite values, native histograms and exemplars are not stored: each is counted by its
//! [`DropReason`], never failing the batch. A sample that fails validation (a timestamp outside the
//! window, more than `max_dimensions` labels, ...) is rejected alone, with the JSON API's error code.

use std::borrow::Cow;

use luminate_model::batch::PointBatchBuilder;
use luminate_model::validate::{PointError, check_point, protocol_name};
use luminate_model::wire::{WireDimensions, WirePoint, WireScalar};
use luminate_model::{ErrorCode, PointBatch, ValidationRules};
use serde_json::json;

use crate::error::ApiError;
use crate::routes::write::recycle;

/// The `Content-Type` of remote write 1.0, and of every version once its `proto=` parameter is read.
pub const PROTOBUF: &str = "application/x-protobuf";
/// `proto=` of remote write 1.0 (also the meaning of no `proto=` at all).
pub const PROTO_V1: &str = "prometheus.WriteRequest";
/// `proto=` of remote write 2.0.
pub const PROTO_V2: &str = "io.prometheus.write.v2.Request";
/// A stale marker: the NaN Prometheus writes when a series disappears.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Remote write 1.0 messages (prometheus/prompb `types.proto`): only the sample, shared with 2.0 and
/// OTLP's mapping. The rest of 1.0 is read by [`scan`].
pub mod v1 {
    /// `prometheus.Sample` (the same fields in 2.0's `io.prometheus.write.v2.Sample`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// The value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Unix milliseconds.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

/// Remote write 1.0 read straight from the decompressed bytes, without prost.
pub mod scan;

/// Remote write 2.0 messages (prometheus/prompb `io/prometheus/write/v2/types.proto`).
pub mod v2 {
    /// `io.prometheus.write.v2.Request`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        /// Every string of the request; series name theirs by index.
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        /// The series.
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `io.prometheus.write.v2.TimeSeries`. Metadata (5) and created timestamp (6) are skipped.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Pairs of symbol indexes: name, value, name, value, ...
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// Float samples.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<super::v1::Sample>,
        /// Native histograms, only counted.
        #[prost(bytes = "vec", repeated, tag = "3")]
        pub histograms: Vec<Vec<u8>>,
        /// Exemplars, only counted.
        #[prost(bytes = "vec", repeated, tag = "4")]
        pub exemplars: Vec<Vec<u8>>,
    }
}

/// Why a sample, histogram or exemplar of a valid body was not stored without being invalid: the
/// `code` label of `luminate_write_errors_total`, beside the contract's codes for invalid samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A stale marker (`STALE_MARKER`): the series ended; nothing to store.
    StaleMarker,
    /// NaN or ±Inf that is not a stale marker (`NON_FINITE_VALUE`): Luminate stores finite values only.
    NonFinite,
    /// A native histogram (`NATIVE_HISTOGRAM`): not mapped to points.
    NativeHistogram,
    /// An exemplar (`EXEMPLAR`): not stored.
    Exemplar,
    /// An OTLP data point flagged "no recorded value" (`NO_RECORDED_VALUE`), or without a value.
    NoRecordedValue,
}

impl DropReason {
    /// Every reason, in the order of [`Drops`].
    pub const ALL: [DropReason; 5] = [
        Self::StaleMarker,
        Self::NonFinite,
        Self::NativeHistogram,
        Self::Exemplar,
        Self::NoRecordedValue,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StaleMarker => "STALE_MARKER",
            Self::NonFinite => "NON_FINITE_VALUE",
            Self::NativeHistogram => "NATIVE_HISTOGRAM",
            Self::Exemplar => "EXEMPLAR",
            Self::NoRecordedValue => "NO_RECORDED_VALUE",
        }
    }
}

/// Counts by [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops([u64; 5]);

impl Drops {
    fn add(&mut self, reason: DropReason, n: usize) {
        self.0[reason as usize] += n as u64;
    }

    /// How many were dropped for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason as usize]
    }

    /// How many in all.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// A sample that failed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The metric name as sent.
    pub metric: String,
    /// Why.
    pub error: PointError,
}

/// A decoded body: its valid samples in store batches of at most `max_batch` points each, and what was
/// not kept.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Valid points, split into batches for the store.
    pub batches: Vec<PointBatch>,
    /// Samples that failed validation.
    pub rejections: Vec<Rejection>,
    /// What was dropped without being invalid.
    pub drops: Drops,
}

impl Decoded {
    /// Number of valid points.
    pub fn points(&self) -> usize {
        self.batches.iter().map(PointBatch::len).sum()
    }
}

/// Which message a body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `prometheus.WriteRequest`.
    V1,
    /// `io.prometheus.write.v2.Request`.
    V2,
}

/// Decompresses a snappy block-format body, refusing one whose declared length exceeds `cap` before
/// anything is allocated (the header is five bytes; it may claim 4 GiB).
pub fn unsnappy_capped(compressed: &[u8], cap: usize) -> Result<Vec<u8>, ApiError> {
    let declared = snap::raw::decompress_len(compressed)
        .map_err(|e| ApiError::invalid_request(format!("invalid snappy body: {e}")))?;
    if declared > cap {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "decompressed request body of {declared} bytes exceeds the limit of {cap} bytes"
            ),
        )
        .with_details(json!({"max_request_size_bytes": cap})));
    }
    snap::raw::Decoder::new()
        .decompress_vec(compressed)
        .map_err(|e| ApiError::invalid_request(format!("invalid snappy body: {e}")))
}

/// Decodes a decompressed body of `version` and maps it to points (see the module doc). Only a body that
/// is not the message fails as a whole (`400`).
pub fn decode(
    version: Version,
    body: &[u8],
    now: i64,
    rules: &ValidationRules,
    max_batch: usize,
) -> Result<Decoded, ApiError> {
    use prost::Message;
    let malformed =
        |e: prost::DecodeError| ApiError::invalid_request(format!("malformed protobuf body: {e}"));
    let mut mapper = Mapper::new(now, rules, max_batch);
    match version {
        Version::V1 => {
            scan::write_request(body, |series| {
                mapper.series(series.labels.iter().copied(), &series.samples);
                mapper.drop(DropReason::NativeHistogram, series.histograms);
                mapper.drop(DropReason::Exemplar, series.exemplars);
            })
            .map_err(|e| ApiError::invalid_request(format!("malformed protobuf body: {e}")))?;
        }
        Version::V2 => {
            let request = v2::Request::decode(body).map_err(malformed)?;
            let symbol = |i: u32| {
                request
                    .symbols
                    .get(i as usize)
                    .map(String::as_str)
                    .ok_or_else(|| {
                        ApiError::invalid_request(format!(
                            "label reference {i} is outside the symbols table of {}",
                            request.symbols.len()
                        ))
                    })
            };
            for series in &request.timeseries {
                if series.labels_refs.len() % 2 != 0 {
                    return Err(ApiError::invalid_request(
                        "a series has an odd number of label references",
                    ));
                }
                let labels = series
                    .labels_refs
                    .chunks_exact(2)
                    .map(|pair| Ok((symbol(pair[0])?, symbol(pair[1])?)))
                    .collect::<Result<Vec<_>, ApiError>>()?;
                mapper.series(labels.into_iter(), &series.samples);
                mapper.drop(DropReason::NativeHistogram, series.histograms.len());
                mapper.drop(DropReason::Exemplar, series.exemplars.len());
            }
        }
    }
    Ok(mapper.finish())
}

/// Builds store batches of at most `max_batch` points from series (shared with OTLP, [`crate::otlp`]).
pub(crate) struct Mapper<'r> {
    now: i64,
    rules: &'r ValidationRules,
    max_batch: usize,
    /// The batch being filled: strings are copied into it (its body is empty).
    current: (String, PointBatchBuilder),
    decoded: Decoded,
    /// The dimensions of the series being mapped and their checked form: emptied between series and
    /// kept, so that a series costs no allocation.
    spare_dimensions: Vec<(Cow<'static, str>, WireScalar<'static>)>,
    spare_checked: Vec<(&'static str, &'static str)>,
}

/// An emptied vector with the same allocation, for borrows of another lifetime.
fn reuse<'b>(mut v: Vec<(Cow<'_, str>, WireScalar<'_>)>) -> Vec<(Cow<'b, str>, WireScalar<'b>)> {
    v.clear();
    // Collecting an empty `vec::IntoIter` into a vector of the same layout reuses its allocation.
    v.into_iter()
        .map(|_| (Cow::Borrowed(""), WireScalar::Missing))
        .collect()
}

impl<'r> Mapper<'r> {
    pub(crate) fn new(now: i64, rules: &'r ValidationRules, max_batch: usize) -> Self {
        Self {
            now,
            rules,
            max_batch: max_batch.max(1),
            current: Self::empty_builder(max_batch),
            decoded: Decoded::default(),
            spare_dimensions: Vec::new(),
            spare_checked: Vec::new(),
        }
    }

    fn empty_builder(capacity: usize) -> (String, PointBatchBuilder) {
        let body = String::new();
        let builder = PointBatchBuilder::new(&body, capacity.min(1024));
        (body, builder)
    }

    pub(crate) fn drop(&mut self, reason: DropReason, n: usize) {
        self.decoded.drops.add(reason, n);
    }

    /// How many samples so far were rejected or dropped (exemplars aside: their sample is stored).
    pub(crate) fn not_stored(&self) -> u64 {
        let drops = &self.decoded.drops;
        self.decoded.rejections.len() as u64 + drops.total() - drops.get(DropReason::Exemplar)
    }

    /// Rejects a sample that is invalid before validation (a malformed OTLP histogram, ...).
    pub(crate) fn reject(&mut self, metric: &str, error: PointError) {
        self.decoded.rejections.push(Rejection {
            metric: metric.to_owned(),
            error,
        });
    }

    /// Adds the samples of one series: `__name__` among `labels` is the metric name.
    pub(crate) fn series<'s>(
        &mut self,
        labels: impl Iterator<Item = (&'s str, &'s str)>,
        samples: &[v1::Sample],
    ) {
        let mut name: Cow<'s, str> = Cow::Borrowed("");
        let mut dimensions = reuse(std::mem::take(&mut self.spare_dimensions));
        for (key, value) in labels {
            if key == "__name__" {
                name = protocol_name(value);
            } else if !key.starts_with("__") && !value.is_empty() {
                dimensions.push((protocol_name(key), WireScalar::Str(Cow::Borrowed(value))));
            }
        }
        let mut wire = WirePoint {
            name: WireScalar::Str(name),
            timestamp: WireScalar::Missing,
            value: WireScalar::Missing,
            dimensions: WireDimensions::Pairs(dimensions),
        };
        let mut buffer = recycle(std::mem::take(&mut self.spare_checked));
        for sample in samples {
            if !sample.value.is_finite() {
                let reason = if sample.value.to_bits() == STALE_NAN_BITS {
                    DropReason::StaleMarker
                } else {
                    DropReason::NonFinite
                };
                self.drop(reason, 1);
                continue;
            }
            wire.timestamp = WireScalar::Int(sample.timestamp);
            wire.value = WireScalar::Float(sample.value);
            let mut dims = recycle(std::mem::take(&mut buffer));
            match check_point(&wire, self.now, self.rules, &mut dims) {
                Ok(point) => {
                    self.current.1.push(&point, &dims);
                    if self.current.1.len() >= self.max_batch {
                        self.seal();
                    }
                }
                Err(error) => self.decoded.rejections.push(Rejection {
                    metric: match &wire.name {
                        WireScalar::Str(s) => s.to_string(),
                        _ => String::new(),
                    },
                    error,
                }),
            }
            buffer = recycle(dims);
        }
        self.spare_checked = recycle(buffer);
        if let WireDimensions::Pairs(dimensions) = wire.dimensions {
            self.spare_dimensions = reuse(dimensions);
        }
    }

    /// Closes the batch being filled, if it has points.
    fn seal(&mut self) {
        if self.current.1.is_empty() {
            return;
        }
        let (body, builder) =
            std::mem::replace(&mut self.current, Self::empty_builder(self.max_batch));
        // The builder was made over `body`: finishing with it cannot fail.
        if let Ok(batch) = builder.finish(body) {
            self.decoded.batches.push(batch);
        }
    }

    pub(crate) fn finish(mut self) -> Decoded {
        self.seal();
        self.decoded
    }
}

/// Fixtures are encoded by [`wire`], a protobuf writer of a few lines that shares nothing with the prost
/// structs above: a field number or type declared wrong there shows here as a decoding difference.
#[cfg(test)]
pub(crate) mod wire {
    /// A varint.
    pub fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A field key.
    fn key(field: u32, wire_type: u8, out: &mut Vec<u8>) {
        varint(u64::from(field) << 3 | u64::from(wire_type), out);
    }

    /// A length-delimited field (string, bytes, message, packed).
    pub fn bytes(field: u32, data: &[u8], out: &mut Vec<u8>) {
        key(field, 2, out);
        varint(data.len() as u64, out);
        out.extend_from_slice(data);
    }

    /// A double field.
    pub fn double(field: u32, v: f64, out: &mut Vec<u8>) {
        key(field, 1, out);
        out.extend_from_slice(&v.to_le_bytes());
    }

    /// An int64 field (varint, two's complement).
    pub fn int64(field: u32, v: i64, out: &mut Vec<u8>) {
        key(field, 0, out);
        varint(v as u64, out);
    }

    /// `Sample{value=1, timestamp=2}`.
    pub fn sample(value: f64, timestamp: i64) -> Vec<u8> {
        let mut s = Vec::new();
        double(1, value, &mut s);
        int64(2, timestamp, &mut s);
        s
    }

    /// A 1.0 `TimeSeries` with `labels`, `samples`, and `histograms`/`exemplars` opaque messages.
    pub fn series_v1(
        labels: &[(&str, &str)],
        samples: &[(f64, i64)],
        exemplars: usize,
        histograms: usize,
    ) -> Vec<u8> {
        let mut ts = Vec::new();
        for (name, value) in labels {
            let mut label = Vec::new();
            bytes(1, name.as_bytes(), &mut label);
            bytes(2, value.as_bytes(), &mut label);
            bytes(1, &label, &mut ts);
        }
        for &(v, t) in samples {
            bytes(2, &sample(v, t), &mut ts);
        }
        for _ in 0..exemplars {
            let mut exemplar = Vec::new();
            double(2, 1.0, &mut exemplar);
            bytes(3, &exemplar, &mut ts);
        }
        for _ in 0..histograms {
            let mut histogram = Vec::new();
            varint(1 << 3, &mut histogram); // count_int = 1 (field 1, varint)
            varint(5, &mut histogram);
            bytes(4, &histogram, &mut ts);
        }
        ts
    }

    /// A 1.0 `WriteRequest` of `series`, with one metadata entry (field 3), as Prometheus sends.
    pub fn request_v1(series: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for ts in series {
            bytes(1, ts, &mut out);
        }
        let mut metadata = Vec::new();
        bytes(2, b"http_requests_total", &mut metadata);
        bytes(3, &metadata, &mut out);
        out
    }

    /// A 2.0 `TimeSeries`: packed `labels_refs` (1), samples (2), histograms (3) and exemplars (4).
    pub fn series_v2(refs: &[u32], samples: &[(f64, i64)], histograms: usize) -> Vec<u8> {
        let mut ts = Vec::new();
        let mut packed = Vec::new();
        for &r in refs {
            varint(u64::from(r), &mut packed);
        }
        bytes(1, &packed, &mut ts);
        for &(v, t) in samples {
            bytes(2, &sample(v, t), &mut ts);
        }
        for _ in 0..histograms {
            bytes(3, &[8, 5], &mut ts);
        }
        ts
    }

    /// A 2.0 `Request`: symbols (4), series (5).
    pub fn request_v2(symbols: &[&str], series: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for s in symbols {
            bytes(4, s.as_bytes(), &mut out);
        }
        for ts in series {
            bytes(5, ts, &mut out);
        }
        out
    }

    /// Snappy block format, compressed by the `snap` encoder (decoding is what the tests check).
    pub fn snappy(data: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(data)
            .expect("snappy encoding of a test body")
    }
}

#[cfg(test)]
mod tests {
    use luminate_model::Point;

    use super::wire::*;
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const STALE: f64 = f64::from_bits(STALE_NAN_BITS);

    fn points(decoded: &Decoded) -> Vec<Point> {
        decoded
            .batches
            .iter()
            .flat_map(PointBatch::to_points)
            .collect()
    }

    fn point(name: &str, t: i64, v: f64, dims: &[(&str, &str)]) -> Point {
        Point {
            name: name.into(),
            timestamp: t,
            value: v,
            dimensions: luminate_model::Dimensions::from_pairs(
                dims.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            ),
        }
    }

    fn decode_v1(body: &[u8], max_batch: usize) -> Decoded {
        decode(
            Version::V1,
            body,
            NOW,
            &ValidationRules::default(),
            max_batch,
        )
        .unwrap()
    }

    #[test]
    fn v1_labels_map_to_name_and_dimensions_and_special_labels_drop() {
        let body = request_v1(&[series_v1(
            &[
                ("__name__", "job:http_requests:rate5m"),
                ("customer_id", "c1"),
                ("empty", ""),
                ("__meta_x", "dropped"),
                ("le", "0.5"),
            ],
            &[(1.5, NOW - 1000), (2.5, NOW)],
            0,
            0,
        )]);
        let d = decode_v1(&body, 10);
        let dims = [("customer_id", "c1"), ("le", "0.5")];
        assert_eq!(
            points(&d),
            vec![
                point("job_http_requests_rate5m", NOW - 1000, 1.5, &dims),
                point("job_http_requests_rate5m", NOW, 2.5, &dims),
            ]
        );
        assert!(d.rejections.is_empty());
        assert_eq!(d.drops.total(), 0);
    }

    #[test]
    fn stale_markers_non_finite_values_histograms_and_exemplars_are_counted_not_stored() {
        let body = request_v1(&[
            series_v1(
                &[("__name__", "up")],
                &[
                    (1.0, NOW),
                    (STALE, NOW + 1),
                    (f64::NAN, NOW + 2),
                    (f64::INFINITY, NOW + 3),
                ],
                2,
                0,
            ),
            series_v1(&[("__name__", "latency")], &[], 0, 3),
        ]);
        let d = decode_v1(&body, 10);
        assert_eq!(points(&d), vec![point("up", NOW, 1.0, &[])]);
        assert_eq!(d.drops.get(DropReason::StaleMarker), 1);
        assert_eq!(d.drops.get(DropReason::NonFinite), 2);
        assert_eq!(d.drops.get(DropReason::Exemplar), 2);
        assert_eq!(d.drops.get(DropReason::NativeHistogram), 3);
    }

    #[test]
    fn invalid_samples_are_rejected_alone_with_the_contract_codes() {
        let too_many: Vec<(String, String)> = (0..21)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let mut labels: Vec<(&str, &str)> = vec![("__name__", "wide")];
        labels.extend(too_many.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let body = request_v1(&[
            series_v1(&[("__name__", "ok")], &[(1.0, NOW)], 0, 0),
            series_v1(&labels, &[(1.0, NOW)], 0, 0),
            series_v1(&[("__name__", "9bad")], &[(1.0, NOW)], 0, 0),
            series_v1(&[("__name__", "old")], &[(1.0, NOW - 8 * 86_400_000)], 0, 0),
            series_v1(&[("instance", "no name")], &[(1.0, NOW)], 0, 0),
        ]);
        let d = decode_v1(&body, 10);
        assert_eq!(points(&d), vec![point("ok", NOW, 1.0, &[])]);
        let codes: Vec<_> = d
            .rejections
            .iter()
            .map(|r| (r.metric.as_str(), r.error.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("wide", ErrorCode::DimensionLimitExceeded),
                ("9bad", ErrorCode::InvalidMetricName),
                ("old", ErrorCode::InvalidTimestamp),
                ("", ErrorCode::InvalidMetricName),
            ]
        );
    }

    #[test]
    fn large_bodies_split_into_store_batches_beyond_the_json_cap() {
        let samples: Vec<(f64, i64)> = (0..25).map(|i| (i as f64, NOW - i)).collect();
        let body = request_v1(&[series_v1(&[("__name__", "m")], &samples, 0, 0)]);
        let d = decode_v1(&body, 10);
        let sizes: Vec<usize> = d.batches.iter().map(PointBatch::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        assert_eq!(d.points(), 25);
        assert_eq!(points(&d)[24], point("m", NOW - 24, 24.0, &[]));
    }

    #[test]
    fn metadata_only_request_decodes_to_nothing() {
        let d = decode_v1(&request_v1(&[]), 10);
        assert_eq!(d.points(), 0);
        assert!(d.rejections.is_empty());
    }

    #[test]
    fn v2_resolves_labels_through_the_symbols_table() {
        let symbols = [
            "",
            "__name__",
            "http_requests_total",
            "customer_id",
            "c7",
            "__type__",
            "x",
        ];
        let body = request_v2(
            &symbols,
            &[series_v2(
                &[1, 2, 3, 4, 5, 6],
                &[(3.0, NOW), (STALE, NOW + 1)],
                1,
            )],
        );
        let d = decode(Version::V2, &body, NOW, &ValidationRules::default(), 10).unwrap();
        assert_eq!(
            points(&d),
            vec![point(
                "http_requests_total",
                NOW,
                3.0,
                &[("customer_id", "c7")]
            )]
        );
        assert_eq!(d.drops.get(DropReason::StaleMarker), 1);
        assert_eq!(d.drops.get(DropReason::NativeHistogram), 1);
        // A 2.0 body read as 1.0 is an empty message, not an error: why the version comes from headers.
        assert_eq!(decode_v1(&body, 10).points(), 0);
    }

    #[test]
    fn v2_reference_outside_the_symbols_is_invalid() {
        let body = request_v2(&["", "__name__"], &[series_v2(&[1, 9], &[(1.0, NOW)], 0)]);
        let err = decode(Version::V2, &body, NOW, &ValidationRules::default(), 10).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        let odd = request_v2(
            &["", "__name__", "m"],
            &[series_v2(&[1, 2, 1], &[(1.0, NOW)], 0)],
        );
        let err = decode(Version::V2, &odd, NOW, &ValidationRules::default(), 10).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn truncated_protobuf_is_invalid() {
        let body = request_v1(&[series_v1(&[("__name__", "m")], &[(1.0, NOW)], 0, 0)]);
        for cut in [1, body.len() / 2, body.len() - 1] {
            let err = decode(
                Version::V1,
                &body[..cut],
                NOW,
                &ValidationRules::default(),
                10,
            )
            .unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "cut at {cut}");
        }
    }

    #[test]
    fn snappy_bomb_is_refused_from_its_header() {
        // A five-byte header declaring 4 GiB - 1 of output, and nothing else.
        let mut bomb = Vec::new();
        varint(u64::from(u32::MAX), &mut bomb);
        let err = unsnappy_capped(&bomb, 1 << 20).unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);
        let fits = snappy(&[7u8; 1000]);
        assert_eq!(unsnappy_capped(&fits, 1000).unwrap(), vec![7u8; 1000]);
        assert_eq!(
            unsnappy_capped(&fits, 999).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
        assert_eq!(
            unsnappy_capped(b"\x05ab", 100).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    /// Decodes `compressed` as the route does, for both versions: an answer or a `400`/`413`, never a
    /// panic, and never more points than the body has bytes.
    fn decode_untrusted(compressed: &[u8]) {
        for version in [Version::V1, Version::V2] {
            match unsnappy_capped(compressed, 1 << 20)
                .and_then(|body| decode(version, &body, NOW, &ValidationRules::default(), 7))
            {
                Ok(d) => {
                    assert!(d.points() <= compressed.len() * 64);
                    assert!(d.batches.iter().all(|b| !b.is_empty() && b.len() <= 7));
                }
                Err(e) => assert!(
                    matches!(
                        e.code,
                        ErrorCode::InvalidRequest | ErrorCode::PayloadTooLarge
                    ),
                    "{e:?}"
                ),
            }
        }
    }

    fn valid_body() -> Vec<u8> {
        let mut body = request_v1(&[
            series_v1(
                &[("__name__", "a:b"), ("customer_id", "c1"), ("__x", "y")],
                &[(1.0, NOW), (STALE, NOW + 1), (2.0, NOW + 2)],
                1,
                1,
            ),
            series_v1(&[("__name__", "m")], &[(3.0, NOW)], 0, 0),
        ]);
        body.extend(request_v2(
            &["", "__name__", "n", "k", "v"],
            &[series_v2(&[1, 2, 3, 4], &[(1.0, NOW)], 1)],
        ));
        body
    }

    /// Remote write 1.0 declared for prost, as the decoder read it before [`scan`]: the reference the
    /// scanner must agree with.
    mod prost_v1 {
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct WriteRequest {
            #[prost(message, repeated, tag = "1")]
            pub timeseries: Vec<TimeSeries>,
        }

        #[derive(Clone, PartialEq, prost::Message)]
        pub struct TimeSeries {
            #[prost(message, repeated, tag = "1")]
            pub labels: Vec<Label>,
            #[prost(message, repeated, tag = "2")]
            pub samples: Vec<super::v1::Sample>,
            #[prost(bytes = "vec", repeated, tag = "3")]
            pub exemplars: Vec<Vec<u8>>,
            #[prost(bytes = "vec", repeated, tag = "4")]
            pub histograms: Vec<Vec<u8>>,
        }

        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Label {
            #[prost(string, tag = "1")]
            pub name: String,
            #[prost(string, tag = "2")]
            pub value: String,
        }
    }

    /// A series as both decoders see it: labels, (value bits, timestamp), exemplars, histograms.
    type Seen = (Vec<(String, String)>, Vec<(u64, i64)>, usize, usize);

    fn via_prost(body: &[u8]) -> Option<Vec<Seen>> {
        let request = <prost_v1::WriteRequest as prost::Message>::decode(body).ok()?;
        Some(
            request
                .timeseries
                .into_iter()
                .map(|ts| {
                    (
                        ts.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                        ts.samples
                            .iter()
                            .map(|s| (s.value.to_bits(), s.timestamp))
                            .collect(),
                        ts.exemplars.len(),
                        ts.histograms.len(),
                    )
                })
                .collect(),
        )
    }

    fn via_scan(body: &[u8]) -> Option<Vec<Seen>> {
        let mut seen = Vec::new();
        scan::write_request(body, |series| {
            seen.push((
                series
                    .labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                series
                    .samples
                    .iter()
                    .map(|s| (s.value.to_bits(), s.timestamp))
                    .collect(),
                series.exemplars,
                series.histograms,
            ));
        })
        .ok()?;
        Some(seen)
    }

    #[test]
    fn scanner_reads_what_prost_reads_on_every_shape_of_field() {
        let mut odd = Vec::new();
        // Unknown fields of each wire type at each level, a group, repeated singular fields (the last
        // wins), a negative timestamp, and a label without a value.
        let mut ts = series_v1(&[("__name__", "m"), ("k", "")], &[(1.5, -7)], 1, 1);
        varint(9 << 3, &mut ts); // field 9, varint
        varint(300, &mut ts);
        ts.extend([(10 << 3 | 5) as u8, 1, 2, 3, 4]); // field 10, fixed32
        ts.extend([(11 << 3 | 1) as u8, 1, 2, 3, 4, 5, 6, 7, 8]); // field 11, fixed64
        ts.extend([(12 << 3 | 3) as u8, 8, 1, (12 << 3 | 4) as u8]); // group 12 holding a varint
        let mut label = Vec::new();
        bytes(1, b"first", &mut label);
        bytes(1, b"job", &mut label);
        bytes(2, b"a", &mut label);
        bytes(5, b"unknown", &mut label);
        bytes(1, &label, &mut ts);
        let mut sample = super::wire::sample(2.0, 5);
        double(1, 3.0, &mut sample);
        bytes(2, &sample, &mut ts);
        bytes(1, &ts, &mut odd);
        bytes(3, b"metadata", &mut odd);
        let seen = via_scan(&odd).unwrap();
        assert_eq!(via_prost(&odd), Some(seen.clone()));
        assert_eq!(
            seen[0].0,
            vec![
                ("__name__".to_owned(), "m".to_owned()),
                ("k".to_owned(), String::new()),
                ("job".to_owned(), "a".to_owned())
            ]
        );
        assert_eq!(
            seen[0].1,
            vec![(1.5f64.to_bits(), -7), (3.0f64.to_bits(), 5)]
        );
        assert_eq!((seen[0].2, seen[0].3), (1, 1));

        // Refused by both: bad UTF-8, wrong wire type of a declared field, field 0, wire type 7, an
        // end group alone, a varint past 64 bits, a length past the end.
        let mut bad_utf8 = Vec::new();
        bytes(1, &series_v1(&[("k", "v")], &[], 0, 0), &mut bad_utf8);
        let at = bad_utf8.len() - 1;
        bad_utf8[at] = 0xff;
        for body in [
            bad_utf8,
            vec![1 << 3, 5],
            vec![0, 1],
            vec![(1 << 3 | 7) as u8],
            vec![(5 << 3 | 4) as u8],
            [&[5 << 3][..], &[0xff; 9], &[0x02]].concat(),
            vec![1 << 3 | 2, 9, 1],
        ] {
            assert_eq!(via_prost(&body), None, "{body:?}");
            assert_eq!(via_scan(&body), None, "{body:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes, as sent (mostly not snappy).
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            decode_untrusted(&bytes);
        }

        /// Arbitrary bytes compressed: every one reaches the protobuf decoder.
        #[test]
        fn random_protobuf_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            decode_untrusted(&snappy(&bytes));
        }

        /// A valid body with bytes overwritten, inserted or cut, before or after compression.
        #[test]
        fn mutated_bodies_never_panic(
            edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>(), 0u8..3), 1..8),
            after_compression in proptest::prelude::any::<bool>(),
        ) {
            let mut body = valid_body();
            if after_compression {
                body = snappy(&body);
            }
            for (at, byte, kind) in edits {
                let at = at % (body.len() + 1);
                match kind {
                    0 if at < body.len() => body[at] = byte,
                    1 => body.insert(at, byte),
                    _ => body.truncate(at),
                }
            }
            if !after_compression {
                body = snappy(&body);
            }
            decode_untrusted(&body);
        }

        /// The scanner and prost agree on arbitrary bytes: both refuse, or both read the same series.
        #[test]
        fn scanner_agrees_with_prost_on_random_bytes(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            proptest::prop_assert_eq!(via_scan(&body), via_prost(&body));
        }

        /// ... and on valid bodies with bytes overwritten, inserted or cut.
        #[test]
        fn scanner_agrees_with_prost_on_mutated_bodies(
            edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>(), 0u8..3), 1..6),
        ) {
            let mut body = valid_body();
            for (at, byte, kind) in edits {
                let at = at % (body.len() + 1);
                match kind {
                    0 if at < body.len() => body[at] = byte,
                    1 => body.insert(at, byte),
                    _ => body.truncate(at),
                }
            }
            proptest::prop_assert_eq!(via_scan(&body), via_prost(&body));
        }
    }
}
