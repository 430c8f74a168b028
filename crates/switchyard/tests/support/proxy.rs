//! A TCP proxy between `serve` and PostgreSQL that a test can cut and
//! restore: an outage of the database as the server sees it, without
//! stopping the shared cluster other tests use.

#![allow(dead_code)] // reason: each test file uses a different part of the support module

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards every connection to `upstream` while open. [`TcpProxy::cut`]
/// resets every connection through it and refuses new ones (accepted, then
/// closed at once) until [`TcpProxy::restore`].
pub struct TcpProxy {
    pub addr: SocketAddr,
    open: Arc<watch::Sender<bool>>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(upstream: String) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(watch::Sender::new(true));
        let accept = tokio::spawn({
            let open = Arc::clone(&open);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if !*open.borrow() {
                        drop(client);
                        continue;
                    }
                    let mut state = open.subscribe();
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
                        let mut client = client;
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = state.wait_for(|open| !*open) => {}
                        }
                        // Both sockets drop here: the peers see the connection go.
                    });
                }
            }
        });
        TcpProxy { addr, open, accept }
    }

    /// `url` (`postgres://user@host:port/db?...`) with its host and port
    /// replaced by this proxy's.
    pub fn url_through(&self, url: &str) -> String {
        let (before, after) = split_authority(url);
        format!("{before}{}{after}", self.addr)
    }

    /// Drops every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The `host:port` of a `scheme://[user@]host:port/...` URL.
pub fn host_port(url: &str) -> String {
    let (before, after) = split_authority(url);
    url[before.len()..url.len() - after.len()].to_owned()
}

fn split_authority(url: &str) -> (&str, &str) {
    let start = url.find("://").expect("a url with a scheme") + 3;
    let end = url[start..].find('/').map_or(url.len(), |end| start + end);
    let start = url[start..end].rfind('@').map_or(start, |at| start + at + 1);
    (&url[..start], &url[end..])
}
