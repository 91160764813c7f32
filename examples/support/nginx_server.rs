//! A throwaway nginx (Debian's `nginx` package) for the HTTP/1.1 tests and
//! benchmarks: its own temp dir and config, a free port on 127.0.0.1,
//! `daemon off` and `master_process off` (one process, killed on drop),
//! `access_log off`, and `stub_status` at `/status`, whose "accepts" count
//! tells how many connections clients opened.
//!
//! Where nginx is not installed the tests that need it skip with a note,
//! except under `CI=true`, where they fail (CI installs it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The binary Debian installs.
const NGINX: &str = "/usr/sbin/nginx";

/// A running nginx, killed on drop.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    /// `/status` requests made (each opened a connection of its own).
    status_calls: AtomicU64,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx with `directives` in its `server` block (for example
    /// `keepalive_timeout 200ms;`), answering `/` with `200 ok` and
    /// `/status` with its `stub_status`. `None`
    /// (with a note) if nginx is not installed and `CI` is not `true`.
    pub fn start(directives: &str) -> Option<Nginx> {
        if !Path::new(NGINX).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{NGINX} is missing: CI installs Debian's nginx package"
            );
            eprintln!("skipped: {NGINX} is missing (apt-get install nginx)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let d = dir.path().display();
        let config = format!(
            "worker_processes 1;
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        {directives}
        location = /status {{ stub_status; }}
        location / {{ default_type text/plain; return 200 \"ok\\n\"; }}
    }}
}}
"
        );
        std::fs::write(dir.path().join("nginx.conf"), config).expect("writing nginx.conf");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let nginx = Nginx {
            child: spawn(dir.path()),
            addr,
            // Each `/status` request, the start-up's too, is a connection.
            status_calls: AtomicU64::new(0),
            _dir: dir,
        };
        nginx.wait_up();
        Some(nginx)
    }

    /// Kills nginx with `SIGKILL` (the kernel closes its sockets; nginx
    /// says nothing).
    #[allow(dead_code)]
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends nginx `signal` (`"STOP"`: frozen, the kernel still accepts
    /// and acknowledges; `"CONT"`: running again).
    #[allow(dead_code)]
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Starts a killed nginx again on its port, with its configuration,
    /// and returns once it answers; its `accepted` count starts again
    /// from 0.
    #[allow(dead_code)]
    pub fn restart(&mut self) {
        self.child = spawn(self._dir.path());
        self.status_calls.store(0, Ordering::Relaxed);
        self.wait_up();
    }

    /// Returns once the status page answers (bounded: a broken config
    /// fails).
    fn wait_up(&self) {
        let start = Instant::now();
        while self.try_accepted().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx did not come up on {}: {}",
                self.addr,
                std::fs::read_to_string(self._dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Connections nginx accepted from clients other than these `/status`
    /// requests.
    #[allow(dead_code)]
    pub fn accepted(&self) -> u64 {
        self.try_accepted().expect("nginx status")
    }

    fn try_accepted(&self) -> Option<u64> {
        let mut stream = TcpStream::connect(self.addr).ok()?;
        let calls = self.status_calls.fetch_add(1, Ordering::Relaxed) + 1;
        stream
            .write_all(b"GET /status HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        // "server accepts handled requests\n A H R"
        let counts = text.lines().skip_while(|l| !l.contains("accepts")).nth(1)?;
        let accepts: u64 = counts.split_whitespace().next()?.parse().ok()?;
        Some(accepts - calls)
    }
}

/// nginx on the configuration in `dir`.
fn spawn(dir: &Path) -> Child {
    Command::new(NGINX)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting nginx")
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
