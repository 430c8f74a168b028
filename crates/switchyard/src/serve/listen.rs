//! The HTTP listener: hyper's HTTP/1 connection builder with the limits
//! `axum::serve` cannot set. A connection waits for one of
//! `HTTP_MAX_CONNECTIONS` permits before it is accepted (the rest wait in
//! the kernel's backlog), and must send its request headers within
//! `HTTP_HEADER_TIMEOUT` (hyper's `header_read_timeout`, which also closes
//! an idle keep-alive connection). `HTTP_REQUEST_TIMEOUT` is a tower layer
//! on the routes ([`super::app`]). At the limit each answer closes its
//! connection (`Connection: close`), so waiting connections are accepted in
//! turn instead of behind a client's busy keep-alive ones.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tower::ServiceExt as _;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::stopped;

/// `HTTP_HEADER_TIMEOUT`, `HTTP_REQUEST_TIMEOUT`, `HTTP_MAX_CONNECTIONS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// The longest a client may take to send its request headers.
    pub header_timeout: Duration,
    /// The longest a request may take, body included; then 408.
    pub request_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits { header_timeout: Duration::from_secs(10), request_timeout: Duration::from_secs(30), max_connections: 256 }
    }
}

/// Serves `router` on `listener` until `stop` flips, then stops accepting
/// and waits for the connections in flight to finish their requests.
pub async fn serve(listener: TcpListener, router: Router, limits: HttpLimits, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        // The peer's address rides along as `ConnectInfo` (the console rate-limits by it).
        let peer_router = router.clone();
        let in_use = Arc::clone(&permits);
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let answer = peer_router.clone().oneshot(request);
            let in_use = Arc::clone(&in_use);
            async move {
                let mut response = answer.await?;
                if in_use.available_permits() == 0 {
                    // At the limit (every permit taken, or all but the one
                    // the accept loop holds while it waits): close this
                    // connection after its answer, so connections waiting
                    // to be accepted get their turn. Otherwise a client's
                    // busy keep-alive connections hold every permit while
                    // its other requests wait in the backlog until one of
                    // those idles out (HTTP_HEADER_TIMEOUT): seconds of
                    // latency with the process nearly idle.
                    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that goes away or times out is not an error worth a log line.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
