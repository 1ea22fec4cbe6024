//! The ranking semantics of DESIGN.md §1 and §1.1, independent of transports and of
//! models: each recall source's Top-m by O(N) selection, their union R, the rerank key
//! (the rerank score, or its min–max fusion with the score model's), R by that key and the
//! rest after it by the score model. The service and `eval` both rank through [`rank`].

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

/// The recalled set R of DESIGN.md §1.1: the union of each source's Top-`m` by its own
/// scores, as ascending candidate indices without duplicates.
pub fn union(sources: &[(&[f64], usize)]) -> Vec<usize> {
    let mut recalled: Vec<usize> = sources
        .iter()
        .flat_map(|&(scores, m)| recall(scores, m))
        .collect();
    recalled.sort_unstable();
    recalled.dedup();
    recalled
}

/// The rerank key of each recalled candidate (DESIGN.md §1.1): `s` itself when
/// `alpha == 1`, else `alpha·ŝ + (1 − alpha)·d̂` with both scores min–max normalised over
/// R (`x̂ = (x − min) / (max − min)`, 0 when max = min). `s` is given per recalled
/// candidate, in `recalled`'s order.
pub fn rerank_keys(d: &[f64], recalled: &[usize], s: &[f64], alpha: f64) -> Vec<f64> {
    debug_assert_eq!(recalled.len(), s.len());
    if alpha == 1.0 {
        return s.to_vec();
    }
    let d_r: Vec<f64> = recalled.iter().map(|&i| d[i]).collect();
    let scale = |x: &[f64]| {
        let min = x.iter().copied().fold(f64::INFINITY, f64::min);
        let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        move |v: f64| {
            if max > min {
                (v - min) / (max - min)
            } else {
                0.0
            }
        }
    };
    let (s_hat, d_hat) = (scale(s), scale(&d_r));
    s.iter()
        .zip(&d_r)
        .map(|(&s, &d)| alpha * s_hat(s) + (1.0 - alpha) * d_hat(d))
        .collect()
}

/// One candidate of the final order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Its index in the request.
    pub index: usize,
    /// For a reranked candidate, its position in the recalled set (where its rerank score
    /// and key are); `None` for the rest.
    pub reranked: Option<usize>,
}

/// The final order, truncated to `k` items: first the `recalled` candidates by `keys`
/// (given per recalled candidate, in `recalled`'s order; ties: larger `d`, then lower
/// index), then every other candidate by Direct order.
pub fn order(d: &[f64], recalled: &[usize], keys: &[f64], k: usize) -> Vec<Placed> {
    debug_assert_eq!(recalled.len(), keys.len());
    let mut head: Vec<usize> = (0..recalled.len()).collect();
    head.sort_unstable_by(|&a, &b| {
        descending(keys[a], keys[b]).then_with(|| by_direct(d, recalled[a], recalled[b]))
    });
    let mut out: Vec<Placed> = head
        .into_iter()
        .take(k)
        .map(|r| Placed {
            index: recalled[r],
            reranked: Some(r),
        })
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
        out.extend(rest.into_iter().map(|index| Placed {
            index,
            reranked: None,
        }));
    }
    out
}

/// A profile's ranking of one list of candidates (DESIGN.md §1.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// R, ascending.
    pub recalled: Vec<usize>,
    /// The rerank model's score of each candidate of R, in `recalled`'s order.
    pub s: Vec<f64>,
    /// The rerank key of each candidate of R, in `recalled`'s order.
    pub keys: Vec<f64>,
    /// The first `k` of the final order.
    pub order: Vec<Placed>,
}

/// Ranks candidates by a profile, the one code path of the service and of `eval`: `d`
/// are the score model's scores, `sources` each recall source's scores and `m` (empty:
/// everything by `d`), `rerank` scores the recalled set (called only when it is not
/// empty), `alpha` weighs it in the key.
pub fn rank(
    d: &[f64],
    sources: &[(&[f64], usize)],
    alpha: f64,
    k: usize,
    rerank: impl FnOnce(&[usize]) -> Vec<f64>,
) -> Ranking {
    let recalled = union(sources);
    let s = if recalled.is_empty() {
        Vec::new()
    } else {
        rerank(&recalled)
    };
    let keys = rerank_keys(d, &recalled, &s, alpha);
    let order = order(d, &recalled, &keys, k);
    Ranking {
        recalled,
        s,
        keys,
        order,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Recall-rerank with one source, the score model itself, as `(index, stage2 score)`.
    fn rr(
        d: &[f64],
        m: usize,
        k: usize,
        stage2: impl FnOnce(&[usize]) -> Vec<f64>,
    ) -> Vec<(usize, Option<f64>)> {
        let ranking = rank(d, &[(d, m)], 1.0, k, stage2);
        ranking
            .order
            .iter()
            .map(|p| (p.index, p.reranked.map(|r| ranking.s[r])))
            .collect()
    }

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
        let ranked = rr(&d, 3, 3, |r| r.iter().map(|_| 1.0).collect());
        let ids: Vec<usize> = ranked.iter().map(|(i, _)| *i).collect();
        assert_eq!(ids, vec![0, 2, 1]);
    }

    #[test]
    fn the_rest_follows_by_direct_and_carries_no_stage2() {
        let d = [0.1, 0.4, 0.3, 0.2, 0.5];
        let ranked = rr(&d, 2, 5, |r| r.iter().map(|&i| -(i as f64)).collect());
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
            rr(&d, 2, 1, |r| r.iter().map(|&i| i as f64).collect()),
            vec![(4, Some(4.0))]
        );
    }

    #[test]
    fn empty_and_oversized_requests() {
        assert!(rr(&[], 5, 5, |_| Vec::new()).is_empty());
        assert_eq!(
            rr(&[1.0], 5, 10, |r| vec![2.0; r.len()]),
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
            let ranked = rr(&d, m, k, |r| r.iter().map(|&i| s_all[i]).collect());
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

    #[test]
    fn fusion_normalises_over_the_recalled_set() {
        // R = {0, 1, 2}; d̂ = (1, 0.5, 0), ŝ = (0, 1, 0.5).
        let d = [3.0, 2.0, 1.0, 0.0];
        let s = [10.0, 30.0, 20.0];
        let keys = rerank_keys(&d, &[0, 1, 2], &s, 0.5);
        assert_eq!(keys, vec![0.5, 0.75, 0.25]);
        assert_eq!(rerank_keys(&d, &[0, 1, 2], &s, 1.0), s.to_vec());
        // All equal over R: both normalised scores are 0.
        assert_eq!(
            rerank_keys(&[1.0, 1.0], &[0, 1], &[2.0, 2.0], 0.3),
            vec![0.0, 0.0]
        );
    }

    #[test]
    fn hybrid_union_and_no_recall() {
        let d = [0.9, 0.1, 0.5, 0.3];
        let p = [0.0, 0.8, 0.9, 0.1];
        let ranking = rank(&d, &[(&d, 1), (&p, 2)], 1.0, 4, |r| {
            r.iter().map(|&i| i as f64).collect()
        });
        assert_eq!(ranking.recalled, vec![0, 1, 2]);
        let ids: Vec<usize> = ranking.order.iter().map(|p| p.index).collect();
        assert_eq!(ids, vec![2, 1, 0, 3]);
        let called = std::cell::Cell::new(false);
        let direct_only = rank(&d, &[], 1.0, 2, |_| {
            called.set(true);
            Vec::new()
        });
        assert!(!called.get(), "no rerank without recall");
        assert!(direct_only.recalled.is_empty());
        assert_eq!(
            direct_only.order,
            vec![
                Placed {
                    index: 0,
                    reranked: None
                },
                Placed {
                    index: 2,
                    reranked: None
                }
            ]
        );
    }

    proptest! {
        #[test]
        fn profile_invariants(
            d in scores(),
            p in scores(),
            s_all in scores(),
            m1 in 1usize..70,
            m2 in 1usize..70,
            alpha in prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0],
        ) {
            let n = d.len();
            let col = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(0.0);
            let p: Vec<f64> = (0..n).map(|i| col(&p, i)).collect();
            let s_all: Vec<f64> = (0..n).map(|i| col(&s_all, i)).collect();
            let stage2 = |r: &[usize]| r.iter().map(|&i| s_all[i]).collect::<Vec<f64>>();
            let ranking = rank(&d, &[(&d, m1), (&p, m2)], alpha, n, stage2);

            // The union holds no duplicates, and contains each source's Top-m.
            let mut sorted = ranking.recalled.clone();
            sorted.dedup();
            prop_assert_eq!(&sorted, &ranking.recalled);
            for (scores, m) in [(&d, m1), (&p, m2)] {
                for i in recall(scores, m) { prop_assert!(ranking.recalled.contains(&i)); }
            }
            // M = |R| items are reranked, and they come first.
            let reranked = ranking.order.iter().take_while(|p| p.reranked.is_some()).count();
            prop_assert_eq!(reranked, ranking.recalled.len());
            prop_assert!(ranking.order[reranked..].iter().all(|p| p.reranked.is_none()));

            // alpha = 1 is recall-rerank by the rerank score.
            let plain = rank(&d, &[(&d, m1), (&p, m2)], 1.0, n, stage2);
            prop_assert_eq!(&plain.keys, &plain.s);

            // alpha = 0 with the score model as the only source is the score model's order.
            let direct_order = rank(&d, &[(&d, m1)], 0.0, n, stage2);
            let mut by_d: Vec<usize> = (0..n).collect();
            by_d.sort_by(|&a, &b| descending(d[a], d[b]).then(a.cmp(&b)));
            let ids: Vec<usize> = direct_order.order.iter().map(|p| p.index).collect();
            prop_assert_eq!(ids, by_d);
        }
    }
}
