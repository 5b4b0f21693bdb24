//! Which executor is polling on this thread right now (for `yield_maybe` and for the
//! `run_until` future's waker), and the guard that marks a poll of the run loop.

use std::cell::RefCell;
use std::rc::Rc;

use crate::core::Core;

thread_local! {
    /// The executor whose run loop is being polled on this thread, innermost first.
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Marks `core` as polling on this thread until dropped, restoring the previous value
/// (executors may nest: a task of one may `run_until` another). Also restores state
/// when a task panic unwinds through the run loop.
pub(crate) struct Entered {
    core: Rc<Core>,
    previous: Option<Rc<Core>>,
}

impl Entered {
    /// # Panics
    /// When the same executor is already being polled: `run`/`run_until` were called
    /// from inside one of its own tasks, or two of its run futures were polled at once.
    pub(crate) fn new(core: &Rc<Core>) -> Self {
        assert!(
            !core.is_polling(),
            "clockworker: Executor::run/run_until polled while the same executor is already \
             running (called from inside one of its own tasks, or two run futures of one \
             executor polled at once); an executor runs one loop at a time"
        );
        core.set_polling(true);
        let previous = CURRENT.with(|current| current.borrow_mut().replace(core.clone()));
        Entered {
            core: core.clone(),
            previous,
        }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.core.set_polling(false);
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|current| *current.borrow_mut() = previous);
    }
}

/// Runs `f` with the executor polling on this thread, if any.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Core>) -> R) -> R {
    let mut f = Some(f);
    let result = CURRENT.try_with(|current| {
        let current = current.borrow();
        (f.take().expect("called once"))(current.as_deref())
    });
    match result {
        Ok(r) => r,
        Err(_) => (f.take().expect("not yet called"))(None),
    }
}
