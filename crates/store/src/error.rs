use tierdesk_core::DecideError;
use tierdesk_core::rules::RuleError;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change was based on an older version of the ticket.
    #[error("the ticket changed since version {expected}; it is now at version {current}")]
    Conflict { expected: i64, current: i64 },
    #[error("a {entity} with this {field} already exists")]
    Duplicate {
        entity: &'static str,
        field: &'static str,
    },
    #[error("{0}")]
    InUse(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Rejected(#[from] DecideError),
    /// A rule that does not validate: every problem, each with its place.
    #[error("the rule is not valid: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidRule(Vec<RuleError>),
    /// A template or runbook that does not validate: every problem, each with its path.
    #[error("not valid: {}", .0.iter().map(|e| format!("{}: {}", e.path, e.message)).collect::<Vec<_>>().join("; "))]
    InvalidConfig(Vec<tierdesk_core::validate::ConfigError>),
    /// An escalation whose template is not complete: every missing or wrong field.
    #[error("the escalation template is not complete: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    EscalationIncomplete(Vec<tierdesk_core::escalation::FieldProblem>),
    #[error("the store is shutting down")]
    Closed,
    #[error("storage error: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            field,
            message: message.into(),
        }
    }
}
