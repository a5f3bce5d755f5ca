//! Per-client rate limits: each client (an IPv4 address, or an IPv6 /64) may make
//! `rate_limit_per_s` requests a second on average, `rate_limit_burst` at once; beyond
//! that it gets 429 with `Retry-After`. Requests are counted, not what they carry.
//!
//! A small token bucket (GCRA: one instant per client) in a bounded map, rather than
//! `governor`: its keyed store grows with every address it has seen and would need the
//! same bounding wrapped around it, for a dozen transitive crates more. Here a client
//! whose bucket is full again is indistinguishable from one never seen, so it is
//! forgotten first when the map is full.

use super::error::ApiError;
use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header::RETRY_AFTER, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

/// The request rates of the clients seen lately.
#[derive(Debug)]
pub struct ClientRates {
    /// Time one request costs: 1 / rate.
    interval: Duration,
    /// How far ahead of now a client's account may run: burst × interval.
    window: Duration,
    max_clients: usize,
    /// Per client, when its bucket is full again (the "theoretical arrival time").
    clients: Mutex<HashMap<IpAddr, Instant>>,
}

impl ClientRates {
    /// Limits of `per_s` requests a second and `burst` at once for each of up to
    /// `max_clients` clients at a time; `None` when `per_s` is 0 (no limit).
    pub fn new(per_s: u32, burst: u32, max_clients: usize) -> Option<Self> {
        if per_s == 0 {
            return None;
        }
        let interval = Duration::from_secs(1) / per_s;
        Some(Self {
            interval,
            window: interval * burst.max(1),
            max_clients: max_clients.max(1),
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one request of `client` at `now`: `Err(wait)` when it is over its limit
    /// (the request is then not counted), `wait` being how long until one more fits.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = client_key(client);
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if clients.len() >= self.max_clients && !clients.contains_key(&key) {
            self.make_room(&mut clients, now);
        }
        let full_at = clients.get(&key).map_or(now, |t| (*t).max(now));
        let next = full_at + self.interval;
        let ahead = next.duration_since(now);
        if ahead > self.window {
            return Err(ahead - self.window);
        }
        clients.insert(key, next);
        Ok(())
    }

    /// Clients tracked now.
    pub fn tracked(&self) -> usize {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Forgets every client whose bucket is full again (nothing is lost: it is as if
    /// never seen); if that frees less than an eighth of the map, also the clients
    /// closest to full, so that the next inserts do not each scan the map.
    fn make_room(&self, clients: &mut HashMap<IpAddr, Instant>, now: Instant) {
        clients.retain(|_, full_at| *full_at > now);
        let keep = self.max_clients - self.max_clients.div_ceil(8);
        if clients.len() > keep {
            let mut by_time: Vec<(Instant, IpAddr)> =
                clients.iter().map(|(ip, t)| (*t, *ip)).collect();
            by_time.sort_unstable();
            for (_, ip) in &by_time[..by_time.len() - keep] {
                clients.remove(ip);
            }
        }
    }
}

/// What a client is counted as: its IPv4 address, or the /64 of its IPv6 address (one
/// subscriber's share, which it could otherwise spread its requests over).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// The middleware: counts the request against its client (the peer address the
/// server put on it as `ConnectInfo`; a request without one, from inside the process
/// or a test, is not counted) and answers 429 beyond the limit.
pub(super) async fn limit_rate(
    State(rates): State<Arc<ClientRates>>,
    req: Request,
    next: Next,
) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(client) = client {
        if let Err(wait) = rates.check(client, Instant::now()) {
            return too_many_requests(wait);
        }
    }
    next.run(req).await
}

fn too_many_requests(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let mut resp = ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "rate_limited",
        message: format!("too many requests from this client; retry in {secs} s"),
    }
    .into_response();
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_gets_its_burst_then_its_rate() {
        let rates = ClientRates::new(10, 3, 100).unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rates.check(ip("10.0.0.1"), t0).is_ok());
        }
        let wait = rates.check(ip("10.0.0.1"), t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // Other clients are not affected.
        assert!(rates.check(ip("10.0.0.2"), t0).is_ok());
        // One interval later, one more fits, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert!(rates.check(ip("10.0.0.1"), t1).is_ok());
        assert!(rates.check(ip("10.0.0.1"), t1).is_err());
        // After a quiet second the whole burst is back.
        let t2 = t1 + Duration::from_secs(1);
        for _ in 0..3 {
            assert!(rates.check(ip("10.0.0.1"), t2).is_ok());
        }
        assert!(rates.check(ip("10.0.0.1"), t2).is_err());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let rates = ClientRates::new(1, 1, 100).unwrap();
        let t0 = Instant::now();
        assert!(rates.check(ip("2001:db8::1"), t0).is_ok());
        assert!(rates.check(ip("2001:db8::2"), t0).is_err(), "same /64");
        assert!(
            rates.check(ip("2001:db8:0:1::1"), t0).is_ok(),
            "another /64"
        );
        assert!(rates.check(ip("::ffff:10.0.0.1"), t0).is_ok());
        assert!(rates.check(ip("10.0.0.1"), t0).is_err(), "v4-mapped is v4");
    }

    #[test]
    fn the_map_stays_bounded_under_many_clients() {
        let rates = ClientRates::new(1, 2, 64).unwrap();
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let client = IpAddr::from(i.to_be_bytes());
            assert!(rates.check(client, t0).is_ok());
            assert!(rates.tracked() <= 64);
        }
        // Clients that went quiet are dropped first: a limited one stays limited while
        // the map is refilled with clients that are already full again.
        let limited = ip("192.0.2.1");
        let later = t0 + Duration::from_secs(10);
        assert!(rates.check(limited, later).is_ok());
        assert!(rates.check(limited, later).is_ok());
        assert!(rates.check(limited, later).is_err());
        for i in 0..200u32 {
            let client = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            let t = later + Duration::from_millis(1);
            assert!(rates.check(client, t).is_ok());
        }
        assert!(rates.tracked() <= 64);
        assert!(rates.check(limited, later).is_err());
    }
}
