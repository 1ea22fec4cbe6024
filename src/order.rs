//! The ranking semantics of DESIGN.md §1, independent of HTTP and of models: Top-M recall
//! by Direct score, rerank of those M by Stage2 score, the rest after them by Direct.

use std::cmp::Ordering;

/// Score order: larger first; NaN after every number; `-0.0` ties with `0.0`.
#[inline]
pub fn descending(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
    }
}

/// Direct order: larger `d` first, then lower input index.
#[inline]
fn by_direct(d: &[f64], a: usize, b: usize) -> Ordering {
    descending(d[a], d[b]).then(a.cmp(&b))
}

/// The indices of the `m` candidates with the largest Direct score (ties: lower index),
/// in no particular order. O(N) selection, not a sort.
pub fn recall(d: &[f64], m: usize) -> Vec<usize> {
    let m = m.min(d.len());
    let mut indices: Vec<usize> = (0..d.len()).collect();
    if m == 0 {
        return Vec::new();
    }
    if m < indices.len() {
        indices.select_nth_unstable_by(m - 1, |&a, &b| by_direct(d, a, b));
        indices.truncate(m);
    }
    indices
}

/// The final order, truncated to `k` items: first the `recalled` candidates ordered by
/// Stage2 score `s` (given per recalled candidate, in `recalled`'s order; ties: larger `d`,
/// then lower index), then every other candidate by Direct order.
///
/// Returns `(index, Some(stage2 score))` for reranked items and `(index, None)` for the rest.
pub fn order(d: &[f64], recalled: &[usize], s: &[f64], k: usize) -> Vec<(usize, Option<f64>)> {
    debug_assert_eq!(recalled.len(), s.len());
    let mut head: Vec<(usize, f64)> = recalled.iter().copied().zip(s.iter().copied()).collect();
    head.sort_unstable_by(|&(a, sa), &(b, sb)| descending(sa, sb).then_with(|| by_direct(d, a, b)));
    let mut out: Vec<(usize, Option<f64>)> = head
        .into_iter()
        .take(k)
        .map(|(i, s)| (i, Some(s)))
        .collect();

    let wanted = k.min(d.len()).saturating_sub(out.len());
    if wanted > 0 {
        let mut in_head = vec![false; d.len()];
        recalled.iter().for_each(|&i| in_head[i] = true);
        let mut rest: Vec<usize> = (0..d.len()).filter(|&i| !in_head[i]).collect();
        if wanted < rest.len() {
            rest.select_nth_unstable_by(wanted - 1, |&a, &b| by_direct(d, a, b));
            rest.truncate(wanted);
        }
        rest.sort_unstable_by(|&a, &b| by_direct(d, a, b));
        out.extend(rest.into_iter().map(|i| (i, None)));
    }
    out
}

/// The whole recall-rerank order of all candidates in one call, for offline use and tests:
/// `stage2` scores the recalled indices.
pub fn rank(
    d: &[f64],
    m: usize,
    k: usize,
    stage2: impl FnOnce(&[usize]) -> Vec<f64>,
) -> Vec<(usize, Option<f64>)> {
    let recalled = recall(d, m);
    let s = stage2(&recalled);
    order(d, &recalled, &s, k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ties_break_by_direct_then_index() {
        // Direct ties at 1.0 between 1 and 2: the lower index is recalled first.
        let d = [0.5, 1.0, 1.0, 0.2];
        let recalled = recall(&d, 2);
        let mut sorted = recalled.clone();
        sorted.sort();
        assert_eq!(sorted, vec![1, 2]);
        // Stage2 ties: larger d wins, then lower index.
        let d = [0.9, 0.8, 0.9];
        let ranked = rank(&d, 3, 3, |r| r.iter().map(|_| 1.0).collect());
        let ids: Vec<usize> = ranked.iter().map(|(i, _)| *i).collect();
        assert_eq!(ids, vec![0, 2, 1]);
    }

    #[test]
    fn the_rest_follows_by_direct_and_carries_no_stage2() {
        let d = [0.1, 0.4, 0.3, 0.2, 0.5];
        let ranked = rank(&d, 2, 5, |r| r.iter().map(|&i| -(i as f64)).collect());
        assert_eq!(
            ranked,
            vec![
                (1, Some(-1.0)),
                (4, Some(-4.0)),
                (2, None),
                (3, None),
                (0, None)
            ]
        );
        assert_eq!(
            rank(&d, 2, 1, |r| r.iter().map(|&i| i as f64).collect()),
            vec![(4, Some(4.0))]
        );
    }

    #[test]
    fn empty_and_oversized_requests() {
        assert!(rank(&[], 5, 5, |_| Vec::new()).is_empty());
        assert_eq!(
            rank(&[1.0], 5, 10, |r| vec![2.0; r.len()]),
            vec![(0, Some(2.0))]
        );
    }

    fn scores() -> impl Strategy<Value = Vec<f64>> {
        // Few distinct values, so ties are common.
        proptest::collection::vec((0u8..6).prop_map(f64::from), 0..60)
    }

    proptest! {
        #[test]
        fn ranking_invariants(d in scores(), s_all in scores(), m in 1usize..70, k in 1usize..70) {
            let n = d.len();
            let s_all: Vec<f64> = (0..n).map(|i| s_all.get(i).copied().unwrap_or(0.0)).collect();
            let ranked = rank(&d, m, k, |r| r.iter().map(|&i| s_all[i]).collect());
            let ids: Vec<usize> = ranked.iter().map(|(i, _)| *i).collect();

            // A prefix of a permutation of the input.
            prop_assert_eq!(ids.len(), k.min(n));
            let mut seen = vec![false; n];
            for &i in &ids { prop_assert!(!seen[i]); seen[i] = true; }

            // Its first min(M, k) items are exactly the Top-M by Direct.
            let m_used = m.min(n);
            let mut by_d: Vec<usize> = (0..n).collect();
            by_d.sort_by(|&a, &b| d[b].partial_cmp(&d[a]).expect("finite").then(a.cmp(&b)));
            let mut head: Vec<usize> = ids.iter().copied().take(m_used.min(k)).collect();
            head.sort();
            let mut top: Vec<usize> = by_d[..m_used].to_vec();
            top.sort();
            if k >= m_used { prop_assert_eq!(&head, &top); } else { prop_assert!(head.iter().all(|i| top.contains(i))); }

            // The reranked part is sorted by Stage2, carries Stage2 scores; the rest does not.
            for w in ranked.windows(2) {
                if let ((_, Some(a)), (_, Some(b))) = (w[0], w[1]) { prop_assert!(a >= b); }
            }
            for (pos, (i, s)) in ranked.iter().enumerate() {
                prop_assert_eq!(s.is_some(), pos < m_used);
                if let Some(s) = s { prop_assert_eq!(*s, s_all[*i]); }
            }
            // The rest is in Direct order.
            let rest: Vec<usize> = ids.iter().copied().skip(m_used).collect();
            let expected_rest: Vec<usize> = by_d.iter().copied().filter(|i| !top.contains(i)).take(rest.len()).collect();
            prop_assert_eq!(rest, expected_rest);
        }
    }
}
