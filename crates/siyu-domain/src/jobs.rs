//! Durable background jobs as the API and the console show them: their states, their
//! progress, and how long a failed one waits before it is tried again. The queue itself
//! lives in the store (`siyu-store/src/jobs.rs`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{JobId, StaffId, TenantId};

/// Where a job is in its life. `waiting` and `running` are live; `done`, `dead` and
/// `cancelled` are finished (a dead or cancelled job can be retried by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Due at its `run_at`, or waiting for a worker.
    Waiting,
    /// Taken by a worker that holds its lease.
    Running,
    /// Completed.
    Done,
    /// Failed on its last attempt; `last_error` says why.
    Dead,
    /// Cancelled before it ran.
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Waiting,
        JobState::Running,
        JobState::Done,
        JobState::Dead,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Whether the job will not run again unless retried by hand.
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Done | JobState::Dead | JobState::Cancelled)
    }
}

/// How far a running job got, as it writes it: `done` of `total` (when known), and a
/// line for people.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct JobProgress {
    pub done: i64,
    pub total: Option<i64>,
    pub message: Option<String>,
}

/// A job as it stands.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Job {
    pub id: JobId,
    /// `None` for a job of the system (not of one tenant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    /// What the job does (`import.csv`, `tags.backfill` …): the handler that runs it.
    pub kind: String,
    /// The staff member whose action made the job; `None` for one the system, an API
    /// token or the command line made. Staff whose data scope is not the whole tenant
    /// see only the jobs of staff within it.
    pub created_by_staff_id: Option<StaffId>,
    /// The handler's input, as JSON.
    pub payload: serde_json::Value,
    /// Higher runs first (within a tenant's turn).
    pub priority: i32,
    pub state: JobState,
    /// When it is due (its next try, after a failure).
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub run_at: i64,
    /// Tries so far, the running one included.
    pub attempts: u32,
    pub max_attempts: u32,
    /// The error of the last failed try.
    pub last_error: Option<String>,
    /// While waiting or running, no other job of its kind has this key.
    pub unique_key: Option<String>,
    pub progress: JobProgress,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<i64>,
}

/// The first wait after a failure.
pub const BACKOFF_BASE_MS: i64 = 1_000;
/// The longest wait between two tries.
pub const BACKOFF_CAP_MS: i64 = 3_600_000;
/// How much the wait varies either way (0.2: ±20%), so that jobs that failed together
/// (a service that was down) do not all come back in the same instant.
pub const BACKOFF_JITTER: f64 = 0.2;

/// How long to wait before trying again a job that failed on its `attempts`-th try:
/// 1 s, 2 s, 4 s … doubling, at most an hour, varied by `jitter` (from -1 to 1) times
/// ±20%; never longer than the cap.
pub fn backoff_ms(attempts: u32, jitter: f64) -> i64 {
    let doublings = attempts.saturating_sub(1).min(30);
    let base = BACKOFF_BASE_MS
        .saturating_mul(1_i64 << doublings)
        .min(BACKOFF_CAP_MS);
    let factor = 1.0 + BACKOFF_JITTER * jitter.clamp(-1.0, 1.0);
    ((base as f64 * factor).round() as i64).clamp(1, BACKOFF_CAP_MS)
}

/// [`backoff_ms`] with a random jitter.
pub fn retry_delay_ms(attempts: u32) -> i64 {
    backoff_ms(attempts, rand::random::<f64>() * 2.0 - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_up_to_an_hour() {
        assert_eq!(backoff_ms(0, 0.0), 1_000);
        assert_eq!(backoff_ms(1, 0.0), 1_000);
        assert_eq!(backoff_ms(2, 0.0), 2_000);
        assert_eq!(backoff_ms(3, 0.0), 4_000);
        assert_eq!(backoff_ms(11, 0.0), 1_024_000);
        assert_eq!(backoff_ms(13, 0.0), BACKOFF_CAP_MS);
        assert_eq!(backoff_ms(u32::MAX, 0.0), BACKOFF_CAP_MS);
    }

    #[test]
    fn backoff_varies_by_a_fifth_either_way_within_the_cap() {
        assert_eq!(backoff_ms(1, -1.0), 800);
        assert_eq!(backoff_ms(1, 1.0), 1_200);
        assert_eq!(backoff_ms(4, 5.0), 9_600, "jitter beyond 1 counts as 1");
        assert_eq!(backoff_ms(20, 1.0), BACKOFF_CAP_MS, "never past the cap");
        assert_eq!(backoff_ms(20, -1.0), 2_880_000);
        for attempts in 1..20 {
            let delay = retry_delay_ms(attempts);
            let plain = backoff_ms(attempts, 0.0);
            assert!(delay >= plain * 4 / 5 && delay <= (plain * 6 / 5).min(BACKOFF_CAP_MS));
        }
    }

    #[test]
    fn states_read_back() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert_eq!(JobState::parse("queued"), None);
        assert!(JobState::Dead.is_finished() && !JobState::Running.is_finished());
    }
}

/// The kinds of job siyu runs (their handlers are in `siyu-runtime`, one module each).
pub mod kind {
    /// Records that it ran, once (a check of the queue end to end).
    pub const PROBE: &str = "system.probe";
    /// Forgets what is kept only for a while (hourly).
    pub const MAINTENANCE: &str = "system.maintenance";
    /// Customers as CSV, to a file every node serves.
    pub const CUSTOMER_EXPORT: &str = "customers.export";
    /// A CSV import, in parts (`POST /api/v1/imports`).
    pub const IMPORT: &str = "import";
    /// Tags (or untags) every customer a condition matches, within the asker's reach.
    pub const BULK_TAGGING: &str = "tags.bulk";
    /// Applies a saved tag rule to every customer it matches now.
    pub const TAG_RULE_BACKFILL: &str = "tags.rule_backfill";
    /// Syncs a WeCom corp's staff, corp tags and customers (`POST
    /// /api/v1/connectors/{id}/sync`), resuming from its checkpoint.
    pub const WECOM_SYNC: &str = "wecom.sync";
    /// Marks on WeCom the mirrored corp tags changed in siyu (its outbox, per connector).
    pub const WECOM_MARK_TAGS: &str = "wecom.mark_tags";
    /// Reads with `get` the personal tags of a connector's contacts that have none read
    /// or old ones, paced well under WeCom's limits: payload `{"connector_id"}`.
    pub const WECOM_PERSONAL_TAGS: &str = "wecom.personal_tags";
    /// Makes, changes or deletes a channel code's WeCom contact way to match the code
    /// (`add_contact_way`, `update_contact_way`, `del_contact_way`): payload
    /// `{"code_id"}`, one waiting per code.
    pub const WECOM_CONTACT_WAY: &str = "wecom.contact_way";
    /// Makes, changes or deletes a group code's WeCom join way to match the code and its
    /// chats' fill (`groupchat/add_join_way`, `update_join_way`, `del_join_way`):
    /// payload `{"code_id"}`, one waiting per code.
    pub const WECOM_JOIN_WAY: &str = "wecom.join_way";
    /// App messages to members (`message/send`), within WeCom's per-member limits.
    pub const WECOM_APP_MESSAGE: &str = "wecom.app_message";
    /// A WeCom callback event taken at `/callbacks/wecom/{id}`: payload
    /// `{"connector_id", "event"}`, the event as `siyu_connect::wecom::callback` reads it.
    pub const WECOM_CALLBACK: &str = "wecom.callback";
    /// Applies a connector's relation changes (adds, deletions) taken from callbacks,
    /// in bulk, oldest first: payload `{"connector_id"}`, one waiting per connector.
    pub const WECOM_RELATION_CHANGES: &str = "wecom.relation_changes";
    /// Plans a mass send at its time: who receives it, in batches (payload
    /// `{"broadcast_id"}`, one waiting per send).
    pub const BROADCAST_PLAN: &str = "broadcast.plan";
    /// Sends one planned batch of a mass send and records the channel's answer
    /// (payload `{"broadcast_id", "batch"}`).
    pub const BROADCAST_BATCH: &str = "broadcast.batch";
    /// Follows a WeCom mass send's member tasks until each is over: who confirmed, what
    /// each customer got, cancels asked for (payload `{"broadcast_id"}`, one waiting
    /// per send).
    pub const BROADCAST_FOLLOW: &str = "broadcast.follow";
    /// Reminds the members who have not confirmed a WeCom mass send
    /// (`remind_groupmsg_send`, and an app message): payload `{"broadcast_id"}`.
    pub const BROADCAST_REMIND: &str = "broadcast.remind";
    /// Asks WeCom to transfer the customers recorded with the job (`POST
    /// /api/v1/connectors/{id}/transfers`), 100 a call: payload
    /// `siyu_domain::transfer::TransferPayload`.
    pub const WECOM_TRANSFER: &str = "wecom.transfer";
    /// Follows the transfers a `wecom.transfer` job started until each is over
    /// (`transfer_result`), then moves their owners: payload
    /// `siyu_domain::transfer::TransferResultPayload`.
    pub const WECOM_TRANSFER_RESULT: &str = "wecom.transfer_result";
}
