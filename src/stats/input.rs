use crate::error::{Error, Result};

/// Reads one number per line from `text`, which came from `source_name` (a file
/// name or `<stdin>`, used in errors).
///
/// Blank lines and lines starting with `#` are skipped, as is anything after a
/// `#` on a line. A line that is not a finite number is an error naming its
/// one-based line number and its text.
///
/// # Example
///
/// ```
/// use tidepool::stats::parse_samples;
///
/// let xs = parse_samples("latencies.txt", "# ms\n1.5\n\n2 # slow\n")?;
/// assert_eq!(xs, vec![1.5, 2.0]);
/// let err = parse_samples("<stdin>", "1\nabc\n").unwrap_err();
/// assert_eq!(err.to_string(), "<stdin>:2: \"abc\" is not a number (invalid float literal)");
/// # Ok::<(), tidepool::Error>(())
/// ```
pub fn parse_samples(source_name: &str, text: &str) -> Result<Vec<f64>> {
    let mut samples = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason: String| Error::BadInputLine {
            source_name: source_name.to_owned(),
            line: i + 1,
            text: raw.trim().to_owned(),
            reason,
        };
        let x: f64 = line
            .parse()
            .map_err(|e: std::num::ParseFloatError| bad(e.to_string()))?;
        if !x.is_finite() {
            return Err(bad("not a finite number".into()));
        }
        samples.push(x);
    }
    Ok(samples)
}
