//! The body of a shard thread: pin, build the host runtime and the executor, report
//! back to the builder, run until told to stop, shut the executor down.

use std::future::{poll_fn, Future};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Poll;

use atomic_waker::AtomicWaker;

use super::host::ShardHost;
use super::local;
use super::pinning::{PinStatus, ShardCpu};
use super::PoolError;
use crate::builder::ExecutorBuilder;
use crate::error::BuildError;
use crate::queue::QueueKey;
use crate::remote_spawn::RemoteSpawner;

/// Makes the executor builder of shard `i`.
pub(super) type MakeBuilder<K> = dyn Fn(usize) -> ExecutorBuilder<K> + Send + Sync;

/// What a shard sends back once its executor runs.
pub(super) struct Started<K> {
    pub(super) spawner: RemoteSpawner<K>,
    pub(super) keys: Vec<K>,
    pub(super) pin: PinStatus,
}

/// Why a shard could not start.
pub(super) enum StartError<K> {
    Runtime(io::Error),
    Build(BuildError<K>),
}

impl<K> StartError<K> {
    pub(super) fn into_pool_error(self, shard: usize) -> PoolError<K> {
        match self {
            StartError::Runtime(error) => PoolError::Runtime { shard, error },
            StartError::Build(error) => PoolError::Build { shard, error },
        }
    }
}

/// The channel a shard reports its start on.
pub(super) type StartReport<K> = mpsc::Sender<Result<Started<K>, StartError<K>>>;

/// Everything a shard thread is started with.
pub(super) struct ShardArgs<K, H> {
    pub(super) index: usize,
    pub(super) cpu: ShardCpu,
    pub(super) make: Arc<MakeBuilder<K>>,
    pub(super) host: Arc<H>,
    pub(super) started: StartReport<K>,
    pub(super) stop: Arc<StopSignal>,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(super) label: String,
}

/// The body of a shard thread.
pub(super) fn shard_main<K: QueueKey + Send + Sync, H: ShardHost>(args: ShardArgs<K, H>) {
    let ShardArgs {
        index,
        cpu,
        make,
        host,
        started,
        stop,
        label,
    } = args;
    let pin = cpu.apply();
    let mut runtime = match host.build(index) {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = started.send(Err(StartError::Runtime(error)));
            return;
        }
    };
    let executor = match make(index).build() {
        Ok(executor) => executor,
        Err(error) => {
            let _ = started.send(Err(StartError::Build(error)));
            return;
        }
    };
    #[cfg(feature = "metrics")]
    executor.set_metrics_label(label);
    #[cfg(not(feature = "metrics"))]
    drop(label);
    let report = Started {
        spawner: executor.remote(),
        keys: executor.queue_keys().to_vec(),
        pin,
    };
    if started.send(Ok(report)).is_err() {
        // The builder is gone (it cannot be, as it waits for this report); stop.
        executor.shutdown();
        return;
    }
    drop(started);
    // The run future owns the executor, so that everything the executor holds (pending
    // tasks' futures, with the sockets and timers they hold) is dropped on this thread
    // and inside the host's runtime, before the runtime itself is dropped.
    let run = async move {
        let current = local::enter(index, executor.clone());
        executor.run_until(stop.wait()).await;
        executor.shutdown();
        drop(current);
        drop(executor);
    };
    host.block_on(&mut runtime, run);
    drop(runtime);
}

/// Tells a shard to stop: its run loop drives `wait()` and returns once it resolves.
#[derive(Default)]
pub(super) struct StopSignal {
    stopped: AtomicBool,
    waker: AtomicWaker,
}

impl StopSignal {
    /// Asks the shard to stop (from any thread; idempotent).
    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Resolves once [`stop`](Self::stop) was called.
    pub(super) fn wait(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.stopped.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.stopped.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}
