//! The one error type of the ranking core: why a request was not ranked. It knows no
//! transport; HTTP (`http::error`) and gRPC (`grpc`) each map it at their own edge.

/// Why a ranking request was refused or failed. Messages name the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RankError {
    /// The request is malformed or invalid; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// The body or the candidate count is over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// No model version serves yet, or the service is shutting down.
    #[error("{0}")]
    NotReady(String),
    /// Every ranking place is taken (load shedding).
    #[error("{0}")]
    Overloaded(String),
    /// The request's deadline passed.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A fault of ours; the detail is logged at the edge, never shown to the caller.
    #[error("internal error")]
    Internal(String),
}

impl RankError {
    /// The machine-readable error code, the same in every transport.
    pub fn code(&self) -> &'static str {
        match self {
            RankError::Invalid(_) => "invalid_request",
            RankError::TooLarge(_) => "too_large",
            RankError::NotReady(_) => "not_ready",
            RankError::Overloaded(_) => "overloaded",
            RankError::DeadlineExceeded(_) => "deadline_exceeded",
            RankError::Internal(_) => "internal",
        }
    }
}
