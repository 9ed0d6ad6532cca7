//! Whether launched browsers run in Chromium's sandbox: a config field and
//! an environment switch, resolved in one place and reported with every run.

use crate::error::{Error, Result};

/// The environment switch: `on`, `off` or `auto`. It decides for a pool whose
/// config says [`Sandbox::Auto`] (the default).
pub const SANDBOX_ENV: &str = "TIDEPOOL_SANDBOX";

/// Whether launched browsers run in Chromium's sandbox.
///
/// The sandbox needs user namespaces (or a setuid helper). Chromium refuses
/// to start sandboxed as root, and some CI kernels (Ubuntu 24.04 runners)
/// block the unprivileged user namespaces it uses. Turning it off is always
/// explicit: this field, the [`SANDBOX_ENV`] switch, or running as root under
/// `Auto`. Every report's machine info says which (see [`Sandbox::describe`]).
///
/// ```
/// use tidepool_pools::browser::{BrowserPoolConfig, Sandbox};
///
/// let config = BrowserPoolConfig {
///     sandbox: Sandbox::On, // fail to launch rather than run unsandboxed
///     ..BrowserPoolConfig::default()
/// };
/// config.validate()?;
/// # Ok::<(), tidepool_pools::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Sandbox {
    /// [`SANDBOX_ENV`] decides when set; otherwise on, except as root.
    #[default]
    Auto,
    /// Always sandboxed; a launch fails where the sandbox cannot work.
    On,
    /// Never sandboxed (`--no-sandbox`).
    Off,
}

/// A resolved [`Sandbox`]: on or off, and what decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxChoice {
    /// Whether browsers run sandboxed.
    pub on: bool,
    /// What decided: `config`, `TIDEPOOL_SANDBOX`, `root` or `default`.
    pub by: &'static str,
}

impl Sandbox {
    /// What `self` means here and now: reads [`SANDBOX_ENV`] for `Auto`.
    /// An unknown value of the switch is an error naming it.
    pub fn resolve(self) -> Result<SandboxChoice> {
        let env = std::env::var(SANDBOX_ENV).ok();
        self.resolve_with(env.as_deref(), running_as_root())
    }

    pub(crate) fn resolve_with(self, env: Option<&str>, root: bool) -> Result<SandboxChoice> {
        let choice = |on, by| Ok(SandboxChoice { on, by });
        match self {
            Sandbox::On => choice(true, "config"),
            Sandbox::Off => choice(false, "config"),
            Sandbox::Auto => match env.map(str::trim).filter(|v| !v.is_empty()) {
                Some("on") => choice(true, SANDBOX_ENV),
                Some("off") => choice(false, SANDBOX_ENV),
                Some("auto") | None if root => choice(false, "root"),
                Some("auto") | None => choice(true, "default"),
                Some(other) => Err(Error::config(
                    SANDBOX_ENV,
                    format!("is {other:?}; use on, off or auto"),
                )),
            },
        }
    }

    /// One line for reports: `on (default)`, `off (root)`, `off (TIDEPOOL_SANDBOX)`.
    pub fn describe(self) -> String {
        match self.resolve() {
            Ok(c) => format!("{} ({})", if c.on { "on" } else { "off" }, c.by),
            Err(e) => format!("invalid: {e}"),
        }
    }
}

/// Whether this process runs as root (its effective user).
pub(crate) fn running_as_root() -> bool {
    crate::os::uid() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_wins_then_the_switch_then_root() {
        let on = |s: Sandbox, env, root| s.resolve_with(env, root).unwrap().on;
        assert!(on(Sandbox::On, Some("off"), true));
        assert!(!on(Sandbox::Off, Some("on"), false));
        assert!(on(Sandbox::Auto, Some("on"), true));
        assert!(!on(Sandbox::Auto, Some("off"), false));
        assert!(!on(Sandbox::Auto, None, true));
        assert!(on(Sandbox::Auto, Some("auto"), false));
        let e = Sandbox::Auto
            .resolve_with(Some("maybe"), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("TIDEPOOL_SANDBOX") && e.contains("maybe"), "{e}");
    }
}
