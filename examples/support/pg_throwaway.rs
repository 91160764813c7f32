//! Starting a throwaway server: its binaries found, its data directory
//! made, the commands run as the `postgres` user where we are root, and
//! the watchdog that stops it if the process dies without unwinding.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::*;

pub(super) fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

pub(super) fn check(out: &Output, what: &str, o: &Owned) {
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}{}\n--- server log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&o.log).unwrap_or_default()
        );
    }
}

impl Owned {
    /// Runs `bin/<program> args` as the server's owner, in the temporary
    /// directory; captures its output.
    pub(super) fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = command_as(self.as_postgres.as_ref(), &exe, args);
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()))
    }

    pub(super) fn pg_ctl(&self, args: &[&str]) -> Output {
        self.run("pg_ctl", args)
    }

    pub(super) fn start_cmd(&self) -> Output {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c shared_buffers=16MB -c max_connections=80",
            self.port,
            path(self.dir.path())
        );
        self.pg_ctl(&[
            "-D",
            path(&self.data),
            "-l",
            path(&self.log),
            "-w",
            "-t",
            "30",
            "-o",
            &opts,
            "start",
        ])
    }
}

/// `exe args`, as `postgres` if `as_postgres` says how.
pub(super) fn command_as(as_postgres: Option<&RunAs>, exe: &Path, args: &[&str]) -> Command {
    match as_postgres {
        None => {
            let mut cmd = Command::new(exe);
            cmd.args(args);
            cmd
        }
        Some(RunAs::Runuser(runuser)) => {
            let mut cmd = Command::new(runuser);
            cmd.args(["-u", "postgres", "--"]).arg(exe).args(args);
            cmd
        }
        Some(RunAs::Su(su)) => {
            let line = std::iter::once(path(exe))
                .chain(args.iter().copied())
                .map(sh_quote)
                .collect::<Vec<_>>()
                .join(" ");
            let mut cmd = Command::new(su);
            cmd.args(["postgres", "-s", "/bin/sh", "-c", &line]);
            cmd
        }
    }
}

pub(super) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The directory of `initdb`, `pg_ctl` and `postgres`.
pub(super) fn find_bin() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let debian15 = PathBuf::from("/usr/lib/postgresql/15/bin");
    if has(&debian15) {
        return Some(debian15);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has(&dir) {
            return Some(dir);
        }
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                has(&bin).then_some((v, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Some(bin);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|dir| has(dir))
            .map(|dir| {
                // A symlink farm (/usr/local/bin) points at the real directory.
                std::fs::canonicalize(dir.join("initdb"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .filter(|d| has(d))
                    .unwrap_or(dir)
            })
    })
}

pub(super) fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

pub(super) fn first_file(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// A port nothing listens on right now (bound and released).
pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

pub(super) fn start_throwaway() -> Option<PgServer> {
    let Some(bin) = find_bin() else {
        return unavailable(
            "no server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin, \
             `pg_config --bindir` or PATH",
        );
    };
    let as_postgres = if id(&["-u"]) == Some(0) {
        let Some(uid) = id(&["-u", "postgres"]) else {
            return unavailable(
                "running as root, and initdb refuses root, but there is no `postgres` user to run it as",
            );
        };
        let gid = id(&["-g", "postgres"]).expect("the postgres user has a group");
        let run_as = if let Some(runuser) =
            first_file(&["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"])
        {
            RunAs::Runuser(runuser)
        } else if let Some(su) = first_file(&["/usr/bin/su", "/bin/su"]) {
            RunAs::Su(su)
        } else {
            return unavailable(
                "running as root, and neither `runuser` nor `su` is there to run initdb as postgres",
            );
        };
        Some((run_as, uid, gid))
    } else {
        None
    };

    let dir = tempfile::Builder::new()
        .prefix("connpool-pg-")
        .tempdir()
        .expect("creating a temporary directory");
    if let Some((_, uid, gid)) = &as_postgres {
        std::os::unix::fs::chown(dir.path(), Some(*uid), Some(*gid))
            .expect("handing the temporary directory to the postgres user");
    }
    let version = Command::new(bin.join("pg_ctl"))
        .arg("--version")
        .output()
        .map(|o| {
            let v = String::from_utf8_lossy(&o.stdout);
            let v = v.trim().trim_start_matches("pg_ctl (PostgreSQL) ");
            format!("PostgreSQL {v}")
        })
        .unwrap_or_else(|_| "PostgreSQL".to_owned());
    let mut owned = Owned {
        data: dir.path().join("data"),
        log: dir.path().join("server.log"),
        dir,
        bin,
        version,
        port: 0,
        as_postgres: as_postgres.map(|(r, _, _)| r),
        watchdog: None,
    };

    // First, so that no exit leaves a server behind, even mid-start.
    owned.watchdog = spawn_watchdog(&owned);
    let out = owned.run(
        "initdb",
        &[
            "-D",
            path(&owned.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
    );
    check(&out, "initdb", &owned);
    owned.start_on_a_free_port();
    Some(owned.serving())
}

impl Owned {
    /// Starts the server on a free port. A free port can be taken between
    /// its probe and the server's bind: tries a few.
    pub(super) fn start_on_a_free_port(&mut self) {
        let mut last = None;
        for _ in 0..5 {
            self.port = free_port();
            let out = self.start_cmd();
            if out.status.success() {
                return;
            }
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if !log.contains("could not bind") && !log.contains("already in use") {
                check(&out, "pg_ctl start", self);
            }
            last = Some(out);
        }
        if let Some(out) = last {
            check(&out, "pg_ctl start (5 ports tried)", self);
        }
    }

    /// The server this started, as a [`PgServer`].
    pub(super) fn serving(self) -> PgServer {
        let owned = self;
        let mut config = Config::new();
        config
            .host("127.0.0.1")
            .port(owned.port)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(5));
        let url = format!("postgresql://postgres@127.0.0.1:{}/postgres", owned.port);
        PgServer {
            config,
            url,
            // Stopped when the last handle drops, else by the watchdog.
            owned: Some(owned),
        }
    }
}

/// A process that stops the server and removes its files once this process
/// is gone, for exits that skip `Drop` (SIGKILL, abort). Killed by `Drop`.
/// (A server still starting then fails without its data directory, or
/// exits at its next lock-file check.)
pub(super) fn spawn_watchdog(o: &Owned) -> Option<Child> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    // Repeated a few times: an initdb or pg_ctl start that outlived us
    // may recreate the directory or start the server late.
    let script = r#"pid=$0; dir=$1; shift
while [ -d "/proc/$pid" ]; do sleep 0.5; done
for i in 1 2 3 4 5; do
  "$@" >/dev/null 2>&1
  rm -rf "$dir"
  sleep 1
done"#;
    let stop = command_as(
        o.as_postgres.as_ref(),
        &o.bin.join("pg_ctl"),
        &["-D", path(&o.data), "-m", "immediate", "stop"],
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(script)
        .arg(std::process::id().to_string())
        .arg(o.dir.path())
        .arg(stop.get_program())
        .args(stop.get_args())
        .current_dir(o.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().ok()
}
