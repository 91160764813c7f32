//! Load, faults and models: multi-threaded stress runs and a proptest model
//! against the mock manager, a randomized soak and fault injection under
//! load against real servers (`tcp`, and `postgres` / `grpc` targets with
//! those features). The soak and fault tests run alone in the process
//! (`support::alone`), the others beside each other.

#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "tcp")]
mod faults;
#[cfg(all(target_os = "linux", feature = "tcp"))]
mod idle_partition;
mod model;
#[cfg(all(target_os = "linux", feature = "tcp"))]
mod partition;
#[cfg(feature = "tcp")]
mod soak;
mod stress;
