//! A `tracing` span around every task poll (feature `tracing`; see the parent module's
//! docs for its name and fields). Knows nothing of the executor: the run loop calls
//! [`enter`] and [`exit`] around each poll with its id and its queues' labels.

use std::fmt;
use std::rc::Rc;

/// A queue as a span field: its key's label, or its index when unknown.
struct QueueName<'a> {
    name: Option<&'a str>,
    index: usize,
}

impl fmt::Display for QueueName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name {
            Some(name) => f.write_str(name),
            None => write!(f, "#{}", self.index),
        }
    }
}

/// Around a poll of task `task` (its arrival number) of queue `queue` of executor
/// `executor`, whose queue labels are `queue_names`: enters the poll's span, if any
/// subscriber may want `TRACE` spans. Without one, this is two loads and a compare: no
/// `Span` is built (a disabled one still costs a call and its field setup).
#[inline(always)]
pub(crate) fn enter(
    executor: u64,
    queue_names: &[Rc<str>],
    queue: usize,
    task: u64,
) -> Option<tracing::span::EnteredSpan> {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    let trace = tracing::Level::TRACE;
    if trace <= STATIC_MAX_LEVEL && trace <= LevelFilter::current() {
        Some(enter_span(executor, queue_names, queue, task))
    } else {
        None
    }
}

/// Builds and enters the span; its field values are computed only when a subscriber
/// wants it.
#[inline(never)]
fn enter_span(
    executor: u64,
    queue_names: &[Rc<str>],
    queue: usize,
    task: u64,
) -> tracing::span::EnteredSpan {
    let name = QueueName {
        name: queue_names.get(queue).map(|name| &**name),
        index: queue,
    };
    tracing::trace_span!(
        target: "clockworker::poll",
        "poll",
        executor,
        queue = %name,
        task,
    )
    .entered()
}

/// After a task poll: exits the poll's span. `None` costs a compare (a plain `drop`
/// of the `Option` is an out-of-line call).
#[inline(always)]
pub(crate) fn exit(span: Option<tracing::span::EnteredSpan>) {
    if let Some(span) = span {
        exit_span(span);
    }
}

#[inline(never)]
fn exit_span(span: tracing::span::EnteredSpan) {
    drop(span);
}
