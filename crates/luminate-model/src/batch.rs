//! [`PointBatch`]: the validated points of one write, with every string kept in one buffer — most of
//! them as ranges of the request body itself — so that decoding a batch of 10 000 points allocates a
//! handful of vectors instead of five strings and a vector per point.
//!
//! Owns the write body's text for as long as the batch lives; knows nothing of JSON (see
//! [`crate::wire`]) or of validation rules (see [`crate::validate`]).

use crate::point::{Dimensions, Point};
use crate::time::TimestampMs;
use crate::validate::CheckedPoint;

/// A string of the batch: a byte range of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

/// One point; its pairs are `pairs[previous point's pairs_end..pairs_end]`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    name: Span,
    timestamp: TimestampMs,
    value: f64,
    pairs_end: usize,
}

/// Validated points (see the module doc). Dimensions are sorted by key with unique keys, as
/// [`Dimensions`] keeps them.
#[derive(Debug, Clone, Default)]
pub struct PointBatch {
    /// The request body, then every string that was not a range of it (unescaped, or from a [`Point`]).
    text: String,
    entries: Vec<Entry>,
    pairs: Vec<(Span, Span)>,
}

/// One point of a [`PointBatch`], its strings borrowed from the batch.
#[derive(Debug, Clone, Copy)]
pub struct PointRef<'a> {
    /// Metric name.
    pub name: &'a str,
    /// Unix milliseconds.
    pub timestamp: TimestampMs,
    /// A finite value.
    pub value: f64,
    text: &'a str,
    pairs: &'a [(Span, Span)],
}

impl<'a> PointRef<'a> {
    /// The (key, value) pairs, sorted by key.
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + Clone + use<'a> {
        let text = self.text;
        self.pairs
            .iter()
            .map(move |(k, v)| (&text[k.start..k.end], &text[v.start..v.end]))
    }

    /// Number of dimensions.
    pub fn dimension_count(&self) -> usize {
        self.pairs.len()
    }

    /// The dimensions as an owned value.
    pub fn dimensions(&self) -> Dimensions {
        Dimensions::from_pairs(self.pairs().map(|(k, v)| (k.to_owned(), v.to_owned())))
    }

    /// The point as an owned value.
    pub fn to_point(&self) -> Point {
        Point {
            name: self.name.to_owned(),
            timestamp: self.timestamp,
            value: self.value,
            dimensions: self.dimensions(),
        }
    }
}

impl PointBatch {
    /// A batch of owned points (tests, and callers that already hold [`Point`]s).
    pub fn from_points(points: impl IntoIterator<Item = Point>) -> Self {
        let mut batch = Self::default();
        for p in points {
            let name = batch.push_text(&p.name);
            let pairs: Vec<(Span, Span)> = p
                .dimensions
                .pairs()
                .iter()
                .map(|(k, v)| (batch.push_text(k), batch.push_text(v)))
                .collect();
            batch.pairs.extend(pairs);
            batch.entries.push(Entry {
                name,
                timestamp: p.timestamp,
                value: p.value,
                pairs_end: batch.pairs.len(),
            });
        }
        batch
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the batch has no point.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Point `i` (`i < len()`).
    pub fn get(&self, i: usize) -> PointRef<'_> {
        let e = self.entries[i];
        let start = if i == 0 {
            0
        } else {
            self.entries[i - 1].pairs_end
        };
        PointRef {
            name: &self.text[e.name.start..e.name.end],
            timestamp: e.timestamp,
            value: e.value,
            text: &self.text,
            pairs: &self.pairs[start..e.pairs_end],
        }
    }

    /// The points in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = PointRef<'_>> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The points as owned values.
    pub fn to_points(&self) -> Vec<Point> {
        self.iter().map(|p| p.to_point()).collect()
    }

    /// Builds a batch over `body`: `fill` pushes points whose strings may be ranges of the body's text
    /// (those are not copied); `capacity` points are expected. An error from `fill` abandons the batch.
    pub fn over_body<R, E>(
        body: String,
        capacity: usize,
        fill: impl FnOnce(&str, &mut PointBatchBuilder) -> Result<R, E>,
    ) -> Result<(Self, R), E> {
        let mut builder = PointBatchBuilder::new(&body, capacity);
        let filled = fill(&body, &mut builder)?;
        Ok((builder.into_batch(body), filled))
    }

    fn push_text(&mut self, s: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(s);
        Span {
            start,
            end: self.text.len(),
        }
    }
}

/// Builds a [`PointBatch`] over a body's text while the body is being decoded: a string that lies
/// inside the body is recorded as its range, any other is copied.
#[derive(Debug)]
pub struct PointBatchBuilder {
    /// Address and length of the body's text: a string is a range of it when its address falls inside.
    body_start: usize,
    body_len: usize,
    /// Strings from outside the body; they follow the body in the finished text.
    extra: String,
    entries: Vec<Entry>,
    pairs: Vec<(Span, Span)>,
}

impl PointBatchBuilder {
    /// A builder for points decoded from `body`; `capacity` points are expected.
    pub fn new(body: &str, capacity: usize) -> Self {
        Self {
            body_start: body.as_ptr() as usize,
            body_len: body.len(),
            extra: String::new(),
            entries: Vec::with_capacity(capacity),
            pairs: Vec::with_capacity(capacity * 4),
        }
    }

    /// Adds a validated point; `dims` are sorted by key with unique keys.
    pub fn push(&mut self, point: &CheckedPoint<'_>, dims: &[(&str, &str)]) {
        let name = self.span(point.name);
        for &(k, v) in dims {
            let pair = (self.span(k), self.span(v));
            self.pairs.push(pair);
        }
        self.entries.push(Entry {
            name,
            timestamp: point.timestamp,
            value: point.value,
            pairs_end: self.pairs.len(),
        });
    }

    /// Number of points pushed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True before the first point.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The batch, owning `body`, which must be the text given to [`PointBatchBuilder::new`] (checked:
    /// another text fails with the builder back, since its ranges would name other bytes).
    pub fn finish(self, body: String) -> Result<PointBatch, Self> {
        if body.as_ptr() as usize != self.body_start || body.len() != self.body_len {
            return Err(self);
        }
        Ok(self.into_batch(body))
    }

    /// The batch over `body`, known to be the builder's text.
    fn into_batch(self, mut body: String) -> PointBatch {
        body.push_str(&self.extra);
        PointBatch {
            text: body,
            entries: self.entries,
            pairs: self.pairs,
        }
    }

    fn span(&mut self, s: &str) -> Span {
        let at = (s.as_ptr() as usize).wrapping_sub(self.body_start);
        if at <= self.body_len && s.len() <= self.body_len - at {
            return Span {
                start: at,
                end: at + s.len(),
            };
        }
        let start = self.body_len + self.extra.len();
        self.extra.push_str(s);
        Span {
            start,
            end: start + s.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str, dims: &[(&str, &str)]) -> Point {
        Point {
            name: name.to_owned(),
            timestamp: 7,
            value: 1.5,
            dimensions: Dimensions::from_pairs(
                dims.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            ),
        }
    }

    #[test]
    fn points_round_trip_through_a_batch() {
        let points = vec![
            point("a", &[("z", "1"), ("k", "v")]),
            point("b", &[]),
            point("a", &[("k", "é")]),
        ];
        let batch = PointBatch::from_points(points.clone());
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.to_points(), points);
        assert_eq!(
            batch.get(0).pairs().collect::<Vec<_>>(),
            vec![("k", "v"), ("z", "1")]
        );
        assert_eq!(batch.get(1).dimension_count(), 0);
    }

    #[test]
    fn builder_borrows_body_ranges_and_copies_the_rest() {
        let body = String::from("name cust_1 k");
        let unescaped = String::from("cust_1");
        let mut b = PointBatchBuilder::new(&body, 1);
        let checked = CheckedPoint {
            name: &body[0..4],
            timestamp: 1,
            value: 2.0,
        };
        b.push(&checked, &[(&body[12..13], unescaped.as_str())]);
        b.push(&checked, &[(&body[12..13], &body[5..11])]);
        assert_eq!(b.extra, "cust_1", "only the string from outside is copied");
        let batch = b.finish(body).unwrap();
        assert_eq!(batch.get(0).name, "name");
        assert_eq!(batch.get(0).to_point(), batch.get(1).to_point());
        assert_eq!(
            batch.get(1).pairs().collect::<Vec<_>>(),
            vec![("k", "cust_1")]
        );
    }

    #[test]
    fn builder_refuses_another_body() {
        let body = String::from("abc");
        let b = PointBatchBuilder::new(&body, 0);
        assert!(b.finish(String::from("abc")).is_err());
    }
}
