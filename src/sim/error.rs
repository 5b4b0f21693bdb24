//! The simulator's errors.

use std::fmt;

/// Why a virtual host could not be used.
///
/// ```
/// use clockworker::sim::{call_at, HostError};
/// // No host on this thread:
/// let err = call_at(std::time::Duration::ZERO, || {}).unwrap_err();
/// assert_eq!(err, HostError::NoHost);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostError {
    /// A [`Host`](super::Host) is already installed on this thread.
    AlreadyInstalled,
    /// No [`Host`](super::Host) is installed on this thread.
    NoHost,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::AlreadyInstalled => {
                write!(
                    f,
                    "a clockworker::sim::Host is already installed on this thread"
                )
            }
            HostError::NoHost => write!(
                f,
                "no clockworker::sim::Host is installed on this thread (create one first)"
            ),
        }
    }
}

impl std::error::Error for HostError {}
