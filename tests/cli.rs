//! The command line's contract with its users: output, exit codes, messages.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn tidepool(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidepool"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn stats_prints_the_summary_as_json_and_flags_outliers() {
    let out = tidepool(&["stats", "-"], "1\n2\n3\n4\n100\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mean"], 22.0);
    assert_eq!(v["median"], 3.0);
    assert_eq!(v["outliers"]["indices"], serde_json::json!([4]));
}

#[test]
fn stats_skips_blank_lines_and_comments_and_prints_a_table() {
    let out = tidepool(
        &["stats", "-", "--format", "table"],
        "# latencies\n\n5\n7 # slow one\n",
    );
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("n                         2"), "{text}");
    assert!(text.contains("mean                      6.0000"), "{text}");
}

#[test]
fn a_bad_line_exits_2_naming_line_and_text() {
    let out = tidepool(&["stats", "-"], "1\n\nabc\n");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("<stdin>:3") && err.contains("\"abc\""),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn no_numbers_and_missing_files_exit_2_with_a_reason() {
    let out = tidepool(&["stats", "-"], "# nothing\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no samples"));
    let out = tidepool(&["stats", "/no/such/file"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file"));
}
