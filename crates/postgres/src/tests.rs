//! How a key's configuration is made from the base, and what `Debug` and
//! `Display` never show.

use std::time::Duration;

use tokio_postgres::Config;
use tokio_postgres::config::{ChannelBinding, Host, LoadBalanceHosts, SslMode, TargetSessionAttrs};

use super::{PgKey, PostgresManager};

fn full_config() -> Config {
    let mut c = Config::new();
    c.host("db1.example")
        .host("db2.example")
        .port(6543)
        .user("alice")
        .password("secret")
        .dbname("app")
        .options("-c statement_timeout=5s")
        .application_name("svc")
        .ssl_mode(SslMode::Disable)
        .connect_timeout(Duration::from_secs(3))
        .tcp_user_timeout(Duration::from_secs(4))
        .keepalives(false)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(6))
        .keepalives_retries(7)
        .target_session_attrs(TargetSessionAttrs::ReadWrite)
        .channel_binding(ChannelBinding::Disable)
        .load_balance_hosts(LoadBalanceHosts::Random);
    c
}

#[test]
fn base_key_uses_the_base_config_as_given() {
    let m = PostgresManager::new(full_config());
    let key = m.key();
    assert_eq!(
        key,
        PgKey {
            host: "db1.example".into(),
            port: 6543,
            dbname: Some("app".into()),
            user: Some("alice".into()),
        }
    );
    assert_eq!(m.config_for(&key), full_config());
}

#[test]
fn other_database_keeps_every_base_setting() {
    let m = PostgresManager::new(full_config());
    let mut expected = full_config();
    expected.dbname("reports").user("bob");
    let key = m.key().with_dbname("reports").with_user("bob");
    assert_eq!(m.config_for(&key), expected);
}

#[test]
fn other_server_replaces_the_hosts() {
    let m = PostgresManager::new(full_config());
    let key = PgKey {
        host: "/run/postgresql".into(),
        port: 5433,
        dbname: None,
        user: None,
    };
    let c = m.config_for(&key);
    assert_eq!(c.get_hosts(), &[Host::Unix("/run/postgresql".into())]);
    assert_eq!(c.get_ports(), &[5433]);
    assert_eq!(c.get_dbname(), None);
    assert_eq!(c.get_user(), None);
    assert_eq!(c.get_password(), Some(&b"secret"[..]));
    assert_eq!(c.get_application_name(), Some("svc"));
    assert_eq!(c.get_keepalives_retries(), Some(7));
}

#[test]
fn no_host_means_localhost() {
    let m: PostgresManager = "user=postgres".parse().unwrap();
    let key = m.key();
    assert_eq!((key.host.as_str(), key.port), ("localhost", 5432));
    let c = m.config_for(&key);
    assert_eq!(c.get_hosts(), &[Host::Tcp("localhost".into())]);
    let c = m.config_for(&key.with_dbname("other"));
    assert_eq!(c.get_hosts(), &[Host::Tcp("localhost".into())]);
    assert_eq!(c.get_dbname(), Some("other"));
}

#[test]
fn no_password_in_debug() {
    for dsn in [
        "host=h user=u password=s3cr3t dbname=d",
        "postgresql://u:s3cr3t@h/d",
        "host=h password='s3cr3t' options='-c search_path=x'",
    ] {
        let m: PostgresManager = dsn.parse().unwrap();
        let shown = format!("{m:?} {:?}", m.clone().single());
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
    for bad in [
        "host=h password=my s3cr3t=x",
        "host=h password='s3cr3t",
        "host=h password=s3cr3t port=x",
    ] {
        let e = bad.parse::<PostgresManager>().unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("invalid connection string"), "{shown}");
    }
}

#[test]
fn hostaddr_only_base() {
    let m: PostgresManager = "hostaddr=127.0.0.1 port=5999 user=u".parse().unwrap();
    let key = m.key();
    assert_eq!((key.host.as_str(), key.port), ("127.0.0.1", 5999));
    let c = m.config_for(&key.with_dbname("d"));
    assert!(c.get_hosts().is_empty());
    assert_eq!(
        c.get_hostaddrs(),
        &["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(c.get_ports(), &[5999]);
}

#[test]
fn the_drivers_keepalive_defaults_give_way_to_the_crates() {
    let m = PostgresManager::new(Config::new());
    let c = m.config();
    assert!(c.get_keepalives());
    assert_eq!(c.get_keepalives_idle(), Duration::from_secs(60));
    assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(10)));
    assert_eq!(c.get_keepalives_retries(), Some(3));
    assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_secs(90)));
    // Every key's configuration has them.
    let other = m.config_for(&m.key().with_dbname("other"));
    assert_eq!(other.get_tcp_user_timeout(), Some(&Duration::from_secs(90)));

    // What a configuration sets is kept; a user timeout follows its probes.
    let mut own = Config::new();
    own.keepalives_idle(Duration::from_secs(30));
    let c = PostgresManager::new(own).config().clone();
    assert_eq!(c.get_keepalives_idle(), Duration::from_secs(30));
    assert_eq!(c.get_keepalives_interval(), None);
    assert_eq!(
        c.get_tcp_user_timeout(),
        Some(&Duration::from_secs(30 + 75 * 9)),
        "the system's interval and count"
    );
    let mut off = Config::new();
    off.keepalives(false);
    assert_eq!(
        PostgresManager::new(off).config().get_tcp_user_timeout(),
        None
    );
}

/// Unset, a PostgreSQL pool's `max_open` is twice the CPUs (a server takes
/// 100 connections for all its clients), keyed or `single()`; set, it is
/// what was set. (Building dials nothing.)
#[tokio::test]
async fn a_pools_default_size_is_twice_the_cpus_unless_set() {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let manager: PostgresManager = "host=127.0.0.1 user=app".parse().unwrap();
    let keyed = connpool_core::Pool::builder(manager.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(keyed.limits().max_open, 2 * cpus);
    let single = connpool_core::Pool::builder(manager.clone().single())
        .build()
        .await
        .unwrap();
    assert_eq!(single.limits().max_open, 2 * cpus);
    let set = connpool_core::Pool::builder(manager)
        .max_open(50)
        .build()
        .await
        .unwrap();
    assert_eq!(set.limits().max_open, 50);
}
