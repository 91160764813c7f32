//! Redis Sentinels for the failover tests: a Sentinel monitoring a
//! throwaway master, from the same `redis-server` binary in Sentinel mode.

use super::*;

impl RedisServer {
    /// A Sentinel monitoring `master` as `name` (quorum 2), on a free
    /// port; `None` (after saying why) if `redis-server` is missing.
    pub fn sentinel(master: &RedisServer, name: &str) -> Option<RedisServer> {
        let conf = format!(
            "sentinel monitor {name} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {name} 2000\n\
             sentinel failover-timeout {name} 10000\n",
            port = master.port
        );
        Self::start_with(&[], |_, _| Vec::new(), Some(&conf))
    }
}
