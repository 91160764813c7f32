//! A network namespace of a test's (or a fault benchmark's) own, for
//! faults the kernel cannot tell from a real network's: [`Netns`]. Everything the test runs is inside it
//! (its runtime's threads enter it, and so do the servers it starts, in
//! process or as child processes), on the namespace's own loopback; a
//! partition is an nftables rule in that namespace that drops every
//! packet to or from a port (no RST, no FIN: a silent network), and
//! healing deletes it. Nothing leaves the namespace, and the namespace is
//! removed when the value is dropped.
//!
//! Needs root (`ip netns`, `nft`): without it a test says why and passes,
//! except with `CI=true`, where it fails.

use std::fs::File;
use std::future::Future;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Netns {
    name: String,
    file: File,
}

/// Runs `ip` (or `nft` in the namespace) and says what failed.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// A new namespace with its loopback up; `None` (after saying why) if
    /// this machine cannot make one.
    pub fn new() -> Option<Arc<Netns>> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "connpool-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let made = run("ip", &["netns", "add", &name])
            .and_then(|()| {
                run(
                    "ip",
                    &["netns", "exec", &name, "ip", "link", "set", "lo", "up"],
                )
            })
            .and_then(|()| {
                let ns = Netns {
                    file: File::open(format!("/var/run/netns/{name}"))
                        .map_err(|e| format!("opening the namespace: {e}"))?,
                    name: name.clone(),
                };
                ns.nft(&["add", "table", "inet", "faults"])?;
                ns.nft(&[
                    "add",
                    "chain",
                    "inet",
                    "faults",
                    "input",
                    "{ type filter hook input priority 0; policy accept; }",
                ])?;
                Ok(ns)
            });
        match made {
            Ok(ns) => Some(Arc::new(ns)),
            Err(why) => {
                let _ = run("ip", &["netns", "del", &name]);
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!(
                        "CI=true but no network namespace could be made (root, iproute2 and nftables are needed): {why}"
                    );
                }
                eprintln!(
                    "skipped: no network namespace (root, iproute2 and nftables are needed): {why}"
                );
                None
            }
        }
    }

    fn nft(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", &self.name, "nft"];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Moves the calling thread into the namespace: the sockets it opens
    /// and the processes it starts from then on are in it.
    pub fn enter(&self) {
        #[cfg(target_os = "linux")]
        nix::sched::setns(&self.file, nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("entering the test's network namespace");
        // Elsewhere `new` made none (no `ip netns`).
        #[cfg(not(target_os = "linux"))]
        unreachable!("network namespaces are Linux's: {:?}", self.file);
    }

    /// Runs `test` on a two-worker runtime whose every thread is in the
    /// namespace (the calling thread too).
    pub fn run<F: Future>(self: &Arc<Self>, test: F) -> F::Output {
        self.enter();
        let ns = Arc::clone(self);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || ns.enter())
            .build()
            .unwrap()
            .block_on(test)
    }

    /// Every packet to or from `port` is dropped from now on, on live
    /// connections and new ones alike: a silent partition.
    pub fn partition(&self, port: u16) {
        self.partition_ports(&[port]);
    }

    /// [`partition`](Self::partition) of every port of `ports`, at one
    /// instant (one rule per direction).
    pub fn partition_ports(&self, ports: &[u16]) {
        let set = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        for dir in ["dport", "sport"] {
            self.nft(&[
                "add",
                "rule",
                "inet",
                "faults",
                "input",
                "tcp",
                dir,
                &format!("{{ {set} }}"),
                "drop",
            ])
            .unwrap();
        }
    }

    /// The partition ends: packets pass again.
    pub fn heal(&self) {
        self.nft(&["flush", "chain", "inet", "faults", "input"])
            .unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}
