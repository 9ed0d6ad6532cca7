//! The URL lists `tidepool validate --urls` reads: the user's own pages for
//! the end-to-end comparison.

use std::path::Path;

use crate::error::{Error, Result};

/// The URLs of a `--urls` file: one per line, blank lines and `#` comments
/// skipped; the error names the file and line of anything else.
pub fn read_urls(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    parse_urls(&path.display().to_string(), &text)
}

/// [`read_urls`] of `text`, as if read from `source_name`.
///
/// ```
/// use tidepool::scenarios::parse_urls;
///
/// let urls = parse_urls("urls.txt", "# mine\nhttps://example.com/\n\n")?;
/// assert_eq!(urls, ["https://example.com/"]);
/// let err = parse_urls("urls.txt", "https://a/\nftp://b/\n").unwrap_err();
/// assert!(err.to_string().starts_with("urls.txt:2:"));
/// # Ok::<(), tidepool::Error>(())
/// ```
pub fn parse_urls(source_name: &str, text: &str) -> Result<Vec<String>> {
    let mut urls = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !(line.starts_with("http://") || line.starts_with("https://")) {
            return Err(Error::BadInputLine {
                source_name: source_name.to_owned(),
                line: i + 1,
                text: line.to_owned(),
                reason: "not an http:// or https:// URL".into(),
            });
        }
        urls.push(line.to_owned());
    }
    if urls.is_empty() {
        return Err(Error::config(
            "--urls",
            format!("{source_name} lists no URLs"),
        ));
    }
    Ok(urls)
}
