//! Streaming replication between throwaway servers, for the failover
//! tests: a standby of a running server (`pg_basebackup -R`), its
//! promotion, and a stopped former primary started again as a standby of
//! the new one (as Patroni demotes it after a switchover).

use std::os::unix::fs::MetadataExt;

use super::*;

impl PgServer {
    /// A streaming standby of this throwaway server: a base backup of it
    /// (`pg_basebackup -R`, which writes `standby.signal` and
    /// `primary_conninfo`) in a temporary directory of its own, started
    /// on a free port. Stopped when it drops, as the primary is. Blocking.
    pub fn standby(&self) -> PgServer {
        let primary = self.owned();
        let dir = tempfile::Builder::new()
            .prefix("connpool-pg-standby-")
            .tempdir()
            .expect("creating a temporary directory");
        let owner = std::fs::metadata(primary.dir.path()).expect("the primary's directory");
        std::os::unix::fs::chown(dir.path(), Some(owner.uid()), Some(owner.gid()))
            .expect("handing the temporary directory to the server's user");
        let mut owned = Owned {
            data: dir.path().join("data"),
            log: dir.path().join("server.log"),
            dir,
            bin: primary.bin.clone(),
            version: primary.version.clone(),
            port: 0,
            as_postgres: primary.as_postgres.clone(),
            watchdog: None,
        };
        owned.watchdog = spawn_watchdog(&owned);
        let port = primary.port.to_string();
        let out = owned.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                path(&owned.data),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        check(&out, "pg_basebackup", &owned);
        owned.start_on_a_free_port();
        owned.serving()
    }

    /// Promotes this standby to a primary (`pg_ctl promote -w`): it
    /// accepts writes when this returns. Blocking.
    pub fn promote(&self) {
        let o = self.owned();
        let out = o.pg_ctl(&["-D", path(&o.data), "-w", "-t", "30", "promote"]);
        check(&out, "pg_ctl promote", o);
    }

    /// Starts this stopped server again as a standby of `primary`
    /// (`standby.signal`, `primary_conninfo`): a former primary demoted
    /// after a switchover. Blocking.
    pub fn start_as_standby_of(&self, primary: &PgServer) {
        let o = self.owned();
        let owner = std::fs::metadata(&o.data).expect("the data directory");
        let conninfo = format!(
            "\nprimary_conninfo = 'host=127.0.0.1 port={} user=postgres'\n",
            primary.owned().port
        );
        let auto = o.data.join("postgresql.auto.conf");
        let mut settings = std::fs::read_to_string(&auto).unwrap_or_default();
        settings.push_str(&conninfo);
        let signal = o.data.join("standby.signal");
        for (file, contents) in [(&auto, settings.as_str()), (&signal, "")] {
            std::fs::write(file, contents)
                .unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
            std::os::unix::fs::chown(file, Some(owner.uid()), Some(owner.gid()))
                .expect("handing the file to the server's user");
        }
        self.start();
    }
}
