//! [`Sentinel`]: one Sentinel of a master, where it is and how to log in,
//! and the connections to it (questions, subscriptions).

use super::RedisError;
use connpool_tcp::Destination;
use connpool_tcp::transport::{Stream, Transport};

/// One Sentinel: where it is, whether it speaks TLS, and the login it asks
/// for (a Sentinel with `requirepass`, or an ACL user). Its `Debug` shows
/// no password.
#[derive(Clone)]
pub(crate) struct Sentinel {
    pub(super) host: String,
    pub(super) port: u16,
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
    pub(crate) fn parse(s: &str) -> Result<Sentinel, RedisError> {
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
    pub(super) async fn connection(
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
    pub(super) async fn subscription(
        &self,
        transport: &Transport,
    ) -> Result<redis::aio::PubSub, String> {
        let stream = self.stream(transport).await?;
        redis::aio::PubSub::new(&self.login, stream)
            .await
            .map_err(|e| e.to_string())
    }
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
