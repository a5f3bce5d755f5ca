//! `distpos status`'s verdict on a node: producing, syncing or stalled, from what its
//! `/v1/status` says (head, LIB, schedule, block interval) and how old its head block
//! is, read once, or twice a moment apart when the head is old (to tell a node that
//! catches up from one that does not move). Pure: the samples carry their own times.

/// What the node does, as far as one can tell from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Health {
    /// Its head is recent and its LIB follows.
    Producing,
    /// Its head is old but moves faster than the chain produces: it catches up.
    Syncing,
    /// Its head does not move, or its LIB does not follow the head.
    Stalled,
}

impl Health {
    /// Its name in the output.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Health::Producing => "producing",
            Health::Syncing => "syncing",
            Health::Stalled => "stalled",
        }
    }
}

/// One look at the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Head height.
    pub(crate) head: u64,
    /// LIB height.
    pub(crate) lib: u64,
    /// Time of the head block (its slot).
    pub(crate) head_time_ms: u64,
    /// When the look was taken (this machine's clock).
    pub(crate) at_ms: u64,
}

impl Sample {
    /// Age of the head block when the sample was taken.
    pub(crate) fn head_age_ms(&self) -> u64 {
        self.at_ms.saturating_sub(self.head_time_ms)
    }
}

/// What the chain promises, from its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pace {
    /// Block interval.
    pub(crate) interval_ms: u64,
    /// Producers in the active schedule.
    pub(crate) producers: usize,
    /// Participation over the recent slots, in percent.
    pub(crate) participation: u32,
}

impl Pace {
    /// The LIB of a chain whose producers all sign trails its head by ⌊2n/3⌋ blocks
    /// (the (⌊2n/3⌋+1)-th highest height signed); a round with missed slots adds up
    /// to one more round. Beyond this, finality is not following.
    pub(crate) fn lib_lag_limit(&self) -> u64 {
        let n = self.producers.max(1) as u64;
        2 * n / 3 + n + 2
    }

    /// How old a head may be on a live chain: the slots of the producers it can lose
    /// and still finalize (n − ⌊2n/3⌋ − 1) in a row, plus three intervals, and at least
    /// two seconds (HTTP and clocks are not instant).
    pub(crate) fn fresh_limit_ms(&self) -> u64 {
        let n = self.producers.max(1) as u64;
        let tolerated = n - (2 * n / 3 + 1);
        (self.interval_ms.max(1) * (tolerated + 3)).max(2_000)
    }
}

/// The verdict and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The verdict.
    pub(crate) health: Health,
    /// One line saying why.
    pub(crate) why: String,
}

/// The verdict on `samples` (oldest first; at least one) of a chain with `pace`.
pub(crate) fn verdict(pace: &Pace, samples: &[Sample]) -> Verdict {
    use super::table::duration;
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Verdict {
            health: Health::Stalled,
            why: "no sample of the node".into(),
        };
    };
    let age = last.head_age_ms();
    let lag = last.head.saturating_sub(last.lib);
    if age <= pace.fresh_limit_ms() {
        if lag > pace.lib_lag_limit() {
            return Verdict {
                health: Health::Stalled,
                why: format!(
                    "blocks come, but the LIB is {lag} blocks behind the head (at most {} \
                     expected with {} producers): finality does not follow (participation {}%)",
                    pace.lib_lag_limit(),
                    pace.producers,
                    pace.participation
                ),
            };
        }
        let mut why = format!(
            "last block {} ago (one every {}), LIB {lag} behind",
            duration(age),
            duration(pace.interval_ms)
        );
        if pace.participation < 100 {
            why.push_str(&format!(
                "; participation {}%: some producers miss their slots",
                pace.participation
            ));
        }
        return Verdict {
            health: Health::Producing,
            why,
        };
    }
    let elapsed = last.at_ms.saturating_sub(first.at_ms);
    let gained = last.head.saturating_sub(first.head);
    let produced = elapsed / pace.interval_ms.max(1);
    if gained > produced + 1 {
        return Verdict {
            health: Health::Syncing,
            why: format!(
                "head {} ago, catching up: +{gained} blocks in {}",
                duration(age),
                duration(elapsed)
            ),
        };
    }
    Verdict {
        health: Health::Stalled,
        why: format!(
            "no new block for {} (one is due every {}; participation {}%)",
            duration(age),
            duration(pace.interval_ms),
            pace.participation
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: Pace = Pace {
        interval_ms: 500,
        producers: 3,
        participation: 100,
    };

    fn at(head: u64, lib: u64, head_time_ms: u64, at_ms: u64) -> Sample {
        Sample {
            head,
            lib,
            head_time_ms,
            at_ms,
        }
    }

    #[test]
    fn limits_follow_the_schedule() {
        let pace = |producers, interval_ms| Pace {
            interval_ms,
            producers,
            participation: 100,
        };
        assert_eq!(pace(1, 500).lib_lag_limit(), 3);
        assert_eq!(pace(3, 500).lib_lag_limit(), 7);
        assert_eq!(pace(21, 500).lib_lag_limit(), 37);
        assert_eq!(pace(1, 250).fresh_limit_ms(), 2_000, "at least 2 s");
        assert_eq!(pace(3, 1_000).fresh_limit_ms(), 3_000);
        assert_eq!(
            pace(21, 1_000).fresh_limit_ms(),
            9_000,
            "six may be missing"
        );
        assert_eq!(pace(0, 0).fresh_limit_ms(), 2_000, "no panic on nonsense");
    }

    #[test]
    fn a_recent_head_with_its_lib_following_is_producing() {
        let v = verdict(&THREE, &[at(62, 60, 10_000, 10_300)]);
        assert_eq!(v.health, Health::Producing, "{}", v.why);
        assert!(
            v.why.contains("300 ms ago") && v.why.contains("LIB 2 behind"),
            "{}",
            v.why
        );
        let v = verdict(
            &Pace {
                participation: 67,
                ..THREE
            },
            &[at(62, 60, 10_000, 10_300)],
        );
        assert_eq!(v.health, Health::Producing);
        assert!(v.why.contains("67%"), "{}", v.why);
        // A head "from the future" (clocks apart) is recent.
        assert_eq!(
            verdict(&THREE, &[at(62, 60, 11_000, 10_000)]).health,
            Health::Producing
        );
    }

    #[test]
    fn a_lib_far_behind_a_moving_head_is_stalled() {
        let v = verdict(&THREE, &[at(100, 60, 10_000, 10_100)]);
        assert_eq!(v.health, Health::Stalled);
        assert!(v.why.contains("40 blocks behind"), "{}", v.why);
    }

    #[test]
    fn an_old_head_is_syncing_only_while_it_catches_up() {
        // Two samples a second apart: +50 blocks where the chain makes 2.
        let v = verdict(
            &THREE,
            &[at(100, 98, 0, 60_000), at(150, 148, 25_000, 61_000)],
        );
        assert_eq!(v.health, Health::Syncing, "{}", v.why);
        assert!(v.why.contains("+50 blocks in 1.0 s"), "{}", v.why);
        // The same head twice: stalled.
        let v = verdict(&THREE, &[at(100, 98, 0, 60_000), at(100, 98, 0, 61_000)]);
        assert_eq!(v.health, Health::Stalled);
        assert!(v.why.contains("no new block for 1 min 1 s"), "{}", v.why);
        // One sample only: stalled.
        assert_eq!(
            verdict(&THREE, &[at(100, 98, 0, 60_000)]).health,
            Health::Stalled
        );
        // A chain that just resumed: the second look is recent.
        let v = verdict(
            &THREE,
            &[at(100, 98, 0, 60_000), at(101, 99, 60_500, 61_000)],
        );
        assert_eq!(v.health, Health::Producing, "{}", v.why);
        assert_eq!(verdict(&THREE, &[]).health, Health::Stalled);
    }
}
