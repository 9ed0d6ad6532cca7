//! Every parser of user input, fed thousands of broken inputs: the contract
//! TOML, report JSON, URL lists, the saved timeouts file and `stats` samples.
//! Whatever the input, the result is a value or an error that names the file
//! (and the line, where the parser knows it), never a panic.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use tidepool::contract::Contract;
use tidepool::report::read_json;
use tidepool::scenarios::{catalog, parse_urls};
use tidepool::stats::parse_samples;
use tidepool::timeout::{AdaptiveTimeouts, AdaptiveTimeoutsConfig, EstimatorKind};

const CONTRACT: &str = include_str!("../perf-contract.toml");
const REPORT: &str = include_str!("data/report-v1-aot_cache.json");

/// Characters that break parsers: quotes, brackets, separators, escapes,
/// digits and signs, a multi-byte one.
const NASTY: &[&str] = &[
    "\"", "'", "[", "]", "{", "}", "=", ",", ".", "\\", "\n", "#", ":", "-", "1e309", "0", "9",
    "NaN", "inf", "null", "é", "\u{0}", " ",
];

/// Up to 8 edits (delete a span, insert a nasty token, duplicate a span) of
/// `base` at char boundaries.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            any::<prop::sample::Index>(),
            0..3u8,
            0..NASTY.len(),
            1..12usize,
        ),
        1..8,
    )
    .prop_map(move |edits| {
        let mut text: Vec<char> = base.chars().collect();
        for (at, op, token, len) in edits {
            if text.is_empty() {
                break;
            }
            let i = at.index(text.len());
            let end = (i + len).min(text.len());
            match op {
                0 => {
                    text.drain(i..end);
                }
                1 => {
                    let t: Vec<char> = NASTY[token].chars().collect();
                    text.splice(i..i, t);
                }
                _ => {
                    let span: Vec<char> = text[i..end].to_vec();
                    text.splice(i..i, span);
                }
            }
        }
        text.into_iter().collect()
    })
}

/// A scratch file for parsers that read from disk, one per test thread.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tidepool-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}-{:?}", std::thread::current().id()))
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_broken_contract_is_an_error_naming_the_file(text in mutated(CONTRACT)) {
        let path = Path::new("perf-contract.toml");
        if let Err(e) = Contract::parse(path, &text, &catalog()) {
            let message = e.to_string();
            prop_assert!(message.contains("perf-contract.toml"), "{message}");
        }
    }

    #[test]
    fn arbitrary_text_as_a_contract_is_an_error_naming_the_file(text in ".{0,200}") {
        if let Err(e) = Contract::parse(Path::new("c.toml"), &text, &catalog()) {
            prop_assert!(e.to_string().contains("c.toml"), "{e}");
        }
    }

    #[test]
    fn a_broken_report_is_an_error_naming_the_file(text in mutated(REPORT)) {
        let path = scratch("report.json");
        std::fs::write(&path, &text).unwrap();
        if let Err(e) = read_json(&path) {
            prop_assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
    }

    #[test]
    fn a_broken_url_list_is_an_error_naming_the_file_and_line(
        text in mutated("# my pages\nhttps://example.com/a\n\nhttp://127.0.0.1:8080/b # x\n")
    ) {
        match parse_urls("urls.txt", &text) {
            Ok(urls) => prop_assert!(urls.iter().all(|u| u.starts_with("http"))),
            Err(e) => prop_assert!(e.to_string().contains("urls.txt"), "{e}"),
        }
    }

    #[test]
    fn broken_samples_are_an_error_naming_the_source_and_line(
        text in mutated("# ms\n1.5\n2.25 # slow\n\n3e2\n-4\n")
    ) {
        match parse_samples("samples.txt", &text) {
            Ok(xs) => prop_assert!(xs.iter().all(|x| x.is_finite())),
            Err(e) => prop_assert!(e.to_string().contains("samples.txt"), "{e}"),
        }
    }

    #[test]
    fn a_broken_timeouts_file_never_panics_and_names_the_file(
        text in mutated(SAVED_TIMEOUTS)
    ) {
        let path = scratch("timeouts.json");
        std::fs::write(&path, &text).unwrap();
        let (timeouts, problem) = AdaptiveTimeouts::load(rfc6298(), &path).unwrap();
        if let Some(e) = problem {
            prop_assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        for key in timeouts.keys() {
            let t = timeouts.timeout_for(&key);
            prop_assert!(t >= rfc6298().min && t <= rfc6298().max, "{key}: {t:?}");
        }
    }

    #[test]
    fn any_figures_in_a_timeouts_file_give_timeouts_within_bounds(
        srtt in any::<f64>(), rttvar in any::<f64>(), backoff in any::<f64>(), samples in any::<u64>()
    ) {
        let path = scratch("figures.json");
        let saved = serde_json::json!({
            "version": 1,
            "estimator": "rfc6298",
            "keys": { "api.example": {
                "state": { "kind": "rfc6298", "srtt": srtt, "rttvar": rttvar },
                "samples": samples, "timeouts": 0, "backoffs": 0, "backoff": backoff,
            }},
        });
        std::fs::write(&path, saved.to_string()).unwrap();
        let (timeouts, problem) = AdaptiveTimeouts::load(rfc6298(), &path).unwrap();
        let t = timeouts.timeout_for("api.example");
        prop_assert!(t >= rfc6298().min && t <= rfc6298().max, "{t:?}, problem {problem:?}");
    }
}

fn rfc6298() -> AdaptiveTimeoutsConfig {
    AdaptiveTimeoutsConfig {
        estimator: EstimatorKind::Rfc6298,
        min: Duration::from_millis(100),
        ..AdaptiveTimeoutsConfig::default()
    }
}

const SAVED_TIMEOUTS: &str = r#"{
  "version": 1,
  "estimator": "rfc6298",
  "keys": {
    "api.example": {
      "state": { "kind": "rfc6298", "srtt": 0.08, "rttvar": 0.02 },
      "samples": 40, "timeouts": 1, "backoffs": 1, "backoff": 2.0
    },
    "slow.example": {
      "state": { "kind": "rfc6298", "srtt": 1.5, "rttvar": 0.4 },
      "samples": 3, "timeouts": 0, "backoffs": 0, "backoff": 1.0
    }
  }
}"#;
