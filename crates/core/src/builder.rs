//! The [`Builder`]: a pool's settings, their defaults, and `build`.

use std::collections::HashMap;

use crate::contain;
use crate::error::{ConfigError, Error};
use crate::hooks::Hooks;
use crate::manager::{Liveness, Manager};
use crate::pool::Pool;
use crate::settings::Settings;
use crate::single::OneKey;

mod hooks;
mod setters;
#[cfg(test)]
mod tests;
mod validate;

/// Builds a [`Pool`]: set what differs from the defaults, then [`build`](Builder::build).
///
/// | field | default | why |
/// |---|---|---|
/// | `max_open` | 100, or the manager's [`default_max_open`](Manager::default_max_open): PostgreSQL's, 2 × CPUs | Go's default global idle cap (`MaxIdleConns`): enough for most services. A PostgreSQL server takes 100 connections by default for all its clients: at 2 × CPUs (deadpool-postgres's size for the same reason) several instances of a service share it; set more where the server allows |
/// | `max_open_per_key` | `max_open` | one destination may use the whole pool, as Go's `MaxConnsPerHost = 0` |
/// | `max_idle` | `max_open` | nothing a burst opened is closed just for being returned |
/// | `max_idle_per_key` | min(`max_open_per_key`, `max_idle`) | no Go `MaxIdleConnsPerHost = 2` trap: no close/reopen churn, no `TIME_WAIT` pile-up |
/// | `initial` | none | pre-warming is a choice: it makes `build` fail when the backend is down |
/// | `connect_timeout` | 10 s | long enough for a slow TLS handshake across regions; a black-holed host frees its slot |
/// | `checkout_timeout` | 30 s | bb8's: a getter never hangs; waiting forever is an explicit opt-in |
/// | `max_waiters` | no cap | the checkout deadline (30 s) already bounds how long a waiter stays, and the backoff fails getters at once while a key is down; a cap sheds load sooner under a steady overload, at the price of refusing bursts the pool would have served within the deadline: set it to what a burst may hold (bb8, deadpool and sqlx have none either) |
/// | `idle_timeout` | 90 s | Go's `IdleConnTimeout`: carries a connection across the gaps of ordinary traffic; a quiet client hands its sockets back |
/// | `max_lifetime` | 30 min | HikariCP's and bb8's; follows DNS and load-balancer changes, bounds server-side leaks |
/// | `jitter` | 0.1 | gRPC's `MaxConnectionAge` jitter (applied downwards): no synchronized expiry or ping bursts |
/// | `max_uses` | no limit | most protocols don't need it (nginx's `keepalive_requests` does) |
/// | `min_idle` | 0 | keeping connections costs the server; opt in where cold starts hurt |
/// | `min_idle_for` | none (`min_idle`) | one value for every key is wrong when keys differ (a primary and its replicas) |
/// | `health_check` | 500 ms | HikariCP's bypass window (`aliveBypassWindowMs`): a connection that just worked almost surely works, and a busy pool pays no round trip |
/// | `ping_timeout` | 5 s, for the health check and the keepalive alike | a healthy peer answers in milliseconds: this fails only a peer that is gone; HikariCP's `validationTimeout`, which bounds both its checks too |
/// | `keepalive_interval` | 30 s | half the ~60 s after which NATs and firewalls drop an idle flow; a dead connection is found before a user meets it |
/// | `keepalive_max_missed` | 1 | gRPC's semantics: a missed ping on an idle connection costs one dial to repair, keeping a doubtful one costs a user's request |
/// | `backoff` | 100 ms doubling to 5 s | a down backend is not hammered; one transient failure costs a key at most 100 ms of fast failures, a recovered backend is used within 5 s |
/// | `max_connecting` | 2 while a key is untried or recovers from a failed dial; none once it is healthy | MongoDB's `maxConnecting` for a cold key (its first connection tells how many borrowers one takes) and a backend coming back: no reconnect storm on a restarted backend. A healthy key is not held to it (Go's `Transport` counts dials inside `MaxConnsPerHost` only): against a server that closes every connection, a cap of 2 gave a third of reqwest's throughput (BENCHMARKS.md) |
/// | `max_borrowers` | 100 | gRPC's usual `MAX_CONCURRENT_STREAMS`: a multiplexed peer advertising no limit (or a huge one) still fans out over connections |
/// | `leak_detection_threshold` | off | what is "too long" depends on the work; a scan of the connections costs while on |
/// | `acquire_slow_threshold` | 2 s | sqlx's: a get waiting this long is a symptom, well before its checkout deadline fails it |
/// | `name` | `"connpool"` | OpenTelemetry's `db.client.connection.pool.name`; name pools apart when there are several |
/// | `metrics_key_attribute` | off | a key per series multiplies the series (cardinality) and costs a look-up per record |
/// | `metrics_key_gauges` | 0 | per-key gauges for the busiest `n` keys and `other`: bounded series, published each second off the hot path |
/// | `after_connect` | none | a hook costs a round trip per dial; nothing to set by default |
/// | `before_lend` | none | the health check already covers liveness; without it a checkout runs no user code |
/// | `after_return` | none (the manager's own [`recycle`](Manager::recycle) still runs) | without it a return spawns no task |
///
/// # Sizing the caps
///
/// By Little's law a key needs about `peak requests per second × mean time a
/// connection is held` connections at its busiest; set `max_open_per_key` a
/// little above that (×1.5 for bursts) and keep `max_idle_per_key` equal to
/// it. An idle cap far below the open cap is the trap of Go's
/// `MaxIdleConnsPerHost = 2`: every burst opens connections that are closed
/// again on return, the closes pile up in `TIME_WAIT`, and the client runs
/// out of ephemeral ports while its pool barely pools. Trim idle connections
/// with time (idle timeout), not with a small idle cap.
///
/// # Keepalive and the gRPC `MinTime` trap
///
/// Background keepalive calls [`Manager::ping`] on connections idle for
/// `keepalive_interval`. When a manager's ping is an HTTP/2 PING frame, keep
/// the interval at or above the server's enforcement policy (gRPC servers'
/// `MinTime`, 5 minutes by default): a client that pings more often is sent
/// GOAWAY `too_many_pings` and loses the connection. A gRPC health-check
/// RPC as the ping is an ordinary call and is not subject to that policy.
///
/// # Hooks
///
/// [`after_connect`](Builder::after_connect), [`before_lend`](Builder::before_lend)
/// and [`after_return`](Builder::after_return) take an async function of a
/// connection and its key (a closure returning a boxed future,
/// `Box::pin(async move { .. })`: a `BoxFuture` of the `futures` crate);
/// each may fail with the manager's error.
///
/// Hooks are for the user's policy, what a manager cannot know: the
/// application's session settings, a check of its own before a
/// connection is lent, bookkeeping when one comes back. What the protocol
/// itself needs (is the peer alive, is the connection dirty, how is it
/// reset) belongs in the [`Manager`]: [`ping`](Manager::ping),
/// [`health`](Manager::health), [`recycle`](Manager::recycle).
///
/// | hook | runs | bounded by | an error (or a panic, or the time limit) |
/// |---|---|---|---|
/// | [`after_connect`](crate::Builder::after_connect) | on each new connection, inside its dial, before it is first lent or parked | `connect_timeout` (with the dial; after a recycle, the recycle's `ping_timeout`) | fails the dial with it ([`ConnectError::Manager`](crate::ConnectError::Manager)) |
/// | [`before_lend`](crate::Builder::before_lend) | before a connection taken from the idle list is lent, in the getter's task (after the health-check ping, if one is due) | `ping_timeout` and the checkout deadline | closes the connection ([`closed_broken`](crate::Counters::closed_broken)); the getter is served by another |
/// | [`after_return`](crate::Builder::after_return) | after a borrower gives back a connection lent exclusively, in a task of its own, before the connection is lent again or parked | `ping_timeout` | closes the connection ([`closed_broken`](crate::Counters::closed_broken)) |
///
/// A manager's own reset ([`Manager::recycle`],
/// e.g. the PostgreSQL manager's session reset) runs at the same point as
/// `after_return`, first, followed by `after_connect` again (the session is
/// as new, and is set up as a new one is: a `SET` made by `after_connect`
/// survives the reset). While either runs the connection is *recycling*:
/// it counts as open (in [`PoolState::recycling`](crate::PoolState)), is
/// lent to nobody, and then goes through the hand-off like a returned
/// connection. The borrower's drop does not wait for it.
///
/// **Shared connections.** `after_connect` runs on every new connection.
/// `before_lend` runs on each borrower's handle before it is lent from a
/// checkout that did not wait (like the health check, not on a hand-off).
/// `after_return` and `Manager::recycle` do not run for shared
/// (multiplexed) connections: their borrowers share one session, so there
/// is no borrower's state to reset when one of them leaves.
///
/// `build` refuses inconsistent values with an [`Error::Config`] naming the field.
pub struct Builder<M: Manager> {
    manager: M,
    set: Settings,
    /// In the order of the first call for each key; `initial_at` finds a
    /// key's place (pre-warming many keys stays linear).
    initial: Vec<(M::Key, usize)>,
    initial_at: HashMap<M::Key, usize>,
    /// The method that set `initial`, as errors name it: `initial` or
    /// `initial_for`.
    initial_method: &'static str,
    min_idle_for: Vec<(M::Key, usize)>,
    hooks: Hooks<M>,
    /// The values the setters refused, one per setting at most (setting
    /// it again replaces its refusal), in the order set: `build` fails
    /// with the first.
    refused: Vec<ConfigError>,
}

impl<M: Manager> Pool<M> {
    /// A builder for a pool of `manager`'s connections.
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }
}

impl<M: Manager> Builder<M> {
    pub(crate) fn new(manager: M) -> Self {
        let mut set = Settings::default();
        // A panic keeps the pool's own default.
        if let Ok(Some(n)) = contain::call(|| manager.default_max_open()) {
            set.max_open = n;
        }
        Self {
            manager,
            set,
            initial: Vec::new(),
            initial_at: HashMap::new(),
            initial_method: "initial_for",
            min_idle_for: Vec::new(),
            hooks: Hooks {
                after_connect: None,
                before_lend: None,
                after_return: None,
            },
            refused: Vec::new(),
        }
    }

    /// Ends the setter of `field`: `refusal` (why its value is refused, or
    /// `None`) replaces any earlier one of the same setting.
    fn rule(mut self, field: &'static str, refusal: Option<String>) -> Self {
        self.refused.retain(|e| e.field != field);
        if let Some(message) = refusal {
            self.refused.push(ConfigError::new(field, message));
        }
        self
    }

    /// Pre-warms `n` connections of `key` while building (silenceper's
    /// `InitialCap`, per key); a second call for a key replaces its count.
    /// They are dialed concurrently; if any dial fails, `build` fails and
    /// closes the others.
    pub fn initial_for(mut self, key: M::Key, n: usize) -> Self {
        match self.initial_at.get(&key) {
            Some(&at) => self.initial[at].1 = n,
            None => {
                self.initial_at.insert(key.clone(), self.initial.len());
                self.initial.push((key, n));
            }
        }
        self
    }

    /// `min_idle` for `key` alone, where one value for every key is wrong
    /// (a primary kept warm, replicas not): the pool tracks `key` from the
    /// start and keeps `n` idle connections of it ready; other keys keep
    /// [`min_idle`](Builder::min_idle). Set again for the same key, the
    /// last value counts. Change it at run time with
    /// [`Pool::set_min_idle_for`]. At most `max_idle_per_key`.
    pub fn min_idle_for(mut self, key: M::Key, n: usize) -> Self {
        self.min_idle_for.push((key, n));
        self
    }

    /// No dial backoff: every getter that finds no idle connection may dial,
    /// however often the key's dials fail.
    pub fn no_backoff(mut self) -> Self {
        self.set.backoff = None;
        self.rule("backoff", None)
    }

    /// Validates the configuration, pre-warms the `initial` connections and
    /// returns the pool: [`Error::Config`] names a refused setting;
    /// [`Error::Connect`] is a pre-warm dial that failed (the connections
    /// already opened are closed). Must be called within a tokio runtime: the pool
    /// spawns its dials and closes there. If that runtime's clock is paused
    /// now, the pool keeps time by it (see "Time in tests" in the crate docs).
    pub async fn build(self) -> Result<Pool<M>, Error<M::Error>> {
        let config = self.validate()?;
        let mut manager = self.manager;
        let liveness = Liveness::of(&config.set);
        if let Err(panic) = contain::call(|| manager.liveness(&liveness)) {
            tracing::error!(%panic, "Manager::liveness panicked");
        }
        Pool::start(manager, config, self.hooks, self.initial, self.min_idle_for).await
    }

    /// Pre-warms `n` connections while building: the form of
    /// [`initial_for`](Builder::initial_for) for a pool of one key.
    pub fn initial(self, n: usize) -> Self
    where
        M::Key: OneKey,
    {
        let mut builder = self.initial_for(M::Key::key().clone(), n);
        builder.initial_method = "initial";
        builder
    }
}

/// Why a duration set to `d` is refused, if it is zero; `hint` follows.
fn non_zero(d: Option<std::time::Duration>, hint: &str) -> Option<String> {
    d.is_some_and(|d| d.is_zero())
        .then(|| format!("must be greater than zero{hint}"))
}

/// Why a count set to `n` is refused, if it is outside `1..=max`.
fn at_least_one(n: u64, max: u64) -> Option<String> {
    match n {
        0 => Some("must be at least 1".into()),
        n if n > max => Some(format!("({n}) must be at most {max}")),
        _ => None,
    }
}

impl<M: Manager> std::fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("settings", &self.set)
            .field("initial", &self.initial)
            .field("min_idle_for", &self.min_idle_for)
            .field("hooks", &self.hooks.names())
            .finish_non_exhaustive()
    }
}
