use super::*;

fn fleet(n: usize, cap: Option<usize>) -> Arc<Fleet> {
    let endpoints: Vec<String> = (0..n).map(|i| format!("ws://e{i}")).collect();
    Arc::new(Fleet::new(
        &endpoints,
        FleetPolicy {
            max_leases_per_endpoint: cap,
            ..FleetPolicy::default()
        },
    ))
}

#[test]
fn new_slots_go_to_the_endpoint_with_the_fewest_until_each_is_at_its_cap() {
    let f = fleet(3, Some(2));
    let slots: Vec<EndpointTicket> = (0..6).map(|_| f.choose(&[]).unwrap()).collect();
    let on: Vec<usize> = slots.iter().map(|s| s.index).collect();
    assert_eq!(on, [0, 1, 2, 0, 1, 2]);
    assert!(matches!(f.choose(&[]), Err(Refusal::AtCapacity)));
    drop(slots);
    assert!(f.stats().iter().all(|s| s.slots == 0));
}

#[test]
fn a_lost_endpoint_gets_no_slot_until_a_retry_brings_it_back() {
    let f = fleet(2, None);
    f.lost(0, "connection closed");
    for _ in 0..3 {
        assert_eq!(f.choose(&[]).unwrap().index, 1);
    }
    assert!(f.due_retries().is_empty(), "retried before its backoff");
    std::thread::sleep(f.policy.backoff.mul_f64(1.3));
    assert_eq!(f.due_retries(), [(0, "ws://e0".to_owned())]);
    f.retried(0, Err("refused".into()));
    assert_eq!(
        f.stats()[0].backoff_ms,
        (f.policy.backoff * 2).as_millis() as u64
    );
    assert_eq!(f.stats()[0].state, EndpointState::BackingOff);
    f.retried(0, Ok(()));
    assert_eq!(f.choose(&[]).unwrap().index, 0);
}

fn fleet_with_retries(n: usize, max_retries: u32) -> Arc<Fleet> {
    let endpoints: Vec<String> = (0..n).map(|i| format!("ws://e{i}")).collect();
    Arc::new(Fleet::new(
        &endpoints,
        FleetPolicy {
            backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            max_retries: Some(max_retries),
            ..FleetPolicy::default()
        },
    ))
}

#[test]
fn an_endpoint_is_given_up_after_max_retries_failed_retries() {
    let f = fleet_with_retries(2, 2);
    f.lost(0, "connection closed");
    for attempt in 1..=2 {
        std::thread::sleep(Duration::from_millis(3));
        assert_eq!(f.due_retries().len(), 1, "retry {attempt} not due");
        f.retried(0, Err("refused".into()));
    }
    std::thread::sleep(Duration::from_millis(3));
    assert!(f.due_retries().is_empty(), "retried past max_retries");
    assert!(!f.retry_due());
    assert_eq!(f.stats()[0].state, EndpointState::GivenUp);
    f.lost(0, "lost again");
    assert_eq!(f.stats()[0].state, EndpointState::GivenUp);
    assert_eq!(f.choose(&[]).unwrap().index, 1);
}

#[test]
fn max_retries_zero_gives_an_endpoint_up_at_its_loss() {
    let f = fleet_with_retries(1, 0);
    f.lost(0, "connection closed");
    std::thread::sleep(Duration::from_millis(3));
    assert!(f.due_retries().is_empty());
    let Err(Refusal::NoneUp(e)) = f.choose(&[]) else {
        panic!("a given-up endpoint was chosen")
    };
    assert!(e.to_string().contains("given up"), "{e}");
}

#[test]
fn with_none_up_the_error_names_every_endpoint_and_why() {
    let f = fleet(2, None);
    f.lost(0, "connection refused");
    f.lost(1, "heartbeat unanswered");
    let Err(Refusal::NoneUp(e)) = f.choose(&[]) else {
        panic!("an endpoint was chosen with none up")
    };
    let text = e.to_string();
    for says in [
        "ws://e0",
        "connection refused",
        "ws://e1",
        "heartbeat unanswered",
    ] {
        assert!(text.contains(says), "{text}");
    }
}

#[test]
fn an_endpoint_two_slots_above_the_lightest_is_over_its_share() {
    let f = fleet(2, None);
    f.lost(1, "gone");
    let held: Vec<EndpointTicket> = (0..3).map(|_| f.choose(&[]).unwrap()).collect();
    assert!(!f.over_share(0), "the only endpoint up holds no excess");
    f.retried(1, Ok(()));
    assert!(f.over_share(0));
    assert!(!f.over_share(1));
    drop(held);
}
