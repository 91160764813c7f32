//! Ready-made managers for real connections, each behind its cargo feature.
//!
//! | module | feature | pools |
//! |---|---|---|
//! | `tcp` | `tcp` | TCP streams, with kernel keepalive and an app-level ping |
//! | `postgres` | `postgres` | `tokio_postgres::Client`s, keyed by database |

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "tcp")]
pub mod tcp;
