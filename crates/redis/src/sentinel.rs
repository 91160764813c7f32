//! Redis behind Sentinel: the master's address asked of the Sentinels at
//! each dial, and every Sentinel's announcements followed (`watch`), so
//! that no command goes to the old master once a failover has started:
//! from its start until the new master is known, dials wait and
//! connections to the old master send nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::error::RedisError;
use connpool_tcp::transport::Transport;

mod server;
mod watch;

pub(super) use server::Sentinel;

/// How long one Sentinel may take to answer (or to be reached).
pub(super) const SENTINEL_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest a failover holds the dials, from its first announcement:
/// the pool's default `connect_timeout`. A failover whose end (or abort)
/// is not heard by then is taken as over, and the Sentinels are asked.
const HOLD_MAX: Duration = Duration::from_secs(10);
/// How long after a switch announced a Sentinel that still names the old
/// master is taken as not told yet (Sentinels learn the new one from the
/// failover's leader within a few seconds).
const SWITCH_NEWS: Duration = Duration::from_secs(10);

/// The Sentinels of one master: where they are, the master's name, and
/// the generation of the connections dialed to the current master.
///
/// Every connection dialed to a master holds that master's generation
/// flag. When a failover starts (a Sentinel announces `+try-failover`, or
/// any later step, for this name), the flag is set, so every such
/// connection refuses further commands and a reply it gets afterwards is
/// no acknowledgement (the old master may lose what it takes then), and
/// the pool clears the key; dials wait (at most [`HOLD_MAX`]) until a
/// Sentinel announces the new master (`+switch-master`) or every
/// Sentinel that started one aborts it. A master address that differs
/// from the last one seen starts a new generation too.
#[derive(Debug)]
pub(super) struct Sentinels {
    pub(super) addrs: Vec<Sentinel>,
    /// The Sentinel that answered last: asked first.
    pub(super) answered: AtomicUsize,
    /// A watcher's connection for questions to the Sentinel it listens
    /// to (its index), while it listens: a dial asks there first, on a
    /// connection the watcher keeps checked, instead of dialing a Sentinel.
    pub(super) watched: Mutex<Option<(usize, redis::aio::MultiplexedConnection)>>,
    pub(super) master: String,
    generation: Mutex<Generation>,
    /// Woken at every news of the master: a failover started, ended or
    /// aborted, the master down or up, a new generation.
    released: Notify,
    /// One watcher per Sentinel (`watch`).
    watchers: Mutex<Vec<JoinHandle<()>>>,
}

/// A server's address: host and port.
type Addr = (String, u16);

#[derive(Debug)]
struct Generation {
    moved: Arc<AtomicBool>,
    /// The master's address as last seen.
    at: Option<(String, u16)>,
    /// A failover under way: since when, and the Sentinels running it.
    failing_over: Option<(Instant, Vec<usize>)>,
    /// The last switch announced: from, to, when.
    switched: Option<(Addr, Addr, Instant)>,
    /// The Sentinels that find the master down (`+sdown`), since when.
    down: Option<(Instant, Vec<usize>)>,
}

impl Generation {
    /// The connections of this generation are to a master left behind: a
    /// new generation. (The caller wakes the waiters: `released`.)
    fn retire(&mut self) {
        self.moved.store(true, Ordering::SeqCst);
        self.moved = Arc::new(AtomicBool::new(false));
    }
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
                failing_over: None,
                switched: None,
                down: None,
            }),
            released: Notify::new(),
            watchers: Mutex::new(Vec::new()),
        })
    }

    /// The master's address, from the first Sentinel that knows it (the
    /// one a watcher listens to, on its connection; then each, the one
    /// that answered last first, on a connection of its own), with the
    /// generation flag its connections must hold, once no failover holds
    /// the dials. Starts the watchers if they are not running.
    ///
    /// A watched Sentinel that failed to answer is not asked again on a
    /// connection of its own (unless it is the only one): a frozen or cut
    /// off one would take a second timeout of the dial's time.
    pub(super) async fn master(
        self: &Arc<Self>,
        transport: &Transport,
    ) -> Result<((String, u16), Arc<AtomicBool>), RedisError> {
        self.watch(transport);
        self.held().await;
        let mut last = None;
        let watched = self.watched.lock().clone();
        let mut failed = None;
        if let Some((i, mut conn)) = watched {
            match self
                .ask_on(&self.addrs[i], Some(&mut conn), transport)
                .await
            {
                Ok(at) => return Ok(self.seen_at(at)),
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
                    return Ok(self.seen_at(at));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(RedisError::Sentinel {
            master: self.master.clone(),
            reason: last.unwrap_or_else(|| "no Sentinel given".into()),
        })
    }

    /// Waits while a failover holds the dials: until it ends, or
    /// [`HOLD_MAX`] after it started.
    async fn held(&self) {
        let failing_over = |g: &Generation| g.failing_over.as_ref().map(|(since, _)| *since);
        loop {
            match self.news(failing_over).await {
                None => return,
                Some(true) => continue,
                Some(false) => {
                    let mut generation = self.generation.lock();
                    if generation.failing_over.is_some() {
                        generation.failing_over = None;
                        tracing::warn!(
                            master = %self.master,
                            "a Redis failover announced {HOLD_MAX:?} ago has not ended: the \
                             Sentinels are asked again"
                        );
                    }
                    return;
                }
            }
        }
    }

    /// After a dial of the master failed: whether the Sentinels find it
    /// down or are failing it over, and then, once they said more (a
    /// failover's end, the master back up) before [`HOLD_MAX`] past when
    /// they began to, whether the dial is worth another try. So a master
    /// that went down is left for its replacement as soon as that is
    /// announced, not at the pool's next probe.
    pub(super) async fn worth_another_dial(&self) -> bool {
        let pending = |g: &Generation| {
            let failing_over = g.failing_over.as_ref().map(|(since, _)| *since);
            let down = g.down.as_ref().map(|(since, _)| *since);
            failing_over.into_iter().chain(down).min()
        };
        self.news(pending).await == Some(true)
    }

    /// Waits for the Sentinels' next news of the master (a switch, an
    /// abort, the master up again) while `pending` finds something it
    /// waits for, begun at the instant it returns: `None` if nothing is
    /// pending, else whether news came before [`HOLD_MAX`] past it.
    async fn news(&self, pending: impl Fn(&Generation) -> Option<Instant>) -> Option<bool> {
        let released = self.released.notified();
        let mut released = std::pin::pin!(released);
        // Listening before the look: news after it is not missed.
        released.as_mut().enable();
        let since = pending(&self.generation.lock())?;
        Some(
            tokio::time::timeout_at(since + HOLD_MAX, released)
                .await
                .is_ok(),
        )
    }

    /// Returns once the generation whose flag is `moved` is retired: a
    /// dial of its master is of no use any more.
    pub(super) async fn retired(&self, moved: &AtomicBool) {
        loop {
            let released = self.released.notified();
            let mut released = std::pin::pin!(released);
            released.as_mut().enable();
            if moved.load(Ordering::SeqCst) {
                return;
            }
            released.await;
        }
    }

    /// Sentinel `by` finds the master down (`+sdown`), or up again
    /// (`-sdown`): while one does, a dial that fails waits for the
    /// failover (see [`worth_another_dial`](Sentinels::worth_another_dial)).
    pub(super) fn master_down(&self, by: usize, down: bool) {
        let mut generation = self.generation.lock();
        match (&mut generation.down, down) {
            (Some((_, finding)), true) => {
                if !finding.contains(&by) {
                    finding.push(by);
                }
            }
            (None, true) => generation.down = Some((Instant::now(), vec![by])),
            (Some((_, finding)), false) => {
                finding.retain(|&i| i != by);
                if finding.is_empty() {
                    generation.down = None;
                    drop(generation);
                    self.released.notify_waiters();
                }
            }
            (None, false) => {}
        }
    }

    /// The master's address as `sentinel` knows it, on `conn` if given,
    /// else on a connection of its own through `transport`.
    pub(super) async fn ask_on(
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

    /// A Sentinel says the master is at `at`: a new generation if it moved
    /// since the last look, unless `at` is the master a switch announced
    /// just now left (that Sentinel was not told yet). Returns where the
    /// master is and the current generation's flag.
    pub(super) fn seen_at(&self, at: (String, u16)) -> ((String, u16), Arc<AtomicBool>) {
        let mut generation = self.generation.lock();
        let at = match &generation.switched {
            Some((from, to, when)) if *from == at && when.elapsed() < SWITCH_NEWS => to.clone(),
            _ => at,
        };
        let moved = generation.at.as_ref().is_some_and(|was| *was != at);
        if moved {
            generation.retire();
            tracing::warn!(master = %self.master, to = ?at, "the Redis master moved");
        }
        generation.at = Some(at.clone());
        let flag = Arc::clone(&generation.moved);
        drop(generation);
        if moved {
            self.released.notify_waiters();
        }
        (at, flag)
    }

    /// Sentinel `by` announced a step of a failover of the master: the
    /// master's connections send nothing more, and dials wait.
    pub(super) fn failover_started(&self, by: usize) {
        let mut generation = self.generation.lock();
        match &mut generation.failing_over {
            Some((_, running)) => {
                if !running.contains(&by) {
                    running.push(by);
                }
            }
            None => {
                generation.failing_over = Some((Instant::now(), vec![by]));
                generation.retire();
                drop(generation);
                self.released.notify_waiters();
                tracing::warn!(
                    master = %self.master,
                    "a Redis failover started: commands for the master wait until the new \
                     one is known"
                );
            }
        }
    }

    /// Sentinel `by` aborted the failover it ran: once none runs one, the
    /// dials go on (to the master the Sentinels name).
    pub(super) fn failover_aborted(&self, by: usize) {
        let mut generation = self.generation.lock();
        if let Some((_, running)) = &mut generation.failing_over {
            running.retain(|&i| i != by);
            if running.is_empty() {
                generation.failing_over = None;
                drop(generation);
                tracing::info!(master = %self.master, "the Redis failover was aborted");
                self.released.notify_waiters();
            }
        }
    }

    /// A Sentinel announced the switch from `from` to `to`: the new
    /// master is known, and the held dials go to it.
    pub(super) fn switched(&self, from: (String, u16), to: (String, u16)) {
        let mut generation = self.generation.lock();
        if generation.at.as_ref() != Some(&to) {
            generation.retire();
            tracing::warn!(master = %self.master, ?to, "the Redis master moved");
        }
        generation.at = Some(to.clone());
        generation.switched = Some((from, to, Instant::now()));
        generation.failing_over = None;
        generation.down = None;
        drop(generation);
        self.released.notify_waiters();
    }

    /// Starts a task per Sentinel that follows its announcements, unless
    /// it runs. Each holds the Sentinels weakly, and ends once they are
    /// gone.
    fn watch(self: &Arc<Self>, transport: &Transport) {
        let mut watchers = self.watchers.lock();
        if watchers.len() == self.addrs.len() && watchers.iter().all(|t| !t.is_finished()) {
            return;
        }
        for task in watchers.drain(..) {
            task.abort();
        }
        for i in 0..self.addrs.len() {
            let follows = watch::follow(Arc::downgrade(self), i, transport.clone());
            watchers.push(tokio::spawn(follows));
        }
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for task in self.watchers.get_mut().drain(..) {
            task.abort();
        }
    }
}
