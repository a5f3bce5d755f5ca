//! The HTTP server: an accept loop that keeps the open connections under a cap
//! ([`Connections`]), serves each with hyper's HTTP/1 under a header-read timeout
//! (which also closes a kept-alive connection left idle that long), tags each request
//! with its peer's address (`ConnectInfo`, for the rate limits), and on shutdown stops
//! accepting and lets the connections finish their requests.

use super::connections::{Admission, Connections, Slot};
use crate::config::HttpConfig;
use axum::{
    body::{Body, Bytes, HttpBody},
    extract::ConnectInfo,
    Router,
};
use hyper::{
    body::{Frame, Incoming, SizeHint},
    server::conn::http1,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tower::ServiceExt;
use tracing::{debug, warn};

/// Serves `app` on `listener` until `stop` completes, then waits for the open
/// connections to finish (the caller bounds that wait). Accept errors (out of file
/// descriptors, a connection reset before it was accepted) are logged and waited out,
/// never fatal.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpConfig,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let conns = Connections::new(limits.max_connections);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .keep_alive(true);
    let (shutdown, shutting_down) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut over_cap = Throttled::default();
    let mut accept_failed = Throttled::default();
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = tasks.join_next() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some((slot, admission)) = conns.admit() else {
                        // Every connection is busy: this one is closed at once.
                        drop(stream);
                        over_cap.note(|n| warn!(refused_or_evicted = n, open = conns.open(), "connection cap reached: every connection busy, new ones refused"));
                        continue;
                    };
                    if admission == Admission::Evicted {
                        over_cap.note(|n| warn!(refused_or_evicted = n, open = conns.open(), "connection cap reached: the longest-idle connections are closed"));
                    }
                    let _ = stream.set_nodelay(true);
                    tasks.spawn(serve_connection(
                        stream,
                        peer,
                        app.clone(),
                        slot,
                        http.clone(),
                        shutting_down.clone(),
                    ));
                }
                Err(e) => {
                    accept_failed.note(|n| warn!(error = %e, failures = n, "cannot accept a connection"));
                    if !is_connection_error(&e) {
                        // Out of file descriptors or memory: give the open connections
                        // time to finish instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            },
        }
    }
    drop(listener);
    let _ = shutdown.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// An error about one connection (not about the listener or the process).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    slot: Slot,
    http: http1::Builder,
    mut shutting_down: watch::Receiver<bool>,
) {
    let slot = Arc::new(slot);
    let requests = slot.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        // Busy from the request's start until its answer is fully written.
        let busy = requests.busy();
        let answer = app.clone().oneshot(req);
        async move {
            let resp = answer.await?;
            Ok::<_, Infallible>(resp.map(|body| Body::new(WhileBusy { body, _busy: busy })))
        }
    });
    let conn = http.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        }
        // (The watch's guard is dropped before the connection is awaited.)
        _ = async { let _ = shutting_down.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
        // Closed to make room (it was idle): dropping it closes the socket.
        _ = slot.evicted() => {}
    }
}

/// A response body that keeps its connection marked busy until it is written.
struct WhileBusy {
    body: Body,
    _busy: super::connections::Busy,
}

impl HttpBody for WhileBusy {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A warning logged at most once a second, with how often it happened meanwhile.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    count: u64,
}

impl Throttled {
    fn note(&mut self, log: impl FnOnce(u64)) {
        self.count += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            log(self.count);
            self.count = 0;
            self.last = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn server(
        max_connections: usize,
        header_read_timeout_ms: u64,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                peer.ip().to_string()
            }),
        );
        let limits = HttpConfig {
            max_connections,
            header_read_timeout_ms,
            ..HttpConfig::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener, app, &limits, async move {
                let _ = stopped.await;
            })
            .await
        });
        (addr, stop, task)
    }

    /// One `GET /` on a new connection: the answer's body.
    async fn get(addr: SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out.rsplit("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// Whether the server closed `s` within `within`.
    async fn closed(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(within, s.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn silent_connections_make_room_and_time_out() {
        let (addr, stop, task) = server(4, 300).await;
        let mut silent = Vec::new();
        for _ in 0..4 {
            silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        // At the cap, a real request still gets through, and it has its peer address.
        assert_eq!(get(addr).await, "127.0.0.1");
        assert!(
            closed(&mut silent[0], Duration::from_millis(200)).await,
            "the longest-idle connection made room"
        );
        // The others never send their headers: closed after the timeout.
        for s in &mut silent[1..] {
            assert!(closed(s, Duration::from_secs(2)).await);
        }
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_kept_alive_connection_left_idle_is_closed() {
        let (addr, _stop, _task) = server(8, 300).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        assert!(s.read(&mut buf).await.unwrap() > 0);
        assert!(closed(&mut s, Duration::from_secs(2)).await);
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_at_once() {
        let (addr, stop, task) = server(8, 5_000).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        // A kept-alive connection that has made a request, and stays idle.
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        assert!(s.read(&mut buf).await.unwrap() > 0);
        stop.send(()).unwrap();
        // The server ends, closing the idle connection, without waiting for its timeout.
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(closed(&mut s, Duration::from_secs(1)).await);
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
