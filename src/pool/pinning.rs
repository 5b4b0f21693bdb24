//! Pinning shard threads to CPUs: which CPU each shard asks for, and what came of it.

use std::io;

/// Which CPUs the shards are pinned to.
#[derive(Debug, Clone)]
pub(super) enum Pinning {
    None,
    /// Shard `i` on the `i`-th CPU the building thread may run on.
    AllowedCpus,
    /// Shard `i` on `cpus[i % len]`.
    Cpus(Vec<usize>),
}

impl Pinning {
    /// From a user's list: an empty list pins nothing.
    pub(super) fn cpus(cpus: Vec<usize>) -> Self {
        if cpus.is_empty() {
            Pinning::None
        } else {
            Pinning::Cpus(cpus)
        }
    }

    /// The CPU each of `count` shards pins itself to, if any, or why none can be
    /// chosen. Runs on the building thread (`AllowedCpus` reads its affinity).
    pub(super) fn shard_cpus(&self, count: usize) -> Vec<ShardCpu> {
        match self {
            Pinning::None => (0..count).map(|_| ShardCpu::None).collect(),
            Pinning::Cpus(cpus) => (0..count)
                .map(|i| ShardCpu::Cpu(cpus[i % cpus.len()]))
                .collect(),
            Pinning::AllowedCpus => match affinity::allowed_cpus() {
                Ok(cpus) if !cpus.is_empty() => (0..count)
                    .map(|i| ShardCpu::Cpu(cpus[i % cpus.len()]))
                    .collect(),
                Ok(_) => (0..count)
                    .map(|_| ShardCpu::Unknown(io::ErrorKind::NotFound.into()))
                    .collect(),
                Err(error) => (0..count)
                    .map(|_| ShardCpu::Unknown(io::Error::new(error.kind(), error.to_string())))
                    .collect(),
            },
        }
    }
}

/// What a shard is told about pinning.
pub(super) enum ShardCpu {
    None,
    Cpu(usize),
    /// Pinning was asked for, but the CPUs could not be listed.
    Unknown(io::Error),
}

impl ShardCpu {
    /// Pins the calling (shard) thread as asked, and says how it went.
    pub(super) fn apply(self) -> PinStatus {
        match self {
            ShardCpu::None => PinStatus::NotRequested,
            ShardCpu::Cpu(cpu) => match affinity::pin_current_thread(cpu) {
                Ok(()) => PinStatus::Pinned { cpu },
                Err(error) => PinStatus::Failed {
                    cpu: Some(cpu),
                    error,
                },
            },
            ShardCpu::Unknown(error) => PinStatus::Failed { cpu: None, error },
        }
    }
}

/// Whether and where a shard's thread was pinned, as reported by
/// [`Pool::pin_status`](super::Pool::pin_status).
///
/// ```rust
/// use clockworker::pool::{PinStatus, PoolBuilder};
/// use clockworker::ExecutorBuilder;
///
/// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
///     .shards(1)
///     .pin_to_cores()
///     .build()
///     .unwrap();
/// match pool.pin_status(0) {
///     Some(PinStatus::Pinned { cpu }) => println!("shard 0 on CPU {cpu}"),
///     Some(PinStatus::Failed { cpu, error }) => println!("CPU {cpu:?} refused: {error}"),
///     Some(PinStatus::NotRequested) => unreachable!("pinning was asked for"),
///     Some(_) | None => unreachable!(),
/// }
/// # pool.shutdown().unwrap();
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PinStatus {
    /// The pool was not asked to pin.
    NotRequested,
    /// The shard's thread runs only on `cpu`.
    Pinned {
        /// The CPU number (as the kernel counts them).
        cpu: usize,
    },
    /// Pinning failed; the thread runs where the OS puts it.
    Failed {
        /// The CPU asked for, or `None` when the CPUs could not be listed.
        cpu: Option<usize>,
        /// What the OS said (`Unsupported` off Linux).
        error: io::Error,
    },
}

/// CPU affinity of the calling thread.
mod affinity {
    use std::io;

    /// The CPUs the calling thread may run on, in increasing order.
    #[cfg(target_os = "linux")]
    pub(super) fn allowed_cpus() -> io::Result<Vec<usize>> {
        // SAFETY: `cpu_set_t` is a plain array of integers; all zeroes is a valid
        // (empty) set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, writable `cpu_set_t` and the size passed is its
        // size; pid 0 names the calling thread.
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..set_size())
            // SAFETY: `cpu` is below `CPU_SETSIZE`, so `CPU_ISSET` reads inside `set`.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect())
    }

    /// Restricts the calling thread to `cpu`.
    #[cfg(target_os = "linux")]
    pub(super) fn pin_current_thread(cpu: usize) -> io::Result<()> {
        if cpu >= set_size() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        // SAFETY: as in `allowed_cpus`, all zeroes is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu < CPU_SETSIZE` (checked above), so `CPU_SET` writes inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a valid `cpu_set_t` and the size passed is its size; pid 0
        // names the calling thread.
        let rc =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn set_size() -> usize {
        usize::try_from(libc::CPU_SETSIZE).unwrap_or(0)
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn allowed_cpus() -> io::Result<Vec<usize>> {
        Err(io::ErrorKind::Unsupported.into())
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn pin_current_thread(_cpu: usize) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}
