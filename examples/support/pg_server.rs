//! A throwaway PostgreSQL server for the `postgres` tests and example.
//!
//! [`shared`] gives the server named by `DATABASE_URL` if it is set, else a
//! throwaway server shared by the tests of one test binary: started on first
//! use, stopped (`pg_ctl stop -m immediate`) when the last [`PgServer`]
//! handle drops — also when a test panics, since `Drop` runs on unwind. A
//! watchdog process stops it and removes its files if the test process dies
//! without unwinding (killed, `abort`). [`kept`] is [`shared`] for a whole
//! test binary: its throwaway server stays up until the process exits, and
//! the watchdog stops it then. [`dedicated`] starts a server of its own, for
//! tests that stop and restart it.
//!
//! The throwaway server: the PostgreSQL binaries of
//! `/usr/lib/postgresql/15/bin`, else `pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/*/bin`, else `initdb` on `PATH`; a data directory in
//! a temporary directory; trust authentication, superuser `postgres`;
//! listening on 127.0.0.1 only, on a free port, with its Unix socket in the
//! temporary directory; durability off (`fsync`, `synchronous_commit`,
//! `full_page_writes`). `initdb` and `pg_ctl` refuse to run as root: as root
//! they run as the `postgres` user (`runuser`, else `su`).
//!
//! When no server can be started: with `CI=true` it panics with what is
//! missing; otherwise it prints a skip message naming what to install and
//! returns `None`, and the test returns early.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};

// Streaming replication: standbys, promotion.
#[path = "pg_standby.rs"]
mod standby;
// PgBouncer in front.
#[path = "pg_bouncer.rs"]
mod bouncer;
// Finding the binaries, starting a throwaway server, its watchdog.
#[path = "pg_throwaway.rs"]
mod throwaway;
#[allow(unused_imports)]
pub use bouncer::PgBouncer;
use throwaway::*;

/// A PostgreSQL server for a test: an external one (`DATABASE_URL`) or a
/// throwaway one this process started (stopped when this drops).
pub struct PgServer {
    config: Config,
    url: String,
    owned: Option<Owned>,
}

/// A server this process started.
struct Owned {
    /// Holds the data directory, the socket and the log; removed on drop.
    dir: tempfile::TempDir,
    data: PathBuf,
    log: PathBuf,
    bin: PathBuf,
    version: String,
    port: u16,
    as_postgres: Option<RunAs>,
    watchdog: Option<Child>,
}

/// How to run a command as the `postgres` user (we are root).
#[derive(Clone)]
enum RunAs {
    Runuser(PathBuf),
    Su(PathBuf),
}

/// The shared server of this process, while some test holds it.
static SHARED: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());

/// The server named by `DATABASE_URL`, else the throwaway server shared by
/// this process's tests (started if none runs). `None` (after printing why)
/// if none can be started; panics instead when `CI=true`.
pub fn shared() -> Option<Arc<PgServer>> {
    if let Some(server) = from_env() {
        return Some(Arc::new(server));
    }
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = slot.upgrade() {
        return Some(server);
    }
    let server = Arc::new(start_throwaway()?);
    *slot = Arc::downgrade(&server);
    Some(server)
}

/// Like [`shared`], but a throwaway server, once started, stays up until
/// this process exits; then its watchdog stops it and removes its files. For
/// a test binary whose tests, run one after another, would each start a
/// server of their own (a second or two each) whenever none of the others
/// happens to hold one. (Without a watchdog, as [`shared`].)
pub fn kept() -> Option<Arc<PgServer>> {
    static KEPT: Mutex<Option<Arc<PgServer>>> = Mutex::new(None);
    let server = shared()?;
    if server.owned.as_ref().is_some_and(|o| o.watchdog.is_some()) {
        *KEPT.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&server));
    }
    Some(server)
}

/// A throwaway server for this caller alone (to stop and restart), even
/// when `DATABASE_URL` is set. `None` (after printing why) if none can be
/// started; panics instead when `CI=true` and `DATABASE_URL` is unset.
pub fn dedicated() -> Option<Arc<PgServer>> {
    if std::env::var_os("DATABASE_URL").is_some() && find_bin().is_none() {
        skip(
            "this test stops and restarts a PostgreSQL server of its own; DATABASE_URL is set \
             but no local PostgreSQL binaries were found (`apt-get install postgresql`)",
        );
        return None;
    }
    start_throwaway().map(Arc::new)
}

fn from_env() -> Option<PgServer> {
    let url = std::env::var("DATABASE_URL").ok()?;
    let config: Config = url.parse().unwrap_or_else(|e| {
        panic!("DATABASE_URL ({url}) is not a PostgreSQL connection string: {e}")
    });
    Some(PgServer {
        config,
        url,
        // Not this process's to stop.
        owned: None,
    })
}

/// Skips (prints why, `None`) or, with `CI=true`, panics.
fn unavailable<T>(missing: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but no PostgreSQL server can be started for the postgres tests: {missing}. \
             Install it (`apt-get install postgresql`) or set DATABASE_URL."
        );
    }
    skip(&format!(
        "cannot start a throwaway PostgreSQL server: {missing}. Install PostgreSQL (`apt-get install postgresql`) \
         or set DATABASE_URL=postgresql://user@host/db"
    ));
    None
}

/// Prints a skip message past the test harness's output capture.
fn skip(why: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("main");
    let _ = writeln!(std::io::stderr(), "SKIPPED {name}: {why}");
}

impl PgServer {
    /// A superuser connection configuration (database `postgres` on a
    /// throwaway server, or `DATABASE_URL`'s).
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    /// The connection string of [`config`](PgServer::config).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this process started the server (so it may stop it).
    pub fn is_throwaway(&self) -> bool {
        self.owned.is_some()
    }

    /// One line saying which server this is.
    pub fn describe(&self) -> String {
        match &self.owned {
            // Not the URL itself: it may hold a password.
            None => format!(
                "the PostgreSQL server of DATABASE_URL ({:?}, port {:?}, database {:?})",
                self.config.get_hosts(),
                self.config.get_ports(),
                self.config.get_dbname()
            ),
            Some(o) => format!(
                "a throwaway {} on 127.0.0.1:{} (data in {}, binaries in {})",
                o.version,
                o.port,
                o.data.display(),
                o.bin.display()
            ),
        }
    }

    /// A direct client (not pooled) to the server's database.
    pub async fn client(&self) -> Client {
        self.client_with(self.config()).await
    }

    /// A direct client with `config`.
    pub async fn client_with(&self, config: Config) -> Client {
        let (client, connection) = config
            .connect(NoTls)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.describe()));
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// Stops the throwaway server (`pg_ctl stop -m fast`): sessions are
    /// terminated, new connections refused. Blocking.
    pub fn stop(&self) {
        let o = self.owned();
        let out = o.pg_ctl(&["-D", path(&o.data), "-m", "fast", "-w", "-t", "30", "stop"]);
        check(&out, "pg_ctl stop", o);
    }

    /// Starts the stopped throwaway server again, on the same port. Blocking.
    pub fn start(&self) {
        let o = self.owned();
        let out = o.start_cmd();
        check(&out, "pg_ctl start", o);
    }

    /// Sends `signal` (`"STOP"`, `"CONT"`) to every process of the
    /// throwaway server: `STOP` freezes it whole (the kernel still accepts
    /// connections and acknowledges what clients send; nothing answers),
    /// `CONT` thaws it. The postmaster is stopped first (it forks nothing
    /// more) and continued last. Blocking.
    pub fn signal_all(&self, signal: &str) {
        let o = self.owned();
        let pid = std::fs::read_to_string(o.data.join("postmaster.pid"))
            .expect("postmaster.pid of a running server");
        let postmaster = pid
            .lines()
            .next()
            .expect("the postmaster's pid")
            .trim()
            .to_owned();
        let children = || {
            let out = Command::new("pgrep")
                .args(["-P", &postmaster])
                .output()
                .expect("pgrep (procps)");
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let kill = |pids: &[String]| {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .args(pids)
                .status()
                .expect("kill");
            assert!(status.success(), "kill -{signal} {pids:?}");
        };
        let postmaster = [postmaster.clone()];
        if signal == "STOP" {
            kill(&postmaster);
            kill(&children());
        } else {
            kill(&children());
            kill(&postmaster);
        }
    }

    /// `pg_ctl restart -m fast`. Blocking.
    pub fn restart(&self) {
        let o = self.owned();
        let out = o.pg_ctl(&[
            "-D",
            path(&o.data),
            "-l",
            path(&o.log),
            "-m",
            "fast",
            "-w",
            "-t",
            "30",
            "restart",
        ]);
        check(&out, "pg_ctl restart", o);
    }

    /// Makes `role` log in over TCP with a password (`scram-sha-256`) on
    /// the throwaway server: a rule for it alone goes first in `pg_hba.conf`
    /// (the other roles keep trust authentication). Takes effect at the next
    /// `SELECT pg_reload_conf()`.
    pub fn require_password(&self, role: &str) {
        let o = self.owned();
        let hba = o.data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba)
            .unwrap_or_else(|e| panic!("reading {}: {e}", hba.display()));
        let rule = format!("host all {role} 127.0.0.1/32 scram-sha-256\n");
        if !rules.starts_with(&rule) {
            std::fs::write(&hba, format!("{rule}{rules}"))
                .unwrap_or_else(|e| panic!("writing {}: {e}", hba.display()));
        }
    }

    /// Turns TLS on for the throwaway server with this certificate (chain)
    /// and key, in PEM: written into the data directory, owned by the
    /// server's user, the key readable by it alone; `ssl = on` through
    /// `ALTER SYSTEM` and a reload.
    pub async fn enable_ssl(&self, cert_pem: &str, key_pem: &str) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let o = self.owned();
        let meta = std::fs::metadata(&o.data).expect("the data directory");
        for (name, contents, mode) in [
            ("server.crt", cert_pem, 0o644),
            ("server.key", key_pem, 0o600),
        ] {
            let file = o.data.join(name);
            std::fs::write(&file, contents)
                .unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            std::os::unix::fs::chown(&file, Some(meta.uid()), Some(meta.gid())).unwrap();
        }
        let client = self.client().await;
        client
            .batch_execute("ALTER SYSTEM SET ssl = on")
            .await
            .unwrap();
        let reloaded = client
            .query_one("SELECT pg_reload_conf()", &[])
            .await
            .unwrap();
        assert!(reloaded.get::<_, bool>(0));
    }

    fn owned(&self) -> &Owned {
        self.owned
            .as_ref()
            .expect("only a throwaway server can be stopped or restarted")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(o) = &mut self.owned {
            let _ = o.pg_ctl(&["-D", path(&o.data), "-m", "immediate", "-w", "stop"]);
            if let Some(mut watchdog) = o.watchdog.take() {
                let _ = watchdog.kill();
                let _ = watchdog.wait();
            }
        }
    }
}

/// The superuser's configuration for the `postgres` database through
/// `at` (a proxy in front of a throwaway server), its sessions named
/// `application` (to find them in `pg_stat_activity`).
pub fn through(at: std::net::SocketAddr, application: &str) -> Config {
    let mut config = Config::new();
    config
        .host(at.ip().to_string())
        .port(at.port())
        .user("postgres")
        .dbname("postgres")
        .application_name(application)
        .connect_timeout(Duration::from_secs(5));
    config
}
