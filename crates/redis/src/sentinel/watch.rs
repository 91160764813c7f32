//! The watchers: one task per Sentinel, subscribed to all its
//! announcements, so that a failover is heard where it starts (the
//! Sentinel that runs it announces each step first; the others learn of
//! the new master later, from it).

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;

use super::{SENTINEL_TIMEOUT, Sentinels};
use connpool_tcp::transport::Transport;

/// How long a watcher waits before it subscribes again, when its Sentinel
/// could not be subscribed to or went away.
const RESUBSCRIBE: Duration = Duration::from_millis(200);
/// How long a watcher's Sentinel may stay silent before the watcher asks
/// it something: a frozen or cut-off Sentinel never closes the
/// subscription, and one that does not answer is subscribed to anew.
const SENTINEL_CHECK: Duration = Duration::from_secs(1);

/// The announcements of a failover's steps, from its start to the new
/// master's promotion, that are followed by a `+switch-master` when the
/// failover ends well (the `%@` of a master, `master <name> <ip> <port>`,
/// or of a replica, `slave <ip:port> <ip> <port> @ <name> <ip> <port>`).
const STEPS: [&str; 9] = [
    "+try-failover",
    "+elected-leader",
    "+failover-state-select-slave",
    "+selected-slave",
    "+failover-state-send-slaveof-noone",
    "+failover-state-wait-promotion",
    "+promoted-slave",
    "+failover-state-reconf-slaves",
    "+failover-detected",
];

/// What a Sentinel announced of a master.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// A failover of it started, or went a step further.
    Step,
    /// The failover this Sentinel ran was aborted
    /// (`-failover-abort-not-elected`, `-no-good-slave`, `-slave-timeout`).
    Aborted,
    /// It moved: from, to (`+switch-master`).
    Switched((String, u16), (String, u16)),
    /// This Sentinel finds it down (`+sdown`), or up again (`-sdown`).
    Down(bool),
}

/// The event of `master` that `channel` and its `payload` announce, if any.
fn event(channel: &str, payload: &str, master: &str) -> Option<Event> {
    let words: Vec<&str> = payload.split(' ').collect();
    if channel == "+switch-master" {
        // `<name> <old-ip> <old-port> <new-ip> <new-port>`
        return match words[..] {
            [name, old_ip, old_port, ip, port] if name == master => Some(Event::Switched(
                (old_ip.to_owned(), old_port.parse().ok()?),
                (ip.to_owned(), port.parse().ok()?),
            )),
            _ => None,
        };
    }
    let name = match words.iter().position(|&w| w == "@") {
        Some(at) => words.get(at + 1)?,
        None if words.first() == Some(&"master") => words.get(1)?,
        None => return None,
    };
    if *name != master {
        return None;
    }
    if STEPS.contains(&channel) {
        Some(Event::Step)
    } else if words.first() == Some(&"master") && (channel == "+sdown" || channel == "-sdown") {
        Some(Event::Down(channel == "+sdown"))
    } else if channel.starts_with("-failover-abort") {
        Some(Event::Aborted)
    } else {
        None
    }
}

/// Follows Sentinel `i`'s announcements for the master, subscribing anew
/// whenever it goes away (or stays silent and does not answer), until the
/// Sentinels are gone. While subscribed, it offers its connection for the
/// dials' questions if no other watcher does.
pub(super) async fn follow(sentinels: Weak<Sentinels>, i: usize, transport: Transport) {
    loop {
        let Some(sentinel) = sentinels.upgrade().map(|s| s.addrs[i].clone()) else {
            return;
        };
        let (host, port) = (&sentinel.host, sentinel.port);
        let subscribed = async {
            let mut pubsub = sentinel.subscription(&transport).await?;
            pubsub.psubscribe("*").await.map_err(|e| e.to_string())?;
            let asking = sentinel.connection(&transport).await?;
            Ok::<_, String>((pubsub, asking))
        };
        if let Ok(Ok((mut pubsub, mut asking))) =
            tokio::time::timeout(SENTINEL_TIMEOUT, subscribed).await
        {
            // A switch announced while nobody listened: look once.
            match sentinels.upgrade() {
                Some(s) => {
                    if let Ok(at) = s.ask_on(&sentinel, Some(&mut asking), &transport).await {
                        s.seen_at(at);
                    }
                    offer(&s, i, &asking);
                }
                None => return,
            }
            let mut messages = pubsub.on_message();
            loop {
                let message = match tokio::time::timeout(SENTINEL_CHECK, messages.next()).await {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    // Silent: is it still there? (Only whether it answers:
                    // what a lone Sentinel says of the master is not
                    // followed without its announcement.)
                    Err(_) if alive(&mut asking).await => {
                        match sentinels.upgrade() {
                            Some(s) => offer(&s, i, &asking),
                            None => return,
                        }
                        continue;
                    }
                    Err(_) => {
                        tracing::debug!(%host, port, "a Sentinel watched does not answer: left");
                        break;
                    }
                };
                let Some(s) = sentinels.upgrade() else {
                    return;
                };
                let payload: String = message.get_payload().unwrap_or_default();
                match event(message.get_channel_name(), &payload, &s.master) {
                    Some(Event::Step) => s.failover_started(i),
                    Some(Event::Aborted) => s.failover_aborted(i),
                    Some(Event::Switched(from, to)) => {
                        s.switched(from, to);
                        // This Sentinel knows the new master: the dials ask
                        // it first.
                        claim(&s, i, &asking);
                    }
                    Some(Event::Down(down)) => s.master_down(i, down),
                    None => {}
                }
            }
            match sentinels.upgrade() {
                Some(s) => {
                    let mut watched = s.watched.lock();
                    if watched.as_ref().is_some_and(|(w, _)| *w == i) {
                        *watched = None;
                    }
                }
                None => return,
            }
        }
        if sentinels.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}

/// Offers watcher `i`'s connection for the dials' questions, if no other
/// watcher's is taken; its Sentinel is asked first from then on.
fn offer(s: &Sentinels, i: usize, asking: &redis::aio::MultiplexedConnection) {
    let mut watched = s.watched.lock();
    if watched.is_none() {
        s.answered.store(i, Ordering::Relaxed);
        *watched = Some((i, asking.clone()));
    }
}

/// Watcher `i`'s connection is the one the dials ask on from now on.
fn claim(s: &Sentinels, i: usize, asking: &redis::aio::MultiplexedConnection) {
    s.answered.store(i, Ordering::Relaxed);
    *s.watched.lock() = Some((i, asking.clone()));
}

/// Whether the Sentinel behind `conn` answers a `PING` within
/// [`SENTINEL_TIMEOUT`].
async fn alive(conn: &mut redis::aio::MultiplexedConnection) -> bool {
    let ping = redis::cmd("PING");
    let answer = tokio::time::timeout(SENTINEL_TIMEOUT, ping.query_async::<String>(conn));
    matches!(answer.await, Ok(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::{Event, event};

    #[test]
    fn a_failover_is_read_from_its_announcements() {
        let at = |port: u16| ("127.0.0.1".to_owned(), port);
        let of = |channel, payload| event(channel, payload, "mymaster");
        assert_eq!(
            of("+try-failover", "master mymaster 127.0.0.1 6379"),
            Some(Event::Step)
        );
        assert_eq!(
            of(
                "+selected-slave",
                "slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379"
            ),
            Some(Event::Step)
        );
        assert_eq!(
            of(
                "-failover-abort-not-elected",
                "master mymaster 127.0.0.1 6379"
            ),
            Some(Event::Aborted)
        );
        assert_eq!(
            of("+switch-master", "mymaster 127.0.0.1 6379 127.0.0.1 6380"),
            Some(Event::Switched(at(6379), at(6380)))
        );
        // Another master's, or no failover's.
        assert_eq!(of("+try-failover", "master other 127.0.0.1 7000"), None);
        assert_eq!(
            of("+switch-master", "other 127.0.0.1 7000 127.0.0.1 7001"),
            None
        );
        assert_eq!(
            of("+sdown", "master mymaster 127.0.0.1 6379"),
            Some(Event::Down(true))
        );
        assert_eq!(
            of("-sdown", "master mymaster 127.0.0.1 6379"),
            Some(Event::Down(false))
        );
        assert_eq!(
            of(
                "+sdown",
                "slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379"
            ),
            None,
            "a replica's"
        );
        assert_eq!(of("+new-epoch", "7"), None);
    }
}
