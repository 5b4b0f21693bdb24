//! Malformed workload files get a typed error that names the line and the field
//! (feature `sim`); sweeps of unknown settings and settings the executor refuses too.
#![cfg(feature = "sim")]

use clockworker::sim::{Workload, WorkloadError};

const GOOD: &str = r#"duration_ms = 100

[[queue]]
name = "fg"
weight = 8

[[queue.class]]
name = "req"
arrival = { kind = "poisson", rate_per_s = 1000 }
cpu = { dist = "uniform", min_us = 100, max_us = 500 }
"#;

/// The line and field of the error `text` gets, which must be `Invalid`.
fn invalid(text: &str) -> (usize, Option<String>, String) {
    match Workload::from_toml(text) {
        Err(WorkloadError::Invalid {
            line,
            field,
            message,
            ..
        }) => (line, field, message),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn the_good_file_loads() {
    assert!(Workload::from_toml(GOOD).is_ok());
}

#[test]
fn a_value_of_the_wrong_type_names_its_line_and_field() {
    let (line, field, _) = invalid(&GOOD.replace("weight = 8", "weight = \"eight\""));
    assert_eq!((line, field.as_deref()), (5, Some("weight")));
}

#[test]
fn a_missing_field_is_named() {
    let (line, field, message) = invalid(&GOOD.replace("rate_per_s = 1000", "rate = 1000"));
    assert_eq!(line, 9);
    assert!(field.is_some(), "{message}");
    assert!(message.contains("rate"), "{message}");
}

#[test]
fn an_unknown_field_is_named() {
    let (line, field, _) = invalid(&GOOD.replace("weight = 8", "weight = 8\nwieght = 2"));
    assert_eq!((line, field.as_deref()), (6, Some("wieght")));
}

#[test]
fn a_bad_distribution_is_reported_at_its_line() {
    let (line, field, message) = invalid(&GOOD.replace("min_us = 100", "min_us = 900"));
    assert_eq!(line, 10);
    assert_eq!(field.as_deref(), Some("cpu"));
    assert!(message.contains("min_us"), "{message}");
    let (line, _, message) = invalid(&GOOD.replace("\"uniform\"", "\"gaussian\""));
    assert_eq!(line, 10);
    assert!(message.contains("gaussian"), "{message}");
}

#[test]
fn broken_rules_across_fields_are_reported_at_the_table() {
    let (line, _, message) = invalid(&format!("{GOOD}between = \"sleep\"\n"));
    assert_eq!(line, 7, "{message}");
    assert!(message.contains("wait"), "{message}");
    let busy = GOOD.replace(
        "{ kind = \"poisson\", rate_per_s = 1000 }",
        "{ kind = \"busy\", tasks = 2 }",
    );
    let (_, _, message) = invalid(&busy);
    assert!(message.contains("give the thread back"), "{message}");
    let (_, _, message) = invalid(&GOOD.replace("rate_per_s = 1000", "rate_per_s = 0"));
    assert!(message.contains("rate_per_s"), "{message}");
    let (line, _, message) = invalid(&format!("{GOOD}source = \"thread\"\ngroup = \"t\"\n"));
    assert_eq!(line, 7, "{message}");
    assert!(message.contains("without a group"), "{message}");
}

#[test]
fn two_queues_of_one_name_are_refused_at_the_second() {
    let text = format!("{GOOD}\n[[queue]]\nname = \"fg\"\nweight = 1\n");
    let (line, field, _) = invalid(&text);
    assert_eq!((line, field.as_deref()), (13, Some("name")));
}

#[test]
fn top_level_numbers_are_checked() {
    let (line, field, _) = invalid(&GOOD.replace("duration_ms = 100", "duration_ms = 0"));
    assert_eq!((line, field.as_deref()), (1, Some("duration_ms")));
    let text = GOOD.replace("duration_ms = 100", "duration_ms = 100\nwarmup_ms = 200");
    let (line, field, _) = invalid(&text);
    assert_eq!((line, field.as_deref()), (2, Some("warmup_ms")));
    let (_, _, message) = invalid("duration_ms = 1\n");
    assert!(message.contains("queue"), "{message}");
    let (_, field, _) = invalid(&GOOD.replace("duration_ms = 100", "duration_ms = 1e12"));
    assert_eq!(field.as_deref(), Some("duration_ms"));
}

#[test]
fn sizes_that_would_exhaust_memory_are_refused() {
    let (line, _, message) = invalid(&GOOD.replace("rate_per_s = 1000", "rate_per_s = 1e12"));
    assert_eq!(line, 7, "{message}");
    assert!(message.contains("rate_per_s"), "{message}");
    let busy = GOOD.replace(
        "{ kind = \"poisson\", rate_per_s = 1000 }",
        "{ kind = \"busy\", tasks = 4000000000 }",
    );
    let (_, _, message) = invalid(&format!("{busy}between = \"yield_now\"\n"));
    assert!(message.contains("tasks"), "{message}");
    let (_, _, message) = invalid(&format!("{GOOD}segments = [1, 2000000]\n"));
    assert!(message.contains("segments"), "{message}");
}

#[test]
fn settings_the_executor_refuses_are_its_build_error() {
    let text = format!("{GOOD}\n[executor]\nsched_latency_us = 50\nmin_slice_us = 100\n");
    match Workload::from_toml(&text) {
        Err(WorkloadError::Settings(e)) => assert!(e.to_string().contains("min_slice")),
        other => panic!("{other:?}"),
    }
    let zero = GOOD.replace("weight = 8", "weight = 0");
    assert!(matches!(
        Workload::from_toml(&zero),
        Err(WorkloadError::Settings(_))
    ));
}

#[test]
fn sweeps_name_settings_that_exist() {
    let mut w = Workload::from_toml(GOOD).unwrap();
    w.set("queue.fg.weight", "3").unwrap();
    w.set("executor.sched_latency_us", "4000").unwrap();
    w.set("queue.fg.class.req.arrival.rate_per_s", "10")
        .unwrap();
    for (param, value) in [
        ("queue.bg.weight", "3"),
        ("queue.fg.wait", "3"),
        ("executor.nope_us", "1"),
        ("queue.fg.weight", "-1"),
    ] {
        match w.set(param, value) {
            Err(WorkloadError::Sweep { param: p, .. }) => assert_eq!(p, param),
            other => panic!("{param}={value}: {other:?}"),
        }
    }
}

#[test]
fn an_unreadable_file_says_which() {
    match Workload::load("/nonexistent/workload.toml") {
        Err(e @ WorkloadError::Read { .. }) => assert!(e.to_string().contains("nonexistent")),
        other => panic!("{other:?}"),
    }
}
