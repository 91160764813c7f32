//! A throwaway redis-server for the `redis` tests and example: Debian's
//! `redis-server` on a free port of 127.0.0.1, its files in a temporary
//! directory, no persistence (`--save "" --appendonly no`), `DEBUG`
//! allowed (`--enable-debug-command yes`). Killed (`SIGKILL`) when dropped,
//! also when a test panics. [`RedisServer::kill`] and
//! [`RedisServer::start`] stop and start it again on the same port.
//!
//! When `redis-server` is missing: with `CI=true` it panics; otherwise it
//! prints a skip message naming what to install and returns `None`.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A redis-server this process started.
pub struct RedisServer {
    dir: tempfile::TempDir,
    port: u16,
    args: Vec<String>,
    child: Option<Child>,
    /// What its log says once it is ready.
    ready: &'static str,
}

// Sentinels.
#[path = "redis_sentinel.rs"]
mod sentinel;
#[allow(unused_imports)]
pub use sentinel::Fleet;

/// What a server's log says once it is ready.
const READY: &str = "Ready to accept connections";

/// How long a server may take to listen.
const STARTUP: Duration = Duration::from_secs(10);

impl RedisServer {
    /// A plain server; `None` (after saying why) if `redis-server` is missing.
    pub fn new() -> Option<RedisServer> {
        Self::with_args(&[])
    }

    /// A server with these extra arguments (`--requirepass`, …).
    pub fn with_args(extra: &[&str]) -> Option<RedisServer> {
        Self::start_with(extra, |_, _| Vec::new(), None)
    }

    /// A TLS-only server presenting `cert_pem` / `key_pem` (clients are not
    /// asked for a certificate).
    pub fn tls(cert_pem: &str, key_pem: &str, ca_pem: &str) -> Option<RedisServer> {
        Self::start_with(&[], Self::tls_args(cert_pem, key_pem, ca_pem), None)
    }

    /// The arguments of a TLS-only server (see [`tls`](RedisServer::tls)),
    /// its files written into its directory.
    fn tls_args(
        cert_pem: &str,
        key_pem: &str,
        ca_pem: &str,
    ) -> impl Fn(&std::path::Path, u16) -> Vec<String> {
        let (cert, key, ca) = (cert_pem.to_owned(), key_pem.to_owned(), ca_pem.to_owned());
        move |dir: &std::path::Path, port: u16| {
            let write = |name: &str, pem: &str| {
                let path = dir.join(name);
                std::fs::write(&path, pem).unwrap();
                path.to_string_lossy().into_owned()
            };
            vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.to_string(),
                "--tls-cert-file".into(),
                write("server.crt", &cert),
                "--tls-key-file".into(),
                write("server.key", &key),
                "--tls-ca-cert-file".into(),
                write("ca.crt", &ca),
                "--tls-auth-clients".into(),
                "no".into(),
            ]
        }
    }

    /// A server with `extra` arguments, then `more(dir, port)`'s; with
    /// `sentinel`, a Sentinel whose configuration file says that.
    fn start_with(
        extra: &[&str],
        more: impl Fn(&std::path::Path, u16) -> Vec<String>,
        sentinel: Option<&str>,
    ) -> Option<RedisServer> {
        let Some(bin) = find_bin() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but redis-server is missing: `apt-get install redis-server`");
            }
            eprintln!("skipped: redis-server is missing (`apt-get install redis-server`)");
            return None;
        };
        let mut dir = tempfile::tempdir().expect("a temporary directory");
        // A port found free may be taken before the server binds it (by a
        // server another test starts, or a connection's local port): then
        // the server says so and exits, and it gets another port.
        for _ in 0..3 {
            let port = free_port();
            let mut args = Self::args(&bin, dir.path(), port, extra, &more);
            let mut ready = READY;
            if let Some(conf) = sentinel {
                // The configuration file comes first; Sentinel rewrites it.
                let path = dir.path().join("sentinel.conf");
                std::fs::write(&path, conf).unwrap();
                args.splice(
                    1..1,
                    [path.to_string_lossy().into_owned(), "--sentinel".into()],
                );
                ready = "+monitor master";
            }
            #[rustfmt::skip]
            let mut server = RedisServer { dir, port, args, child: None, ready };
            match server.try_start() {
                Ok(()) => return Some(server),
                Err(log) if log.contains("Address already in use") => dir = server.into_dir(),
                Err(log) => panic!("redis-server did not start: {log}"),
            }
        }
        panic!("redis-server found its port taken three times")
    }

    fn args(
        bin: &std::path::Path,
        dir: &std::path::Path,
        port: u16,
        extra: &[&str],
        more: &impl Fn(&std::path::Path, u16) -> Vec<String>,
    ) -> Vec<String> {
        let mut args: Vec<String> = vec![
            bin.to_string_lossy().into_owned(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--enable-debug-command".into(),
            "yes".into(),
            "--dir".into(),
            dir.to_string_lossy().into_owned(),
            "--logfile".into(),
            dir.join("redis.log").to_string_lossy().into_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(more(dir, port));
        args
    }

    /// Starts the server (again) on its port; returns once it is ready.
    pub fn start(&mut self) {
        if let Err(log) = self.try_start() {
            panic!("redis-server did not start: {log}");
        }
    }

    /// Starts the server on its port and waits until it says it is ready
    /// (its log, not just an open port: another process may hold the
    /// port); `Err(log)` if it exits first.
    fn try_start(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "redis-server already runs");
        let log_before = self.log().len();
        let child = Command::new(&self.args[0])
            .args(&self.args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("exited ({status}): {}", self.log()));
            }
            let log = self.log();
            if log
                .get(log_before..)
                .is_some_and(|new| new.contains(self.ready))
                && TcpStream::connect(self.addr()).is_ok()
            {
                return Ok(());
            }
            assert!(start.elapsed() < STARTUP, "redis-server not ready: {log}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Its temporary directory, for another try (the server has exited).
    fn into_dir(mut self) -> tempfile::TempDir {
        self.kill();
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::mem::replace(&mut self.dir, dir)
    }

    /// Kills the server (`SIGKILL`: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends the server `signal` (`"STOP"`: frozen, the kernel still
    /// accepts and acknowledges; `"CONT"`: running again).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server runs").id();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:port` + `rest` (a path, a query).
    pub fn url(&self, rest: &str) -> String {
        format!("redis://127.0.0.1:{}{rest}", self.port)
    }

    /// The server's log, for a failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// A connection of its own, outside any pool, for looking at the server
    /// (`CLIENT LIST`, `CLIENT KILL`).
    pub async fn observer(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url(""))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("an observer connection")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn find_bin() -> Option<PathBuf> {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A port free now and never handed out before in this process: a server
/// stopped for a while keeps its port, which no other test may take.
fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The clients the server has of type `normal`, as `CLIENT LIST` lines,
/// without the observer's own.
pub async fn clients(observer: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let me: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(observer)
        .await
        .unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("normal")
        .query_async(observer)
        .await
        .unwrap();
    list.lines()
        .filter(|l| !l.starts_with(&format!("id={me} ")))
        .map(str::to_owned)
        .collect()
}
