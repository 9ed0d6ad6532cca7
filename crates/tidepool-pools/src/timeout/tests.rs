use super::*;

fn fast() -> AdaptiveTimeouts {
    AdaptiveTimeouts::new(AdaptiveTimeoutsConfig {
        min: Duration::from_millis(10),
        min_samples: 5,
        ..AdaptiveTimeoutsConfig::default()
    })
    .unwrap()
}

#[test]
fn unknown_keys_get_the_default_and_warm_up_is_conservative() {
    let t = fast();
    assert_eq!(t.timeout_for("a"), Duration::from_secs(30));
    for i in 0..4 {
        t.record_success("a", Duration::from_millis(100));
        // p99 150 ms (with the 1.5 safety factor), times the warm-up factor 3.
        assert_eq!(
            t.timeout_for("a"),
            Duration::from_millis(450),
            "after {} samples",
            i + 1
        );
    }
    t.record_success("a", Duration::from_millis(100));
    assert_eq!(t.timeout_for("a"), Duration::from_millis(150));
    assert_eq!(t.timeout_for("b"), Duration::from_secs(30));
}

#[test]
fn a_timeout_backs_off_and_successes_bring_it_back() {
    let t = fast();
    for _ in 0..5 {
        t.record_success("a", Duration::from_millis(100));
    }
    t.record_timeout("a");
    assert_eq!(t.timeout_for("a"), Duration::from_millis(300));
    t.record_timeout("a");
    assert_eq!(t.timeout_for("a"), Duration::from_millis(600));
    // Backoff 4 fades by a tenth of its excess per success: 3.7 after one.
    t.record_success("a", Duration::from_millis(100));
    assert_eq!(t.timeout_for("a"), Duration::from_millis(555));
    for _ in 0..60 {
        t.record_success("a", Duration::from_millis(100));
    }
    assert_eq!(t.timeout_for("a"), Duration::from_millis(150));
    let m = t.metrics("a").unwrap();
    assert_eq!((m.samples, m.timeouts, m.backoffs), (66, 2, 2));
}

#[test]
fn bounds_hold_whatever_is_learned() {
    let t = AdaptiveTimeouts::new(AdaptiveTimeoutsConfig {
        min_samples: 1,
        ..AdaptiveTimeoutsConfig::default()
    })
    .unwrap();
    t.record_success("tiny", Duration::from_micros(10));
    assert_eq!(t.timeout_for("tiny"), Duration::from_secs(1));
    t.record_success("huge", Duration::from_secs(500));
    assert_eq!(t.timeout_for("huge"), Duration::from_secs(60));
    for _ in 0..10 {
        t.record_timeout("huge");
    }
    assert_eq!(t.timeout_for("huge"), Duration::from_secs(60));
    assert_eq!(
        t.metrics("huge").unwrap().backoffs,
        0,
        "no backoff past max"
    );
}

#[test]
fn invalid_configs_name_the_field() {
    let bad = |c: AdaptiveTimeoutsConfig| AdaptiveTimeouts::new(c).unwrap_err().to_string();
    assert!(bad(AdaptiveTimeoutsConfig {
        min: Duration::ZERO,
        ..Default::default()
    })
    .contains("timeouts.min"));
    assert!(bad(AdaptiveTimeoutsConfig {
        max: Duration::from_millis(1),
        ..Default::default()
    })
    .contains("timeouts.max"));
    assert!(bad(AdaptiveTimeoutsConfig {
        backoff_factor: 0.5,
        ..Default::default()
    })
    .contains("timeouts.backoff_factor"));
    let e = bad(AdaptiveTimeoutsConfig {
        estimator: EstimatorKind::Percentile {
            quantile: 1.5,
            window: 10,
            safety_factor: 1.0,
        },
        ..Default::default()
    });
    assert!(e.contains("timeouts.estimator.quantile"), "{e}");
}

#[test]
fn saved_state_resumes_and_a_corrupt_file_is_reported_not_fatal() {
    let dir = std::env::temp_dir().join(format!("tidepool-timeouts-{}", std::process::id()));
    let path = dir.join("timeouts.json");
    let t = fast();
    for _ in 0..6 {
        t.record_success("a", Duration::from_millis(200));
    }
    t.save(&path).unwrap();
    let (resumed, problem) = AdaptiveTimeouts::load(t.config().clone(), &path).unwrap();
    assert!(problem.is_none());
    assert_eq!(resumed.timeout_for("a"), t.timeout_for("a"));

    std::fs::write(&path, "{ \"version\": 1, \"keys\": [tru").unwrap();
    let (fresh, problem) = AdaptiveTimeouts::load(t.config().clone(), &path).unwrap();
    assert!(problem.unwrap().to_string().contains("timeouts.json"));
    assert_eq!(fresh.keys(), Vec::<String>::new());

    let other = AdaptiveTimeoutsConfig {
        estimator: EstimatorKind::Rfc6298,
        ..t.config().clone()
    };
    t.save(&path).unwrap();
    let (_, problem) = AdaptiveTimeouts::load(other, &path).unwrap();
    assert!(problem.unwrap().to_string().contains("estimator"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn run_applies_the_timeout_and_names_the_key() {
    let t = fast();
    for _ in 0..5 {
        t.record_success("k", Duration::from_millis(20));
    }
    let after = t.timeout_for("k");
    let err = t
        .run("k", std::future::pending::<Result<(), ()>>())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { ref key, after: a } if key == "k" && a == after),
        "{err}"
    );
    assert_eq!(t.metrics("k").unwrap().timeouts, 1);
    assert_eq!(t.run("k", async { Ok::<_, ()>(7) }).await.unwrap(), Ok(7));
}

#[tokio::test]
async fn run_learns_from_answers_and_not_from_errors() {
    let t = fast();
    let answered = t.run("k", async { Ok::<_, &str>(()) }).await.unwrap();
    assert!(answered.is_ok());
    let before = t.metrics("k").unwrap();
    for _ in 0..50 {
        let failed = t.run("k", async { Err::<(), _>("refused") }).await.unwrap();
        assert_eq!(failed, Err("refused"));
    }
    let after = t.metrics("k").unwrap();
    assert_eq!(
        (after.samples, after.timeouts),
        (before.samples, before.timeouts),
        "fast failures must teach nothing"
    );
}

#[test]
fn a_saved_file_with_absurd_figures_is_refused_by_key_and_file_never_a_panic() {
    let dir = std::env::temp_dir().join(format!("tidepool-timeouts-absurd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = || AdaptiveTimeoutsConfig {
        estimator: EstimatorKind::Rfc6298,
        ..AdaptiveTimeoutsConfig::default()
    };
    let t = AdaptiveTimeouts::new(config()).unwrap();
    t.record_success("api.example", Duration::from_millis(80));
    t.record_timeout("api.example");
    let path = dir.join("timeouts.json");
    t.save(&path).unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    let saved: serde_json::Value = serde_json::from_str(&saved).unwrap();
    for (field, value) in [
        ("srtt", serde_json::json!(1e300)),
        ("rttvar", serde_json::json!(-1.0)),
        ("backoff", serde_json::json!(1e300)),
        ("backoff", serde_json::json!(0.5)),
    ] {
        let mut bad = saved.clone();
        let key = &mut bad["keys"]["api.example"];
        if field == "backoff" {
            key[field] = value;
        } else {
            key["state"][field] = value;
        }
        std::fs::write(&path, bad.to_string()).unwrap();
        let (fresh, problem) = AdaptiveTimeouts::load(config(), &path).unwrap();
        let problem = problem
            .expect("an absurd figure must be reported")
            .to_string();
        assert!(
            problem.contains("api.example")
                && problem.contains(field)
                && problem.contains("timeouts.json"),
            "{problem}"
        );
        // It starts fresh, and every timeout is still a Duration.
        assert!(fresh.metrics("api.example").is_none());
        assert_eq!(fresh.timeout_for("api.example"), config().default);
    }
    std::fs::remove_dir_all(dir).unwrap();
}
