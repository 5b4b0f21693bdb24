//! A task's panic that leaves `run_until` (the default) says which queue's task it
//! was and how to catch task panics instead. Checked on the stderr of a child process:
//! this test binary, run again on the test below that provokes the panic.

mod common;

use std::process::Command;

use clockworker::ExecutorBuilder;

/// Set in the child process: `provoke` then panics for real.
const CHILD: &str = "CLOCKWORKER_PANIC_MESSAGE_CHILD";

#[test]
fn provoke() {
    let _watchdog = common::watchdog();
    if std::env::var_os(CHILD).is_none() {
        return; // only the child process provokes the panic
    }
    let executor = ExecutorBuilder::new()
        .with_queue("ingest", 1)
        .build()
        .unwrap();
    let task = executor
        .queue("ingest")
        .unwrap()
        .spawn(async { panic!("the task's own message") });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _ = rt.block_on(executor.run_until(task));
}

#[test]
fn a_propagated_task_panic_names_its_queue_and_the_way_to_catch_it() {
    let _watchdog = common::watchdog();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "provoke", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs again");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the child's test must fail: {stderr}"
    );
    for needle in [
        "the task's own message",
        "in queue ingest",
        "Executor::run/run_until",
        "with_panic_on_task_panic(false)",
        "JoinError::Panic",
    ] {
        assert!(
            stderr.contains(needle),
            "{needle:?} missing from:\n{stderr}"
        );
    }
}
