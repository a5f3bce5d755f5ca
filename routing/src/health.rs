//! Endpoint health: a small circuit breaker per endpoint URL with exponential backoff.

/// What we know about one endpoint's recent behaviour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EndpointHealth {
    /// Failures since the last success.
    pub(crate) failures: u32,
    /// While `now < retry_at_ms` the endpoint is down (in backoff).
    pub(crate) retry_at_ms: Option<u64>,
    pub(crate) last_success_ms: Option<u64>,
    pub(crate) last_failure_ms: Option<u64>,
    pub(crate) latency_ms: Option<u64>,
}

impl EndpointHealth {
    /// True while the endpoint is in backoff.
    pub(crate) fn is_down(&self, now_ms: u64) -> bool {
        self.retry_at_ms.is_some_and(|at| now_ms < at)
    }

    pub(crate) fn record_success(&mut self, latency_ms: u64, now_ms: u64) {
        self.failures = 0;
        self.retry_at_ms = None;
        self.last_success_ms = Some(now_ms);
        self.latency_ms = Some(latency_ms);
    }

    /// Marks the endpoint down for `backoff(failures)`; returns the retry time.
    pub(crate) fn record_failure(&mut self, now_ms: u64, base_ms: u64, max_ms: u64) -> u64 {
        self.failures = self.failures.saturating_add(1);
        self.last_failure_ms = Some(now_ms);
        let retry_at = now_ms.saturating_add(backoff_ms(self.failures, base_ms, max_ms));
        self.retry_at_ms = Some(retry_at);
        retry_at
    }
}

/// `base · 2^(failures − 1)`, capped at `max`; 0 for no failures.
pub(crate) fn backoff_ms(failures: u32, base_ms: u64, max_ms: u64) -> u64 {
    if failures == 0 {
        return 0;
    }
    let factor = 1u64.checked_shl(failures - 1).unwrap_or(u64::MAX);
    base_ms.saturating_mul(factor).min(max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let got: Vec<u64> = (0..=9).map(|n| backoff_ms(n, 1000, 60_000)).collect();
        assert_eq!(
            got,
            [0, 1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]
        );
        // No overflow for absurd failure counts.
        assert_eq!(backoff_ms(200, 1000, 60_000), 60_000);
        assert_eq!(backoff_ms(u32::MAX, u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn failure_marks_down_until_retry_and_success_resets() {
        let mut h = EndpointHealth::default();
        assert!(!h.is_down(0));
        assert_eq!(h.record_failure(100, 1000, 60_000), 1100);
        assert_eq!(h.record_failure(200, 1000, 60_000), 2200);
        assert!(h.is_down(2199));
        assert!(!h.is_down(2200));
        h.record_success(15, 3000);
        assert_eq!(h.failures, 0);
        assert!(!h.is_down(3000));
        assert_eq!(h.latency_ms, Some(15));
        assert_eq!(h.last_failure_ms, Some(200));
    }
}
