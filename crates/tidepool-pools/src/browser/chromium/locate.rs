use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Binary names searched on `PATH`, in order.
pub const CHROMIUM_NAMES: &[&str] = &["chromium", "chromium-browser", "google-chrome"];

/// Environment variables consulted before `PATH`, in order.
pub const CHROMIUM_ENV: &[&str] = &["CHROME", "CHROMIUM_PATH"];

/// Finds the Chromium binary: `explicit` if given, then `$CHROME`, then
/// `$CHROMIUM_PATH`, then `chromium`, `chromium-browser`, `google-chrome` on
/// `PATH`. The error lists every place it looked.
///
/// # Example
///
/// ```no_run
/// let chromium = tidepool_pools::browser::locate_chromium(None)?;
/// println!("using {}", chromium.display());
/// # Ok::<(), tidepool_pools::Error>(())
/// ```
pub fn locate_chromium(explicit: Option<&Path>) -> Result<PathBuf> {
    let env: Vec<(String, Option<String>)> = CHROMIUM_ENV
        .iter()
        .map(|k| (k.to_string(), std::env::var(k).ok()))
        .collect();
    let path = std::env::var_os("PATH").unwrap_or_default();
    locate_in(
        explicit,
        &env,
        &std::env::split_paths(&path).collect::<Vec<_>>(),
    )
}

/// [`locate_chromium`] over a given environment, for tests.
pub(crate) fn locate_in(
    explicit: Option<&Path>,
    env: &[(String, Option<String>)],
    path_dirs: &[PathBuf],
) -> Result<PathBuf> {
    let mut looked = Vec::new();
    if let Some(p) = explicit {
        if is_executable(p) {
            return Ok(p.to_owned());
        }
        // An explicit path that does not work is an error of its own: falling
        // back to another binary would run a browser the caller did not ask for.
        return Err(Error::ChromiumNotFound {
            looked: format!(
                "the configured executable {} (missing or not executable)",
                p.display()
            ),
        });
    }
    for (key, value) in env {
        match value {
            Some(v) if !v.is_empty() => {
                let p = PathBuf::from(v);
                if is_executable(&p) {
                    return Ok(p);
                }
                looked.push(format!("${key}={v} (missing or not executable)"));
            }
            _ => looked.push(format!("${key} (unset)")),
        }
    }
    for name in CHROMIUM_NAMES {
        for dir in path_dirs {
            let p = dir.join(name);
            if is_executable(&p) {
                return Ok(p);
            }
        }
    }
    looked.push(format!(
        "{} on PATH ({})",
        CHROMIUM_NAMES.join(", "),
        path_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    ));
    Err(Error::ChromiumNotFound {
        looked: looked.join("; "),
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_every_place_it_looked() {
        let env = vec![
            ("CHROME".to_string(), Some("/nope/chrome".to_string())),
            ("CHROMIUM_PATH".to_string(), None),
        ];
        let err = locate_in(None, &env, &[PathBuf::from("/nowhere")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("$CHROME=/nope/chrome"), "{err}");
        assert!(err.contains("$CHROMIUM_PATH (unset)"), "{err}");
        assert!(
            err.contains("chromium, chromium-browser, google-chrome on PATH (/nowhere)"),
            "{err}"
        );
    }

    #[test]
    fn an_explicit_path_wins_and_a_broken_one_is_not_replaced() {
        let sh = PathBuf::from("/bin/sh");
        assert_eq!(locate_in(Some(&sh), &[], &[]).unwrap(), sh);
        let err = locate_in(
            Some(Path::new("/no/chromium")),
            &[],
            &[PathBuf::from("/bin")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/no/chromium"), "{err}");
    }

    #[test]
    fn env_comes_before_path() {
        let env = vec![("CHROME".to_string(), Some("/bin/sh".to_string()))];
        assert_eq!(
            locate_in(None, &env, &[PathBuf::from("/usr/bin")]).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }
}
