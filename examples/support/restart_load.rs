//! What the restart examples share: the fault (a restart, a freeze or a
//! partition) at the same instant for every client's server, a proxy that counts the
//! connections clients ask for, a load of tasks making requests under a
//! deadline, and the table of what an outage cost each client.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

// (`partition` is the tests'; `pg_restart` cuts no network.)
#[allow(dead_code)]
#[path = "netns.rs"]
mod netns;
pub use netns::Netns;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One request of one client.
pub type Request =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send + Sync>;

/// A server restart under load, connpool beside its peers.
#[derive(clap::Parser)]
#[command(version, about)]
pub struct Args {
    /// A CI-sized run (the server down 0.5 s, 1 s after).
    #[arg(long)]
    pub quick: bool,
    /// What happens to the servers.
    #[arg(long, value_enum, default_value_t = Fault::Restart)]
    pub fault: Fault,
    /// How long the fault lasts, in seconds (default 1; 0.5 with `--quick`).
    #[arg(long)]
    pub down: Option<f64>,
    /// How long the load runs after the fault ends, in seconds (default 3;
    /// 1 with `--quick`).
    #[arg(long)]
    pub after: Option<f64>,
}

/// What happens to every client's server, at the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// Killed (`SIGKILL`: its sockets closed by the kernel, no goodbye),
    /// started again on its port.
    Restart,
    /// Frozen (`SIGSTOP`: the kernel still accepts and acknowledges, the
    /// server answers nothing), thawed (`SIGCONT`).
    Freeze,
    /// Cut off by the network: every packet between the clients and the
    /// servers dropped (nftables, in a network namespace of the run's own:
    /// no RST, no FIN), then let through again. Needs root.
    Partition,
}

/// Runs `body` on a two-worker runtime; for a partition, inside a network
/// namespace of its own (everything it starts is in it), which `body` is
/// given to cut.
pub fn main<F, Fut>(body: F) -> Result<(), BoxError>
where
    F: FnOnce(Args, Option<Arc<Netns>>) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let args = <Args as clap::Parser>::parse();
    if args.fault == Fault::Partition {
        let ns = Netns::new()
            .ok_or("a partition needs a network namespace (root, iproute2, nftables)")?;
        let run = Arc::clone(&ns);
        return run.run(body(args, Some(ns)));
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(body(args, None))
}

/// A server process a fault can reach.
pub trait Server: Send + 'static {
    /// `SIGKILL`.
    fn kill(&mut self);
    /// Starts it again on its port; returns once it is ready.
    fn start(&mut self);
    /// Sends it `signal` (`"STOP"`, `"CONT"`).
    fn signal(&self, signal: &str);
}

/// The whole run for the clients that `requests` make, each against its
/// server in `servers` behind its proxy in `proxies`: the load, the
/// fault at one instant, the load after it, and the table (`what`: the
/// server and the request, for its title).
#[allow(dead_code)]
pub async fn run<S: Server>(
    args: &Args,
    ns: Option<Arc<Netns>>,
    what: &str,
    names: &[&str],
    servers: Vec<S>,
    proxies: &[Proxy],
    requests: Vec<Request>,
) -> Result<(), BoxError> {
    let (warm, down, after) = args.phases();
    let loads: Vec<Load> = requests.into_iter().map(Load::start).collect();
    tokio::time::sleep(warm).await;
    let asked_before: Vec<usize> = proxies.iter().map(Proxy::asked).collect();
    let (servers, killed, back) = match (args.fault, ns) {
        (Fault::Partition, Some(ns)) => {
            let ports: Vec<u16> = proxies.iter().map(|p| p.addr.port()).collect();
            let (ns, killed) = tokio::task::spawn_blocking(move || {
                let killed = Instant::now();
                ns.partition_ports(&ports);
                (ns, killed)
            })
            .await?;
            tokio::time::sleep(down).await;
            let back = tokio::task::spawn_blocking(move || {
                ns.heal();
                Instant::now()
            })
            .await?;
            (servers, killed, back)
        }
        (Fault::Partition, None) => {
            return Err("a partition needs the run's network namespace".into());
        }
        (fault, _) => outage(servers, fault, down).await?,
    };
    tokio::time::sleep(after).await;

    let fault = match args.fault {
        Fault::Restart => "killed and restarted",
        Fault::Freeze => "frozen and thawed",
        Fault::Partition => "cut off by a partition and healed",
    };
    println!(
        "{what}: the servers {fault} under load ({TASKS} tasks per client, each request under a \
         {DEADLINE:?} deadline), down {down:?}, then {after:?} more"
    );
    report(
        loads,
        names,
        proxies,
        &asked_before,
        (killed, back),
        args.quick,
    )
    .await;
    drop(servers);
    Ok(())
}

/// What a fault does to one server.
type Act<S> = fn(&mut S);

/// Takes every server down by `fault` at one instant (each on a thread of
/// its own: a stop may take a while), for `down`, and brings them back;
/// returns them, the instant they went down and the instant the last was
/// back.
pub async fn outage<S: Server>(
    mut servers: Vec<S>,
    fault: Fault,
    down: Duration,
) -> Result<(Vec<S>, Instant, Instant), BoxError> {
    let each = |servers: &mut Vec<S>, act: fn(&mut S)| {
        std::thread::scope(|s| {
            for server in servers.iter_mut() {
                s.spawn(move || act(server));
            }
        });
    };
    let (down_by, up_by): (Act<S>, Act<S>) = match fault {
        Fault::Restart => (S::kill, S::start),
        Fault::Freeze => (|s| s.signal("STOP"), |s| s.signal("CONT")),
        Fault::Partition => unreachable!("a partition cuts the network"),
    };
    let (mut servers, killed) = tokio::task::spawn_blocking(move || {
        let killed = Instant::now();
        each(&mut servers, down_by);
        (servers, killed)
    })
    .await?;
    tokio::time::sleep(down).await;
    let (servers, back) = tokio::task::spawn_blocking(move || {
        each(&mut servers, up_by);
        // Each start returns once its server is ready: the last is back
        // when all are.
        (servers, Instant::now())
    })
    .await?;
    Ok((servers, killed, back))
}

impl Args {
    /// How long the load runs before the fault, how long the server stays
    /// down, and how long the load runs after its return.
    pub fn phases(&self) -> (Duration, Duration, Duration) {
        let (warm, down, after) = self.default_phases();
        let down = self.down.map_or(down, Duration::from_secs_f64);
        let after = self.after.map_or(after, Duration::from_secs_f64);
        (warm, down, after)
    }

    fn default_phases(&self) -> (Duration, Duration, Duration) {
        if self.quick {
            (
                Duration::from_millis(500),
                Duration::from_millis(500),
                Duration::from_secs(1),
            )
        } else {
            (
                Duration::from_secs(1),
                Duration::from_secs(1),
                Duration::from_secs(3),
            )
        }
    }
}

/// Every request's deadline.
pub const DEADLINE: Duration = Duration::from_secs(1);
/// Tasks per client.
pub const TASKS: usize = 8;

/// How long after the server's return, down for `down`, a connpool get may
/// still fail: one that waited for a probe begun before the return, or
/// whose deadline passed before the first probe after it. Probes come
/// within 400 ms, or a quarter of the outage so far, and at most a backoff
/// cap (5 s) apart; then the dial.
pub fn recovery(down: Duration) -> Duration {
    let probe = (down / 4).clamp(Duration::from_millis(400), Duration::from_secs(5));
    probe + Duration::from_millis(100)
}

/// The most connections connpool may ask for over a fault of a second or
/// less (the reliability target; the peers are measured, not held to it).
pub const MAX_CONNECTIONS: usize = 25;

/// The most connections connpool may ask for over a fault of `down`:
/// [`MAX_CONNECTIONS`], and one more per 1.5 s past the first second (its
/// probes space out as an outage lasts, to one per backoff cap: 2.5–5 s
/// by default, jittered).
pub fn max_connections(down: Duration) -> usize {
    let past = down.saturating_sub(Duration::from_secs(1));
    MAX_CONNECTIONS + (past.as_millis() / 1500) as usize
}

/// A TCP proxy that counts the connections clients ask it for, and passes
/// each to the server (closing it at once if the server is down).
pub struct Proxy {
    pub addr: SocketAddr,
    asked: Arc<AtomicUsize>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Result<Proxy, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let asked = Arc::new(AtomicUsize::new(0));
        let count = asked.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = outbound.set_nodelay(true);
                        let _ = inbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok(Proxy { addr, asked })
    }

    /// Connections asked for so far.
    pub fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

/// One request's outcome: when it began and ended, and whether it worked.
pub struct Outcome {
    began: Instant,
    ended: Instant,
    ok: bool,
}

/// A client under load: [`TASKS`] tasks, each making its request in a loop
/// under [`DEADLINE`], pausing 10 ms after a failure (a client that
/// retries, not one that spins).
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<Outcome>>>,
}

impl Load {
    pub fn start(request: Request) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..TASKS)
            .map(|_| {
                let (request, stop) = (request.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let began = Instant::now();
                        let ok =
                            matches!(tokio::time::timeout(DEADLINE, request()).await, Ok(Ok(())));
                        outcomes.push(Outcome {
                            began,
                            ended: Instant::now(),
                            ok,
                        });
                        if !ok {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    outcomes
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops the load and says what the outage from `killed` to `back` cost
    /// it, `asked` connections asked for meanwhile.
    pub async fn finish(self, killed: Instant, back: Instant, asked: usize) -> Row {
        self.stop.store(true, Ordering::Relaxed);
        let mut outcomes = Vec::new();
        for task in self.tasks {
            outcomes.extend(task.await.expect("a load task"));
        }
        let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
        Row {
            in_flight: count(&|o| o.began < killed && o.ended > killed),
            failed_down: count(&|o| !o.ok && o.began >= killed && o.began < back),
            failed_after: count(&|o| !o.ok && o.began >= back),
            failed_late: count(&|o| !o.ok && o.began >= back + recovery(back - killed)),
            first: outcomes
                .iter()
                .filter(|o| o.ok && o.ended >= back)
                .map(|o| o.ended - back)
                .min(),
            longest: outcomes
                .iter()
                .map(|o| o.ended - o.began)
                .max()
                .unwrap_or_default(),
            asked,
        }
    }
}

/// What an outage cost one client.
pub struct Row {
    pub in_flight: usize,
    pub failed_down: usize,
    pub failed_after: usize,
    /// Of those, begun [`recovery`] or more after the return.
    pub failed_late: usize,
    pub first: Option<Duration>,
    pub longest: Duration,
    pub asked: usize,
}

impl Row {
    pub fn print_header() {
        println!(
            "\n| client | in flight at the fault | failed while down | failed after back | first success after back | longest request | connections asked for |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
    }

    pub fn print(&self, name: &str) {
        println!(
            "| {name} | {} | {} | {} | {} | {:.0?} | {} |",
            self.in_flight,
            self.failed_down,
            self.failed_after,
            self.first.map_or("none".to_owned(), |d| format!("{d:.0?}")),
            self.longest,
            self.asked
        );
    }

    /// connpool's row must show a recovery: served after the return, no
    /// request past its deadline, no failure of a request begun
    /// [`recovery`] or more after the return, at most [`max_connections`]
    /// asked for (CI runs the examples).
    pub fn check_connpool(&self, down: Duration) {
        assert!(
            self.first.is_some(),
            "connpool served nothing after the restart"
        );
        assert!(
            self.longest < DEADLINE + Duration::from_millis(100),
            "a connpool request outlived its deadline: {:?}",
            self.longest
        );
        assert!(
            self.failed_late == 0,
            "connpool failed {} requests begun {:?} or more after the server was back",
            self.failed_late,
            recovery(down)
        );
        assert!(
            self.asked <= max_connections(down),
            "connpool asked for {} connections for one fault",
            self.asked
        );
    }
}

/// Stops every client's load and prints the table: one row per client,
/// `names[i]` for `loads[i]` behind `proxies[i]` (which had been asked for
/// `asked_before[i]` connections at the fault); checks connpool's row (the
/// first).
pub async fn report(
    loads: Vec<Load>,
    names: &[&str],
    proxies: &[Proxy],
    asked_before: &[usize],
    (killed, back): (Instant, Instant),
    quick: bool,
) {
    Row::print_header();
    for (i, load) in loads.into_iter().enumerate() {
        let row = load
            .finish(killed, back, proxies[i].asked() - asked_before[i])
            .await;
        row.print(names[i]);
        if i == 0 {
            row.check_connpool(back - killed);
        }
    }
    if quick {
        println!("(quick run: too short for figures to quote)");
    }
}
