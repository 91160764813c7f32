//! A WebSocket manager (RFC 6455): pools tokio-tungstenite client
//! connections, `ws://` and `wss://`, keyed by URL ([`WsUrl`]), lent
//! exclusively, with a heartbeat for the pool's keepalive.
//!
//! The borrower gets the connection ([`WsConn`], through its guard
//! `Pooled<WsManager>`): a `Sink` and a `Stream` of
//! [`Message`](tungstenite::Message)s, as tokio-tungstenite's own stream,
//! for a request and its response or for a subscription, and gives it back
//! by dropping the guard.
//!
//! | [`Manager`](connpool_core::Manager) method | here |
//! |---|---|
//! | `connect` | a TCP dial with [`TcpManager`](connpool_tcp::TcpManager)'s socket setup, TLS for `wss` (rustls through [`TlsConfig`](connpool_tcp::tls::TlsConfig): the chain and the host name verified, a failure in rustls's words), then the opening handshake with the manager's headers ([`header`](WsManager::header), [`subprotocols`](WsManager::subprotocols)); a refusal shows the server's status and the start of its body |
//! | `health` | reads, without waiting, what arrived while the connection was idle (below): broken after a Close frame, an error, the end of the stream, or a data message nobody asked for (what the server sends before any borrower has sent anything is kept for the first read instead) |
//! | `ping` | the same look, then one [`Heartbeat`] round trip: by default a Ping frame whose Pong must come back |
//! | `close` | a Close frame (code 1000), written within 1 s; the server's is not awaited |
//!
//! # While a connection is idle
//!
//! Nothing reads an idle connection continuously: there is no task per
//! connection. Instead every look the pool takes at it (`health`, on its
//! return and before it is lent again, and `ping`, at each keepalive
//! interval and in the health check before lending) first polls its stream
//! once with a no-op waker, reading only what has already arrived:
//!
//! - a server's **Ping** is answered: tungstenite queues the Pong, and the
//!   look flushes it. So a server that pings is answered at the pool's next
//!   look, within `keepalive_interval` at worst: keep the interval below
//!   the time the server allows for a Pong (servers that ping commonly
//!   allow tens of seconds to minutes);
//! - the server's own **heartbeat** in the manager's vocabulary (the
//!   `request` of a [`text_heartbeat`](WsManager::text_heartbeat), or what your
//!   [`Heartbeat::answer`] recognizes) is answered at once, idle or lent,
//!   and never shown to a borrower: a sign of life, not a stray message;
//! - **Pongs** and late replies to the pool's own heartbeats are dropped;
//! - a **Close** frame, a protocol error, or the end of the stream (the
//!   socket closed) make the connection broken: the pool closes it and the
//!   next get dials afresh (with the key's backoff if the server is down).
//!   A server's Close is answered with a Close before the socket goes, as
//!   RFC 6455 §5.5.1 asks;
//! - a **data message** (text or binary) that arrives before any borrower
//!   has sent anything is the server speaking first (a `Hello`, a welcome,
//!   a snapshot): it is kept, up to 64 messages and 1 MiB, and the first borrower's
//!   first reads yield it, in order. It can answer no request, so it is
//!   no reason to retire the connection;
//! - any other unsolicited **data message** retires the
//!   connection as broken. It must never reach the next borrower as if
//!   it answered that borrower's request, and dropping it silently could
//!   lose what a service meant to say (a notice before it goes away). Each
//!   is logged at `debug` (target `connpool`, with the URL and the message's
//!   kind and length, never its content) and counted in
//!   [`WsManager::unsolicited_messages`]. So are messages a borrower left
//!   unread when it gave the connection back. A subscription whose server
//!   pushes is therefore lent for as long as it is read, not kept idle.
//!
//! A reader task per connection would answer Pings at once and notice a
//! closed socket the moment it happens, at the price of a task, its waker
//! and a channel per connection, and a hand-over of the stream at every
//! checkout and return. The pool looks at every idle connection at least
//! once per keepalive interval anyway, and every message that matters to
//! the next borrower is read before it is lent, so the looks suffice.
//!
//! # A deadline on a read
//!
//! A lent connection's reads (`next()`) wait as long as the server is
//! silent, while the heartbeat finds a dead one. Where an answer is due (a
//! request and its reply), give reads a deadline:
//! [`WsManager::read_timeout`] for every borrower, or
//! [`WsConn::set_read_timeout`] for one borrow. Past it the read fails with
//! an I/O error of kind `TimedOut` that names it
//! ([`WsError::ReadTimedOut`]), and the connection is closed when it comes
//! back: the reply may still come, and must not reach the next borrower.
//! (The checkout has the pool's `checkout_timeout`.)
//!
//! For one deadline over all of a call, the checkout included (the wait
//! for a connection, a health check, a dial, the send and the reply), use
//! a [`WsService`]: [`request`](WsService::request) sends a message and
//! returns the first data message back, [`subscribe`](WsService::subscribe)
//! does the same and keeps the connection lent for what follows. Past its
//! [`timeout`](WsService::timeout) a call fails with [`WsError::TimedOut`],
//! which names the deadline and what the call was waiting for.
//!
//! # The heartbeat
//!
//! The pool's background keepalive calls [`Manager::ping`](connpool_core::Manager::ping)
//! on connections idle for `keepalive_interval`, bounds each by
//! `ping_timeout`, and closes a connection after
//! `keepalive_max_missed` heartbeats in a row went unanswered (not
//! before: a missed heartbeat leaves a connection that is otherwise fine
//! idle, and its late reply is dropped when it comes). A connection that is
//! plainly broken (closed, failed) is closed at once. The health check
//! before lending ([`health_check`](connpool_core::Builder::health_check),
//! 500 ms by default) uses the same heartbeat.
//!
//! | heartbeat | sends | expects |
//! |---|---|---|
//! | Ping frames (default) | a Ping frame, no payload | its Pong |
//! | [`text_heartbeat`](WsManager::text_heartbeat)`(request, reply)` | a text message, usually `"ping"` | the text reply, usually `"pong"` |
//! | your [`Heartbeat`] | any message | what your `is_reply` accepts (JSON, …) |
//!
//! The usual advice for WebSocket heartbeats is a ping every 30 to 50 s,
//! and a peer declared dead after 3 to 5 missed replies. The pool's
//! defaults are a 30 s interval and 1 miss (gRPC's count: a doubtful idle
//! connection costs a dial to replace, a kept dead one a user's request);
//! for the usual advice set `keepalive_max_missed(3)`. What 1 costs: a
//! server that answers a heartbeat later than `ping_timeout` (5 s) has
//! its idle connection closed and a new one dialed; what it buys: a
//! silent peer is found within 35 s idle and 60 s under a reader, where 3
//! misses take 120 s (Socket.IO, by comparison, drops a connection after
//! one missed pong too: 25 s + 20 s). The same two
//! settings rule the heartbeat while a borrower reads (below): one
//! schedule, set on the pool's builder. Keep idle connections long
//! enough to be worth pinging (the pool's `idle_timeout`, 90 s by default,
//! counts from the last return, not from the last heartbeat):
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use connpool_websocket::pool::Pool;
//! use connpool_websocket::{WsManager, WsUrl};
//! use connpool_websocket::tungstenite::Message;
//! use connpool_websocket::tungstenite::http::HeaderValue;
//! use connpool_websocket::tungstenite::http::header::AUTHORIZATION;
//! use futures_util::{SinkExt, StreamExt};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = WsManager::new()
//!     .header(AUTHORIZATION, HeaderValue::from_str("Bearer s3cr3t")?)
//!     .subprotocols(&["v1.quotes"])?;
//! let pool = Pool::builder(manager)
//!     .keepalive_interval(Duration::from_secs(30))
//!     .ping_timeout(Duration::from_secs(10))
//!     // 3 missed heartbeats: a silent idle peer is closed within
//!     // 3 × (30 + 10) s, a silent peer under a reader within 4 × 30 s.
//!     .keepalive_max_missed(3)
//!     .idle_timeout(Duration::from_secs(600))
//!     .build()
//!     .await?;
//!
//! let url: WsUrl = "wss://quotes.example/v1".parse()?;
//! let mut conn = pool.get_for(&url).await?;
//! conn.send(Message::text(r#"{"get":"EURUSD"}"#)).await?;
//! while let Some(msg) = conn.next().await {
//!     if let Message::Text(quote) = msg? {
//!         println!("{quote}");
//!         break;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! **What it costs**, per idle connection per hour at a 30 s interval: 120
//! heartbeats (up to 10 % more with the pool's default `jitter`, which
//! shortens intervals). A Ping-frame heartbeat is 6 bytes out (a
//! 2-byte header and the 4-byte mask every client frame carries, no
//! payload) and 2 back: 8 bytes, **960 bytes an hour** of WebSocket
//! frames. Over TLS 1.3 each frame is its own record (5-byte header,
//! 1-byte content type, 16-byte AEAD tag): 52 bytes a heartbeat, 6,240
//! bytes an hour. On the wire each heartbeat is also 3 TCP segments (the
//! Ping, the Pong with its ACK, the ACK of the Pong) of 52 bytes of IPv4
//! and TCP headers each (with Linux's timestamps option): 164 bytes a
//! heartbeat, **about 19.7 kB an hour** over `ws` and 25 kB over `wss`.
//! A `"ping"`/`"pong"` text heartbeat is 10 + 6 bytes of frames (1,920 bytes an
//! hour, 20.6 kB on the wire). The kernel's TCP keepalive probes (after
//! 60 s of silence) never fire on a connection that sends a heartbeat
//! every 30 s.
//!
//! # Subscriptions: held for hours, watched all along
//!
//! A connection held for a subscription (subscribe once, then read what
//! the server pushes) is lent the whole time. While the borrower waits in
//! `next()`, the connection keeps its own heartbeat
//! ([`WsManager::heartbeat_while_lent`], on the pool's keepalive
//! schedule: every 30 s of silence by default): the server's Pings are
//! answered (and so is its text heartbeat, see above), the heartbeat's
//! replies are not shown, and after `keepalive_max_missed` heartbeats in
//! a row (1 by default) without a word from the server the stream fails
//! with an I/O error of kind `TimedOut` ([`WsError::HeartbeatMissed`]).
//! The connection is closed when the guard goes; reconnecting is the next
//! get (with the key's backoff and probes if the server is down), and
//! resubscribing is the borrower's, since only it knows what it
//! subscribed to (the `ws_subscription` example runs this loop through a
//! silent server and a restart):
//!
//! ```no_run
//! use connpool_websocket::pool::Pool;
//! use connpool_websocket::tungstenite::Message;
//! use connpool_websocket::{WsManager, WsUrl};
//! use futures_util::{SinkExt, StreamExt};
//!
//! # async fn handle(_: &str) {}
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder(WsManager::new()).build().await?;
//! let url: WsUrl = "wss://stream.example/v1".parse()?;
//! loop {
//!     // Connect (or take an idle connection), then subscribe.
//!     let mut conn = match pool.get_for(&url).await {
//!         Ok(conn) => conn,
//!         Err(e) => {
//!             // Down: while it backs off, the pool fails each get at
//!             // once or when the probe it waited for fails.
//!             eprintln!("{e}; retrying");
//!             tokio::time::sleep(std::time::Duration::from_secs(1)).await;
//!             continue;
//!         }
//!     };
//!     conn.send(Message::text(r#"{"subscribe":"EURUSD"}"#)).await?;
//!     // Read until the stream ends: the server closed it, the socket
//!     // failed, or the heartbeat went unanswered.
//!     while let Some(msg) = conn.next().await {
//!         match msg {
//!             Ok(Message::Text(update)) => handle(&update).await,
//!             Ok(_) => {}
//!             Err(e) => {
//!                 eprintln!("subscription lost: {e}");
//!                 break;
//!             }
//!         }
//!     }
//!     // The guard goes: the broken connection is closed; the loop
//!     // reconnects and resubscribes.
//! }
//! # }
//! ```
//!
//! # wss
//!
//! With the `tls` feature, `wss://` URLs go through rustls with the `ring`
//! provider: by default Mozilla's roots; [`WsManager::tls`] takes a
//! [`TlsConfig`](connpool_tcp::tls::TlsConfig) for a private CA or a client
//! certificate. The certificate must name the URL's host. Without the
//! feature, dialing a `wss://` URL fails with [`WsError::NoTls`].
//!
//!
//! # The crate
//!
//! This is `connpool-websocket` (`connpool::managers::websocket` with
//! `connpool`'s `websocket` feature). Added alone, it is the one dependency
//! a WebSocket user needs: it re-exports the pool ([`pool`], [`Pool`]), the
//! shared dial ([`tcp`]) and [`tungstenite`]. Its `tls` feature dials
//! `wss://` through the `TlsConfig` every connpool crate shares.
#![cfg_attr(
    feature = "tls",
    doc = r#"
```no_run
use connpool_websocket::pool::Pool;
use connpool_websocket::tcp::tls::TlsConfig;
use connpool_websocket::WsManager;

# async fn run(private_ca: TlsConfig) -> Result<(), Box<dyn std::error::Error>> {
let manager = WsManager::new()
    .tls(private_ca)
    .text_heartbeat("ping", "pong");
let pool = Pool::builder(manager).build().await?;
let conn = pool.get_for(&"wss://internal.example:8443/feed".parse()?).await?;
# drop(conn);
# Ok(())
# }
```
"#
)]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod conn;
mod error;
mod heartbeat;
mod manager;
mod service;
mod url;

pub use conn::WsConn;
pub use error::WsError;
pub use heartbeat::Heartbeat;
pub use manager::WsManager;
pub use service::WsService;
pub use url::WsUrl;

/// The pool and the shared dial, re-exported: a user of this crate alone
/// needs no other connpool crate.
#[doc(no_inline)]
pub use connpool_core::{self as pool, Pool};
#[doc(no_inline)]
pub use connpool_tcp as tcp;

/// The tungstenite crate, for its [`Message`](tungstenite::Message),
/// `WebSocketConfig` and error types.
pub use tokio_tungstenite::tungstenite;
