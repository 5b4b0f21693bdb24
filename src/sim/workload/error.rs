//! What can be wrong with a workload: the file cannot be read, its text breaks a rule
//! (reported with its line and the field), a sweep names no setting, or the executor
//! refuses the settings.

use std::fmt;
use std::path::PathBuf;

use crate::sim::HostError;
use crate::{BuildError, SpawnError};

/// Why a workload could not be loaded, changed or run.
///
/// ```
/// use clockworker::sim::{Workload, WorkloadError};
///
/// let text = "duration_ms = 10\n[[queue]]\nname = \"fg\"\nweight = \"heavy\"\n";
/// match Workload::from_toml(text) {
///     Err(WorkloadError::Invalid { line, field, .. }) => {
///         assert_eq!(line, 4);
///         assert_eq!(field.as_deref(), Some("weight"));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum WorkloadError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The text is not a valid workload.
    Invalid {
        /// 1-based line of the offending value or table.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The field concerned, when it can be told.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A `--sweep` or [`Workload::set`](super::Workload::set) named no setting of the
    /// workload, or a value that does not fit it.
    Sweep {
        /// The setting's path, such as `queue.fg.weight`.
        param: String,
        /// What is wrong.
        message: String,
    },
    /// The executor refused the workload's settings.
    Settings(BuildError<usize>),
    /// The executor refused a queue of the workload.
    Spawn(SpawnError<usize>),
    /// No simulation can run on this thread now (a host is installed already).
    Host(HostError),
}

impl fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkloadError::Read { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            WorkloadError::Invalid {
                line,
                column,
                field,
                message,
            } => {
                write!(f, "line {line}, column {column}: ")?;
                if let Some(field) = field {
                    write!(f, "field `{field}`: ")?;
                }
                write!(f, "{message}")
            }
            WorkloadError::Sweep { param, message } => write!(f, "setting `{param}`: {message}"),
            WorkloadError::Settings(error) => {
                write!(f, "the executor refuses these settings: {error}")
            }
            WorkloadError::Spawn(error) => write!(f, "the executor refuses a queue: {error}"),
            WorkloadError::Host(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for WorkloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WorkloadError::Read { error, .. } => Some(error),
            WorkloadError::Settings(error) => Some(error),
            WorkloadError::Spawn(error) => Some(error),
            WorkloadError::Host(error) => Some(error),
            _ => None,
        }
    }
}

/// The 1-based line and column of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The key whose value starts at byte `offset`: the bare key before the `=` that
/// precedes it on its line, if there is one.
pub(super) fn key_before(text: &str, offset: usize) -> Option<String> {
    let before = &text[..offset.min(text.len())];
    let line = before.rsplit('\n').next()?;
    let eq = line.rfind('=')?;
    let head = line[..eq].trim_end();
    let key: String = head
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || *c == '.')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!key.is_empty()).then_some(key)
}

/// A field named in a serde message (``missing field `rate_per_s` ``).
pub(super) fn field_in_message(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("field `")?;
    let (field, _) = rest.split_once('`')?;
    Some(field.to_string())
}
