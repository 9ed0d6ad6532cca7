//! Page sessions reused within a lease, and pipelined command batches.
//!
//! Measured on this machine: a CDP round trip on an open session costs
//! ~0.2-0.3 ms, creating a page target and enabling its domains tens of
//! milliseconds. [`SessionPool`] reuses pages; [`Batch`] sends the independent
//! commands of a step together instead of one round trip each.

mod batch;
mod config;
mod reset;
mod session;
mod stats;

pub use batch::{round_trip_waits, typed, Batch};
pub use config::SessionPoolConfig;
pub use session::{Session, SessionPool};
pub use stats::SessionPoolStats;
