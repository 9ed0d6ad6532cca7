//! The tiered pool's configuration and per-module options.

use std::time::Duration;

use crate::error::{Error, Result};

/// How the tiered pool splits its capacity and tracks demand.
///
/// # Example
///
/// ```
/// use tidepool_pools::wasm::WasmPoolConfig;
///
/// let c = WasmPoolConfig { capacity: 40, ..WasmPoolConfig::default() };
/// assert_eq!((c.hot_capacity(), c.warm_capacity()), (10, 20));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WasmPoolConfig {
    /// Modules the pool is sized for (default 100).
    pub capacity: usize,
    /// Share of `capacity` kept hot, with ready instances (default 0.25).
    pub hot_fraction: f64,
    /// Share of `capacity` kept warm, as `InstancePre` (default 0.5); the rest is cold.
    pub warm_fraction: f64,
    /// Half-life of the access rate, in seconds of the live clock (default 30 s).
    pub half_life: Duration,
    /// How often the background task re-ranks modules (default 5 s).
    pub promotion_interval: Duration,
}

impl Default for WasmPoolConfig {
    fn default() -> Self {
        WasmPoolConfig {
            capacity: 100,
            hot_fraction: 0.25,
            warm_fraction: 0.5,
            half_life: Duration::from_secs(30),
            promotion_interval: Duration::from_secs(5),
        }
    }
}

impl WasmPoolConfig {
    /// Modules kept hot.
    pub fn hot_capacity(&self) -> usize {
        (self.capacity as f64 * self.hot_fraction).floor() as usize
    }

    /// Modules kept warm.
    pub fn warm_capacity(&self) -> usize {
        (self.capacity as f64 * self.warm_fraction).floor() as usize
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let field =
            |name: &str, problem: String| Err(Error::config(format!("wasm_pool.{name}"), problem));
        if self.capacity == 0 {
            return field("capacity", "must be at least 1".into());
        }
        for (name, f) in [
            ("hot_fraction", self.hot_fraction),
            ("warm_fraction", self.warm_fraction),
        ] {
            if !(0.0..=1.0).contains(&f) {
                return field(name, format!("must be within 0..=1, got {f}"));
            }
        }
        if self.hot_fraction + self.warm_fraction > 1.0 {
            return field(
                "warm_fraction",
                "hot_fraction + warm_fraction exceed 1".into(),
            );
        }
        if self.half_life.is_zero() {
            return field("half_life", "must be greater than zero".into());
        }
        if self.promotion_interval.is_zero() {
            return field("promotion_interval", "must be greater than zero".into());
        }
        Ok(())
    }
}

/// How a module may be served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModuleOptions {
    /// The module keeps no state between calls, so one instance may serve
    /// lease after lease (as long as it never trapped). Off by default: each
    /// lease gets a fresh instance and nothing leaks between leases.
    pub stateless: bool,
}
