//! search: where a prefix property stops holding, searched from a place known to be near it.

/// The first index of `known..len` where `holds` fails, knowing it holds below `known` and, from
/// there, for a prefix: probes from `known` on, each gap twice the one before, until one fails, then
/// searches between the last two probes. An answer `d` places past `known` costs about 2·log₂ d
/// probes, all near `known`, however long the sequence: a binary search over all of it costs
/// log₂ len, most of them far away and out of the cache.
pub(crate) fn gallop(known: usize, len: usize, holds: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut probe, mut gap) = (known, known, 1usize);
    while probe < len && holds(probe) {
        lo = probe + 1;
        probe = lo.saturating_add(gap);
        gap = gap.saturating_mul(2);
    }
    let mut hi = probe.min(len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if holds(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallop_finds_where_a_prefix_ends_from_any_known_place() {
        let values: Vec<i64> = (0..300).map(|i| i / 3).collect();
        for cut in [-1, 0, 1, 7, 50, 99, 100] {
            let want = values.partition_point(|&v| v < cut);
            for known in [0, want / 2, want] {
                assert_eq!(gallop(known, values.len(), |i| values[i] < cut), want);
            }
        }
        assert_eq!(gallop(0, 0, |_| true), 0);
    }
}
