//! RFC 2782 endpoint order: ascending priority, weighted random within a priority.

use crate::Endpoint;

/// Orders `endpoints` the way RFC 2782 orders SRV targets: by ascending priority, and
/// within one priority by repeated weighted draws without replacement, so that an
/// endpoint with weight `w` comes first with probability `w / Σw`.
///
/// Weight-0 entries follow the RFC: they are put at the front of the running sum and
/// the draw includes 0, so each has a small chance (1 in Σw+1) to be picked. When a
/// priority has no weight-0 entries the draw starts at 1, which removes the RFC's
/// off-by-one bias towards the first entry and makes the odds exactly proportional.
pub(crate) fn rfc2782_order(
    mut endpoints: Vec<Endpoint>,
    rng: &mut fastrand::Rng,
) -> Vec<Endpoint> {
    endpoints.sort_by_key(|e| e.priority);
    let mut ordered = Vec::with_capacity(endpoints.len());
    let mut rest = endpoints.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|e| e.priority == group[0].priority) {
            group.push(next);
        }
        order_group(group, rng, &mut ordered);
    }
    ordered
}

/// Weighted draws without replacement within one priority.
fn order_group(group: Vec<Endpoint>, rng: &mut fastrand::Rng, out: &mut Vec<Endpoint>) {
    // Weight-0 entries first (RFC 2782), in random order among themselves so that a
    // group of only weight-0 entries is a uniform shuffle.
    let (mut pool, weighted): (Vec<Endpoint>, Vec<Endpoint>) =
        group.into_iter().partition(|e| e.weight == 0);
    rng.shuffle(&mut pool);
    pool.extend(weighted);
    while !pool.is_empty() {
        let total: u64 = pool.iter().map(|e| u64::from(e.weight)).sum();
        let has_zero = pool.iter().any(|e| e.weight == 0);
        let draw = if has_zero {
            rng.u64(0..=total)
        } else {
            rng.u64(1..=total)
        };
        let mut running = 0u64;
        let mut pick = pool.len() - 1;
        for (i, e) in pool.iter().enumerate() {
            running += u64::from(e.weight);
            if running >= draw {
                pick = i;
                break;
            }
        }
        out.push(pool.remove(pick));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RouteSource;
    use std::collections::BTreeMap;

    fn ep(url: &str, priority: u16, weight: u16) -> Endpoint {
        Endpoint {
            url: url.into(),
            priority,
            weight,
            source: RouteSource::Dns,
        }
    }

    #[test]
    fn priorities_ascend_whatever_the_weights() {
        let mut rng = fastrand::Rng::with_seed(1);
        let input = vec![
            ep("c", 30, 100),
            ep("a1", 10, 1),
            ep("b", 20, 0),
            ep("a2", 10, 50),
            ep("a3", 10, 0),
        ];
        for _ in 0..200 {
            let out = rfc2782_order(input.clone(), &mut rng);
            let prios: Vec<u16> = out.iter().map(|e| e.priority).collect();
            assert_eq!(prios, [10, 10, 10, 20, 30]);
            assert_eq!(out.len(), input.len());
        }
    }

    /// Over many draws each endpoint of a priority comes first in proportion to its
    /// weight. Fixed seed, and bounds of about ±8 standard deviations: never flaky.
    #[test]
    fn first_pick_is_proportional_to_weight() {
        let mut rng = fastrand::Rng::with_seed(0x2782);
        let input = vec![
            ep("w1", 10, 1),
            ep("w3", 10, 3),
            ep("w6", 10, 6),
            ep("p20", 20, 90),
        ];
        let draws = 20_000u32;
        let mut firsts: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..draws {
            let out = rfc2782_order(input.clone(), &mut rng);
            *firsts.entry(out[0].url.clone()).or_default() += 1;
            assert_eq!(out[3].url, "p20");
        }
        for (url, share) in [("w1", 0.1), ("w3", 0.3), ("w6", 0.6)] {
            let got = f64::from(firsts.get(url).copied().unwrap_or(0)) / f64::from(draws);
            assert!(
                (got - share).abs() < 0.03,
                "{url}: {got} vs {share}: {firsts:?}"
            );
        }
        assert!(!firsts.contains_key("p20"));
    }

    #[test]
    fn weight_zero_gets_a_small_chance() {
        let mut rng = fastrand::Rng::with_seed(7);
        let input = vec![ep("zero", 10, 0), ep("nine", 10, 9)];
        let draws = 20_000u32;
        let zero_first = (0..draws)
            .filter(|_| rfc2782_order(input.clone(), &mut rng)[0].url == "zero")
            .count();
        // RFC 2782: a draw in 0..=9 picks "zero" only on 0, so 1 in 10.
        let share = zero_first as f64 / f64::from(draws);
        assert!((share - 0.1).abs() < 0.02, "{share}");
    }

    #[test]
    fn all_zero_weights_are_a_uniform_shuffle() {
        let mut rng = fastrand::Rng::with_seed(11);
        let input = vec![ep("a", 1, 0), ep("b", 1, 0), ep("c", 1, 0)];
        let mut firsts: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..9_000 {
            *firsts
                .entry(rfc2782_order(input.clone(), &mut rng)[0].url.clone())
                .or_default() += 1;
        }
        for n in firsts.values() {
            assert!((2_500..3_500).contains(n), "{firsts:?}");
        }
        assert_eq!(firsts.len(), 3);
    }
}
