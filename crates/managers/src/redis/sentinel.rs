//! Redis behind Sentinel: the master's address asked of the Sentinels at
//! each dial, and their `+switch-master` announcement followed, so that
//! no command goes to the old master once a switch is announced.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use super::error::RedisError;
use crate::tcp::Destination;
use crate::transport::{Stream, Transport};

/// One Sentinel: where it is, whether it speaks TLS, and the login it asks
/// for (a Sentinel with `requirepass`, or an ACL user). Its `Debug` shows
/// no password.
#[derive(Clone)]
pub(super) struct Sentinel {
    host: String,
    port: u16,
    tls: bool,
    login: redis::RedisConnectionInfo,
}

impl std::fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sentinel")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.login.username())
            .field("password", &self.login.password().map(|_| "<redacted>"))
            .finish()
    }
}

impl Sentinel {
    /// `host:port`, or a URL `redis://[user[:password]@]host:port` for a
    /// Sentinel that asks for a login, `rediss://…` for one over TLS.
    pub(super) fn parse(s: &str) -> Result<Sentinel, RedisError> {
        use redis::IntoConnectionInfo;
        if !s.contains("://") {
            return s
                .rsplit_once(':')
                .and_then(|(host, port)| {
                    Some(Sentinel {
                        host: host.to_owned(),
                        port: port.parse().ok()?,
                        tls: false,
                        login: redis::RedisConnectionInfo::default(),
                    })
                })
                .ok_or_else(|| {
                    RedisError::Url(format!(
                        "a Sentinel must be host:port or redis://host:port, not {s:?}"
                    ))
                });
        }
        // Not echoed: the URL may hold a password.
        let (tls, rest) = match s.split_once("://") {
            Some(("redis", rest)) => (false, rest),
            Some(("rediss", rest)) => (true, rest),
            _ => {
                return Err(RedisError::Url(
                    "a Sentinel's URL must be redis:// or rediss://".into(),
                ));
            }
        };
        if rest.contains('#') {
            return Err(RedisError::Url(
                "a Sentinel's URL takes no fragment (certificate checks cannot be turned off)"
                    .into(),
            ));
        }
        // redis-rs's message names the part that is wrong, never the URL;
        // TLS is connpool's own.
        let info = format!("redis://{rest}")
            .into_connection_info()
            .map_err(|e| RedisError::Url(format!("a Sentinel's URL: {e}")))?;
        let redis::ConnectionAddr::Tcp(host, port) = info.addr().clone() else {
            return Err(RedisError::Url(
                "a Sentinel's URL needs a TCP address".into(),
            ));
        };
        let login = info.redis_settings().clone();
        Ok(Sentinel {
            host,
            port,
            tls,
            login,
        })
    }

    /// A stream to this Sentinel through `transport` (its socket setup,
    /// and its TLS configuration for a `rediss` Sentinel).
    async fn stream(&self, transport: &Transport) -> Result<Stream, String> {
        let dest = Destination::from((self.host.as_str(), self.port));
        match transport.dial(&dest, self.tls).await {
            Ok(dialed) => Ok(dialed.stream),
            Err(e) => Err(e.into_io().to_string()),
        }
    }

    /// A connection to ask this Sentinel things, logged in as it asks.
    async fn connection(
        &self,
        transport: &Transport,
    ) -> Result<redis::aio::MultiplexedConnection, String> {
        let stream = self.stream(transport).await?;
        let config = redis::AsyncConnectionConfig::new();
        let (conn, driver) =
            redis::aio::MultiplexedConnection::new_with_config(&self.login, stream, config)
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(driver);
        Ok(conn)
    }

    /// A subscription connection to this Sentinel, logged in as it asks.
    async fn subscription(&self, transport: &Transport) -> Result<redis::aio::PubSub, String> {
        let stream = self.stream(transport).await?;
        redis::aio::PubSub::new(&self.login, stream)
            .await
            .map_err(|e| e.to_string())
    }
}

/// How long one Sentinel may take to answer (or to be reached).
const SENTINEL_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the watcher waits before it tries the next Sentinel, when none
/// could be subscribed to.
const RESUBSCRIBE: Duration = Duration::from_millis(200);
/// How long the watcher's Sentinel may stay silent before the watcher asks
/// it for the master: a frozen or cut-off Sentinel never closes the
/// subscription, and one that does not answer is left for the next.
const SENTINEL_CHECK: Duration = Duration::from_secs(1);

/// The Sentinels of one master: where they are, the master's name, and
/// the generation of the connections dialed to the current master.
///
/// Every connection dialed to a master holds that master's generation
/// flag; when the Sentinels announce a switch (`+switch-master` for this
/// name, or a master address that changed since the last look), the flag
/// is set, so every such connection refuses further commands and is
/// broken with its server changed (the pool clears the key), and the
/// next dials get a new flag.
#[derive(Debug)]
pub(super) struct Sentinels {
    addrs: Vec<Sentinel>,
    /// The Sentinel that answered last: asked first.
    answered: AtomicUsize,
    /// The watcher's connection for questions to the Sentinel it listens
    /// to (its index), while it listens: a dial asks there first, on a
    /// connection the watcher keeps checked, instead of dialing a Sentinel.
    watched: Mutex<Option<(usize, redis::aio::MultiplexedConnection)>>,
    pub(super) master: String,
    generation: Mutex<Generation>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Generation {
    moved: Arc<AtomicBool>,
    /// The master's address as last seen.
    at: Option<(String, u16)>,
}

impl Sentinels {
    pub(super) fn new(addrs: Vec<Sentinel>, master: String) -> Arc<Self> {
        Arc::new(Sentinels {
            addrs,
            answered: AtomicUsize::new(0),
            watched: Mutex::new(None),
            master,
            generation: Mutex::new(Generation {
                moved: Arc::new(AtomicBool::new(false)),
                at: None,
            }),
            watcher: Mutex::new(None),
        })
    }

    /// The master's address, from the first Sentinel that knows it (the
    /// one the watcher listens to, on its connection; then each, the one
    /// that answered last first, on a connection of its own), with the
    /// generation flag its connections must hold. Starts the watcher of
    /// `+switch-master` if it is not running.
    ///
    /// A watched Sentinel that failed to answer is not asked again on a
    /// connection of its own (unless it is the only one): a frozen or cut
    /// off one would take a second timeout of the dial's time.
    pub(super) async fn master(
        self: &Arc<Self>,
        transport: &Transport,
    ) -> Result<((String, u16), Arc<AtomicBool>), RedisError> {
        self.watch(transport);
        let mut last = None;
        let watched = self.watched.lock().clone();
        let mut failed = None;
        if let Some((i, mut conn)) = watched {
            match self
                .ask_on(&self.addrs[i], Some(&mut conn), transport)
                .await
            {
                Ok(at) => return Ok((at.clone(), self.seen_at(at))),
                Err(e) => (last, failed) = (Some(e), Some(i)),
            }
        }
        let (n, first) = (self.addrs.len(), self.answered.load(Ordering::Relaxed));
        let others = (0..n)
            .map(|i| (first + i) % n)
            .filter(|&i| n == 1 || failed != Some(i));
        for i in others {
            match self.ask_on(&self.addrs[i], None, transport).await {
                Ok(at) => {
                    self.answered.store(i, Ordering::Relaxed);
                    let moved = self.seen_at(at.clone());
                    return Ok((at, moved));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(RedisError::Sentinel {
            master: self.master.clone(),
            reason: last.unwrap_or_else(|| "no Sentinel given".into()),
        })
    }

    /// The master's address as `sentinel` knows it, on `conn` if given,
    /// else on a connection of its own through `transport`.
    async fn ask_on(
        &self,
        sentinel: &Sentinel,
        conn: Option<&mut redis::aio::MultiplexedConnection>,
        transport: &Transport,
    ) -> Result<(String, u16), String> {
        let (host, port) = (&sentinel.host, sentinel.port);
        let asking = async {
            let mut own;
            let conn = match conn {
                Some(conn) => conn,
                None => {
                    own = sentinel.connection(transport).await?;
                    &mut own
                }
            };
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(&self.master)
                .query_async::<Option<(String, u16)>>(conn)
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(SENTINEL_TIMEOUT, asking).await {
            Ok(Ok(Some(at))) => Ok(at),
            Ok(Ok(None)) => Err(format!(
                "Sentinel {host}:{port} knows no master of that name"
            )),
            Ok(Err(e)) => Err(format!("Sentinel {host}:{port}: {e}")),
            Err(_) => Err(format!(
                "Sentinel {host}:{port} did not answer within {SENTINEL_TIMEOUT:?}"
            )),
        }
    }

    /// The master is at `at` now: a new generation if it moved since the
    /// last look. Returns the current generation's flag.
    fn seen_at(&self, at: (String, u16)) -> Arc<AtomicBool> {
        let mut generation = self.generation.lock();
        if generation.at.as_ref().is_some_and(|was| *was != at) {
            generation.moved.store(true, Ordering::SeqCst);
            generation.moved = Arc::new(AtomicBool::new(false));
            tracing::warn!(master = %self.master, to = ?at, "the Redis master moved");
        }
        generation.at = Some(at);
        Arc::clone(&generation.moved)
    }

    /// Starts the task that follows the Sentinels' announcements, unless it
    /// runs. It holds the Sentinels weakly, and ends once they are gone.
    fn watch(self: &Arc<Self>, transport: &Transport) {
        let mut watcher = self.watcher.lock();
        if watcher.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let me = Arc::downgrade(self);
        let follows = follow(me, self.addrs.clone(), transport.clone());
        *watcher = Some(tokio::spawn(follows));
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        if let Some(task) = self.watcher.get_mut().take() {
            task.abort();
        }
    }
}

/// Subscribes to `+switch-master` on one Sentinel after another (the next
/// when one goes away, or stays silent and does not answer) and follows the
/// announcements for the master.
async fn follow(sentinels: Weak<Sentinels>, addrs: Vec<Sentinel>, transport: Transport) {
    for (i, sentinel) in addrs.iter().enumerate().cycle() {
        let (host, port) = (&sentinel.host, sentinel.port);
        let subscribed = async {
            let mut pubsub = sentinel.subscription(&transport).await?;
            pubsub
                .subscribe("+switch-master")
                .await
                .map_err(|e| e.to_string())?;
            let asking = sentinel.connection(&transport).await?;
            Ok::<_, String>((pubsub, asking))
        };
        if let Ok(Ok((mut pubsub, mut asking))) =
            tokio::time::timeout(SENTINEL_TIMEOUT, subscribed).await
        {
            // A switch announced while nobody listened: look once. Dials
            // ask this Sentinel first from now on.
            match sentinels.upgrade() {
                Some(s) => {
                    if let Ok(at) = s.ask_on(sentinel, Some(&mut asking), &transport).await {
                        s.answered.store(i, Ordering::Relaxed);
                        s.seen_at(at);
                    }
                    *s.watched.lock() = Some((i, asking.clone()));
                }
                None => return,
            }
            let mut messages = pubsub.on_message();
            loop {
                let message = match tokio::time::timeout(SENTINEL_CHECK, messages.next()).await {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    // Silent: is it still there? (Only whether it answers:
                    // what a lone Sentinel says of the master is not
                    // followed without its announcement.)
                    Err(_) if alive(&mut asking).await => continue,
                    Err(_) => {
                        tracing::debug!(%host, port, "the Sentinel watched does not answer: left");
                        break;
                    }
                };
                let Some(s) = sentinels.upgrade() else {
                    return;
                };
                let payload: String = message.get_payload().unwrap_or_default();
                // `<name> <old-ip> <old-port> <new-ip> <new-port>`
                let words: Vec<&str> = payload.split(' ').collect();
                if let [name, _, _, ip, port] = words[..]
                    && name == s.master
                    && let Ok(port) = port.parse()
                {
                    s.seen_at((ip.to_owned(), port));
                }
            }
            match sentinels.upgrade() {
                Some(s) => *s.watched.lock() = None,
                None => return,
            }
        }
        if sentinels.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}

/// Whether the Sentinel behind `conn` answers a `PING` within
/// [`SENTINEL_TIMEOUT`].
async fn alive(conn: &mut redis::aio::MultiplexedConnection) -> bool {
    let ping = redis::cmd("PING");
    let answer = tokio::time::timeout(SENTINEL_TIMEOUT, ping.query_async::<String>(conn));
    matches!(answer.await, Ok(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::Sentinel;

    #[test]
    fn a_sentinel_is_host_port_or_a_url_and_its_password_stays_hidden() {
        let plain = Sentinel::parse("127.0.0.1:26379").unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("127.0.0.1", 26379));
        assert_eq!(plain.login.password(), None);

        let login = Sentinel::parse("redis://watcher:pa55@sentinel-1:26380").unwrap();
        assert_eq!((login.host.as_str(), login.port), ("sentinel-1", 26380));
        assert_eq!(login.login.username(), Some("watcher"));
        assert_eq!(login.login.password(), Some("pa55"));
        let shown = format!("{login:?}");
        assert!(
            !shown.contains("pa55") && shown.contains("<redacted>"),
            "{shown}"
        );

        let tls = Sentinel::parse("rediss://:pa55@sentinel-1:26380").unwrap();
        assert!(tls.tls && !login.tls);
        assert_eq!(tls.login.password(), Some("pa55"));

        for wrong in [
            "sentinel-1",
            "sentinel-1:port",
            "http://:pa55@sentinel-1:26380",
            "rediss://:pa55@sentinel-1:26380#insecure",
        ] {
            let e = Sentinel::parse(wrong).unwrap_err().to_string();
            assert!(e.contains("Sentinel"), "{wrong}: {e}");
            assert!(!e.contains("pa55"), "{e}");
        }
    }
}
