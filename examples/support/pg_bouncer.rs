//! A throwaway PgBouncer in front of a throwaway server, for the
//! transaction-pooling tests: Debian's `pgbouncer` (CI installs it), run
//! as the server's user, on a free port, in a temporary directory of its
//! own, stopped when its handle drops.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;

use super::*;

/// Where Debian's package puts it.
const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

/// A PgBouncer this process started (stopped when this drops).
pub struct PgBouncer {
    port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PgServer {
    /// A PgBouncer in front of this throwaway server's `postgres`
    /// database, in transaction mode (`pool_mode = transaction`), with at
    /// most `server_connections` server connections; trust
    /// authentication. `None` (after printing why) if `pgbouncer` is not
    /// installed; panics instead when `CI=true`. Blocking.
    pub fn bouncer(&self, server_connections: usize) -> Option<PgBouncer> {
        if !Path::new(PGBOUNCER).is_file() {
            return unavailable_bouncer();
        }
        let server = self.owned();
        let dir = tempfile::Builder::new()
            .prefix("connpool-pgbouncer-")
            .tempdir()
            .expect("creating a temporary directory");
        let owner = std::fs::metadata(server.dir.path()).expect("the server's directory");
        let port = free_port();
        let d = path(dir.path());
        let ini = dir.path().join("pgbouncer.ini");
        let files = [
            (
                ini.clone(),
                format!(
                    "[databases]\npostgres = host=127.0.0.1 port={} dbname=postgres\n\
                     [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                     unix_socket_dir =\nauth_type = trust\nauth_file = {d}/userlist.txt\n\
                     pool_mode = transaction\ndefault_pool_size = {server_connections}\n\
                     max_client_conn = 500\nlogfile = {d}/pgbouncer.log\n\
                     pidfile = {d}/pgbouncer.pid\n",
                    server.port
                ),
            ),
            (
                dir.path().join("userlist.txt"),
                "\"postgres\" \"\"\n".to_owned(),
            ),
        ];
        for (file, contents) in &files {
            std::fs::write(file, contents)
                .unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
        }
        for file in [
            dir.path().to_path_buf(),
            files[0].0.clone(),
            files[1].0.clone(),
        ] {
            std::os::unix::fs::chown(&file, Some(owner.uid()), Some(owner.gid()))
                .expect("handing the file to the server's user");
        }
        let mut cmd = Command::new(PGBOUNCER);
        cmd.arg(&ini)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if server.as_postgres.is_some() {
            // PgBouncer refuses to run as root.
            cmd.uid(owner.uid()).gid(owner.gid());
        }
        let child = cmd.spawn().expect("starting pgbouncer");
        // One line or several: the tests' and the examples' rustfmt settings differ.
        #[rustfmt::skip]
        let bouncer = PgBouncer { port, child, log: dir.path().join("pgbouncer.log"), _dir: dir };
        bouncer.wait_until_listening();
        Some(bouncer)
    }
}

impl PgBouncer {
    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits (at most 10 s) until it accepts connections.
    fn wait_until_listening(&self) {
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "pgbouncer did not listen within 10 s:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Skips (prints why, `None`) or, with `CI=true`, panics.
fn unavailable_bouncer<T>() -> Option<T> {
    let missing = format!("no {PGBOUNCER} (`apt-get install pgbouncer`)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but PgBouncer is missing for the transaction-pooling tests: {missing}");
    }
    skip(&format!("cannot start PgBouncer: {missing}"));
    None
}
