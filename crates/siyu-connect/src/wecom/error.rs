//! What a WeCom call can end in, classified once so callers act on the kind, not on
//! error numbers: a configuration error (the connector is unhealthy until an admin
//! fixes it; no retry), a frequency limit (the API pauses), something transient (try
//! again later), or an error of this one call (its errcode and WeCom's message).

/// WeCom's error codes the client acts on (global error code page 90313).
pub mod errcode {
    pub const BUSY: i64 = -1;
    pub const INVALID_SECRET: i64 = 40001;
    pub const INVALID_CORPID: i64 = 40013;
    pub const INVALID_TOKEN: i64 = 40014;
    pub const EXPIRED_TOKEN: i64 = 42001;
    pub const FREQUENCY_LIMIT: i64 = 45009;
    pub const CONCURRENCY_LIMIT: i64 = 45033;
    pub const API_NOT_ALLOWED: i64 = 48002;
    pub const IP_NOT_ALLOWED: i64 = 60020;
    pub const NO_PRIVILEGE: i64 = 60011;
    pub const NO_RELATIONSHIP: i64 = 84061;
    pub const WELCOME_CODE_INVALID: i64 = 41050;
    pub const WELCOME_CODE_USED: i64 = 41051;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WecomError {
    /// The connector is set up wrong (a revoked or wrong secret, a wrong corp id, an app
    /// not allowed to call the API, an address not on the trusted IP list): no retry
    /// helps until an admin changes it.
    #[error("WeCom refused the connector's configuration ({errcode}): {message}")]
    Configuration { errcode: i64, message: String },
    /// WeCom said the API is called too often (45009): it is paused until `until_ms`.
    #[error("WeCom's frequency limit on {api} was hit; calls wait until {until_ms}")]
    RateLimited { api: String, until_ms: i64 },
    /// Worth trying again later: WeCom busy (-1) past the retries, too many concurrent
    /// calls (45033), the network, an answer that is not WeCom's.
    #[error("WeCom could not be reached or was busy: {0}")]
    Transient(String),
    /// This call failed for its own reason (an unknown external_userid, an expired
    /// welcome code…).
    #[error("WeCom answered {errcode} to {api}: {message}")]
    Call {
        api: String,
        errcode: i64,
        message: String,
    },
    /// Keeping the token or counting the call failed (the store).
    #[error("{0}")]
    Host(String),
}

impl WecomError {
    /// The errcode WeCom answered, if it answered one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            WecomError::Configuration { errcode, .. } | WecomError::Call { errcode, .. } => {
                Some(*errcode)
            }
            WecomError::RateLimited { .. } => Some(errcode::FREQUENCY_LIMIT),
            WecomError::Transient(_) | WecomError::Host(_) => None,
        }
    }

    pub fn is_configuration(&self) -> bool {
        matches!(self, WecomError::Configuration { .. })
    }
}

/// Whether an errcode says the connector's configuration is wrong. Not 60011 (no
/// privilege): that is about one member or department outside the app's range, not the
/// whole connector.
pub fn is_configuration_error(code: i64) -> bool {
    matches!(
        code,
        errcode::INVALID_SECRET
            | errcode::INVALID_CORPID
            | errcode::API_NOT_ALLOWED
            | errcode::IP_NOT_ALLOWED
            | 41002
            | 41004
    )
}
