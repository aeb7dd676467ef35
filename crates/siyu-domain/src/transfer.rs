//! Customer transfers between WeCom members (客户继承): in office (在职继承, the
//! handover still works here) and resigned (离职继承, the handover left). WeCom only
//! starts a transfer: the takeover member gets the customer 24 h later, unless the
//! customer refuses or the takeover is at WeCom's customer limit, so each transfer is a
//! row siyu follows to its end (see WECOM.md "Transfers").
//!
//! What is decided here, without I/O: what a request may ask (one handover, one
//! takeover, 1 to [`MAX_CUSTOMERS`] customers, a success message WeCom takes), what each
//! of WeCom's per-customer error codes and result statuses means for the row, and the
//! words people read when siyu or WeCom refuses. A customer of an in-office member may
//! be transferred at most [`IN_OFFICE_LIMIT`] times in 90 days: siyu counts its own
//! transfers and refuses a third before WeCom is asked, with the same reason WeCom's
//! 40128 is recorded under.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::DomainError;
use crate::ids::{ConnectorId, CustomerId, JobId, StaffId, TransferId};
use crate::order::string_enum;

/// Customers one request may name (WeCom takes 100 a call; siyu makes the calls).
pub const MAX_CUSTOMERS: usize = 1_000;
/// Customers per `transfer_customer` call (WeCom's limit).
pub const CUSTOMERS_PER_CALL: usize = 100;
/// WeCom's limit on `transfer_success_msg`, in characters.
pub const MESSAGE_MAX_CHARS: usize = 200;
/// In-office transfers of one customer WeCom allows within [`LIMIT_WINDOW_MS`].
pub const IN_OFFICE_LIMIT: i64 = 2;
/// 90 days.
pub const LIMIT_WINDOW_MS: i64 = 90 * 86_400_000;

/// Why a customer was transferred twice already: siyu's refusal and WeCom's 40128.
pub const TRANSFERRED_TWICE: &str = "this customer was transferred twice in the last 90 days: WeCom allows at most two in-office transfers of a customer per 90 days";
/// The customer said no in WeCom (result status 3).
pub const CUSTOMER_REFUSED: &str = "the customer refused the transfer";
/// The takeover member had reached WeCom's customer limit (result status 4).
pub const TAKEOVER_AT_LIMIT: &str =
    "the takeover member has reached WeCom's limit of customers (50,000)";

string_enum!(
    /// In office (在职继承: the handover still works here) or resigned (离职继承: the
    /// handover left the corp).
    TransferKind {
        InOffice => "in_office",
        Resigned => "resigned",
    }
);

string_enum!(
    /// Where a customer's transfer stands: `asking` (recorded, its job has not asked
    /// WeCom yet), `waiting` (WeCom started it, its status 2: the takeover happens 24 h
    /// after), `succeeded` (the takeover member has the customer, WeCom's status 1; siyu
    /// moved the owner), `refused` (the customer refused, status 3, or WeCom refused a
    /// third transfer in 90 days, 40128: `reason` says which), `takeover_limit` (the
    /// takeover member was at WeCom's customer limit, status 4), `failed` (WeCom refused
    /// to start it, see `errcode` and `reason`, or siyu could not ask).
    TransferStatus {
        Asking => "asking",
        Waiting => "waiting",
        Succeeded => "succeeded",
        Refused => "refused",
        TakeoverLimit => "takeover_limit",
        Failed => "failed",
    }
);

impl TransferStatus {
    /// Whether the transfer is not over: the customer cannot be asked for again.
    pub fn is_pending(self) -> bool {
        matches!(self, TransferStatus::Asking | TransferStatus::Waiting)
    }

    /// A status of `transfer_result` (1 done, 2 waiting, 3 refused, 4 takeover at its
    /// limit), with the reason kept for it; `None` for a status WeCom does not document.
    pub fn of_result(status: i64) -> Option<(TransferStatus, Option<&'static str>)> {
        match status {
            1 => Some((TransferStatus::Succeeded, None)),
            2 => Some((TransferStatus::Waiting, None)),
            3 => Some((TransferStatus::Refused, Some(CUSTOMER_REFUSED))),
            4 => Some((TransferStatus::TakeoverLimit, Some(TAKEOVER_AT_LIMIT))),
            _ => None,
        }
    }
}

/// What WeCom's per-customer errcode of `transfer_customer` means for the transfer:
/// 0 started (waiting), 40128 refused (transferred twice in 90 days), anything else
/// failed, with words a person can act on.
pub fn outcome_of_errcode(errcode: i64) -> (TransferStatus, Option<String>) {
    let failed = |text: &str| {
        (
            TransferStatus::Failed,
            Some(format!("{text} (WeCom {errcode})")),
        )
    };
    match errcode {
        0 => (TransferStatus::Waiting, None),
        40128 => (TransferStatus::Refused, Some(TRANSFERRED_TWICE.to_owned())),
        40096 => failed("WeCom does not know this customer"),
        40129 | 40100 => failed("the customer is already being transferred"),
        40130 => failed("the handover and the takeover are the same member"),
        40131 => failed("the customer is not the handover member's customer"),
        40097 => failed("the handover member has not left the corp: use an in-office transfer"),
        40099 => failed("the takeover member has reached WeCom's limit of customers"),
        40003 | 60111 => failed("WeCom does not know the handover or the takeover member"),
        _ => failed("WeCom refused the transfer"),
    }
}

/// A member of the corp as a request names them: by staff id or by WeCom userid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRef {
    Staff(StaffId),
    Userid(String),
}

/// The customers a request names: profiles, or WeCom external userids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferCustomers {
    Ids(Vec<CustomerId>),
    External(Vec<String>),
}

impl TransferCustomers {
    pub fn len(&self) -> usize {
        match self {
            TransferCustomers::Ids(ids) => ids.len(),
            TransferCustomers::External(ids) => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A transfer request, checked (one of each pair of fields named, 1 to
/// [`MAX_CUSTOMERS`] customers, repeats dropped, a message WeCom takes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfers {
    pub kind: TransferKind,
    pub handover: MemberRef,
    pub takeover: MemberRef,
    pub customers: TransferCustomers,
    /// What the customer is told when the takeover happens (WeCom's default if none).
    pub message: Option<String>,
}

/// The fields of a transfer request as a request carries them.
#[derive(Debug, Clone)]
pub struct TransferFields {
    pub kind: TransferKind,
    pub handover_staff_id: Option<StaffId>,
    pub handover_userid: Option<String>,
    pub takeover_staff_id: Option<StaffId>,
    pub takeover_userid: Option<String>,
    pub customer_ids: Option<Vec<CustomerId>>,
    pub external_userids: Option<Vec<String>>,
    pub message: Option<String>,
}

impl NewTransfers {
    pub fn new(fields: TransferFields) -> Result<Self, DomainError> {
        let kind = fields.kind;
        let handover = member("handover", fields.handover_staff_id, fields.handover_userid)?;
        let takeover = member("takeover", fields.takeover_staff_id, fields.takeover_userid)?;
        if handover == takeover {
            return Err(DomainError::invalid(
                "takeover",
                "must be another member than the handover",
            ));
        }
        let customers = match (fields.customer_ids, fields.external_userids) {
            (Some(ids), None) => {
                let mut seen = std::collections::HashSet::new();
                TransferCustomers::Ids(ids.into_iter().filter(|c| seen.insert(*c)).collect())
            }
            (None, Some(ids)) => {
                if let Some((i, _)) = ids.iter().enumerate().find(|(_, e)| !external_ok(e)) {
                    return Err(DomainError::invalid(
                        format!("external_userids[{i}]"),
                        "is not a WeCom external userid",
                    ));
                }
                let mut seen = std::collections::HashSet::new();
                TransferCustomers::External(
                    ids.into_iter().filter(|e| seen.insert(e.clone())).collect(),
                )
            }
            _ => {
                return Err(DomainError::invalid(
                    "customer_ids",
                    "name the customers by customer_ids or by external_userids (one of them)",
                ));
            }
        };
        if customers.is_empty() || customers.len() > MAX_CUSTOMERS {
            let field = match customers {
                TransferCustomers::Ids(_) => "customer_ids",
                TransferCustomers::External(_) => "external_userids",
            };
            return Err(DomainError::invalid(
                field,
                format!("name 1 to {MAX_CUSTOMERS} customers"),
            ));
        }
        let message = fields
            .message
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty());
        if message
            .as_ref()
            .is_some_and(|m| m.chars().count() > MESSAGE_MAX_CHARS)
        {
            return Err(DomainError::invalid(
                "message",
                format!("WeCom takes at most {MESSAGE_MAX_CHARS} characters"),
            ));
        }
        Ok(Self {
            kind,
            handover,
            takeover,
            customers,
            message,
        })
    }
}

fn member(
    side: &str,
    staff: Option<StaffId>,
    userid: Option<String>,
) -> Result<MemberRef, DomainError> {
    match (staff, userid) {
        (Some(staff), None) => Ok(MemberRef::Staff(staff)),
        (None, Some(userid)) if !userid.trim().is_empty() && userid.len() <= 64 => {
            Ok(MemberRef::Userid(userid.trim().to_owned()))
        }
        (None, Some(_)) => Err(DomainError::invalid(
            format!("{side}_userid"),
            "must be a WeCom userid (1 to 64 characters)",
        )),
        _ => Err(DomainError::invalid(
            format!("{side}_staff_id"),
            format!("name the {side} member by {side}_staff_id or by {side}_userid (one of them)"),
        )),
    }
}

/// WeCom's external userids are ASCII ids (`wm…`, `wo…`) well under 100 characters.
fn external_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic())
}

string_enum!(
    /// Why siyu refused to ask WeCom for one customer's transfer: `transferred_twice`
    /// (two in-office transfers in the last 90 days already), `not_handovers_customer`
    /// (the handover member has no live relation with the customer),
    /// `already_being_transferred` (a transfer of the customer is waiting already).
    RefusalCode {
        TransferredTwice => "transferred_twice",
        NotHandoversCustomer => "not_handovers_customer",
        AlreadyBeingTransferred => "already_being_transferred",
    }
);

impl RefusalCode {
    pub fn reason(self) -> &'static str {
        match self {
            RefusalCode::TransferredTwice => TRANSFERRED_TWICE,
            RefusalCode::NotHandoversCustomer => {
                "the customer is not a customer of the handover member in WeCom"
            }
            RefusalCode::AlreadyBeingTransferred => {
                "a transfer of this customer is already waiting for its takeover"
            }
        }
    }
}

/// A customer siyu did not ask WeCom to transfer, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TransferRefusal {
    pub customer_id: Option<CustomerId>,
    /// The relation's external userid, when the customer has one with the handover.
    pub external_userid: Option<String>,
    pub code: RefusalCode,
    pub reason: String,
}

impl TransferRefusal {
    pub fn new(
        customer_id: Option<CustomerId>,
        external_userid: Option<String>,
        code: RefusalCode,
    ) -> Self {
        Self {
            customer_id,
            external_userid,
            code,
            reason: code.reason().to_owned(),
        }
    }
}

/// One customer relation's transfer, as siyu keeps and shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WecomTransfer {
    pub id: TransferId,
    pub connector_id: ConnectorId,
    pub kind: TransferKind,
    pub external_userid: String,
    pub customer_id: Option<CustomerId>,
    pub handover_userid: String,
    pub handover_staff_id: Option<StaffId>,
    pub takeover_userid: String,
    pub takeover_staff_id: Option<StaffId>,
    pub status: TransferStatus,
    /// WeCom's per-customer errcode when it refused to start the transfer.
    pub errcode: Option<i64>,
    /// Why it was refused or failed, in words.
    pub reason: Option<String>,
    /// When WeCom said the takeover happens (or happened).
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub takeover_at: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub asked_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<i64>,
    /// The `wecom.transfer` job that asks WeCom.
    pub job_id: Option<JobId>,
    /// The staff member who asked (none for an API token).
    pub asked_by_staff_id: Option<StaffId>,
}

/// A customer of a member who left, not assigned yet (no transfer waiting): what the
/// resigned transfer (离职继承) hands on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UnassignedCustomer {
    pub customer_id: CustomerId,
    pub external_userid: String,
    pub handover_userid: String,
    pub handover_staff_id: StaffId,
    pub handover_name: String,
    /// When siyu saw the member leave.
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub left_at: i64,
    /// The last transfer of this relation that did not go through, if any.
    pub last_transfer_status: Option<TransferStatus>,
}

/// The payload of a `wecom.transfer` job: it asks WeCom for the transfers recorded with
/// its id, 100 a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferPayload {
    pub connector_id: ConnectorId,
    pub kind: TransferKind,
    pub handover_userid: String,
    pub takeover_userid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The payload of a `wecom.transfer_result` job: it follows the transfers a
/// `wecom.transfer` job started until each is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferResultPayload {
    pub connector_id: ConnectorId,
    pub transfer_job_id: JobId,
    pub kind: TransferKind,
    pub handover_userid: String,
    pub takeover_userid: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> TransferFields {
        TransferFields {
            kind: TransferKind::InOffice,
            handover_staff_id: None,
            handover_userid: Some("zhangsan".into()),
            takeover_staff_id: Some(StaffId(7)),
            takeover_userid: None,
            customer_ids: Some(vec![CustomerId(1), CustomerId(2), CustomerId(1)]),
            external_userids: None,
            message: None,
        }
    }

    fn field_of(f: TransferFields) -> String {
        match NewTransfers::new(f) {
            Err(DomainError::Invalid(e)) => e.field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_request_is_checked_and_repeats_dropped() {
        let t = NewTransfers::new(fields()).unwrap();
        assert_eq!(t.kind, TransferKind::InOffice);
        assert_eq!(t.handover, MemberRef::Userid("zhangsan".into()));
        assert_eq!(
            t.customers,
            TransferCustomers::Ids(vec![CustomerId(1), CustomerId(2)])
        );
        assert_eq!(
            field_of(TransferFields {
                handover_staff_id: Some(StaffId(1)),
                ..fields()
            }),
            "handover_staff_id"
        );
        assert_eq!(
            field_of(TransferFields {
                takeover_staff_id: None,
                takeover_userid: Some("zhangsan".into()),
                ..fields()
            }),
            "takeover"
        );
        assert_eq!(
            field_of(TransferFields {
                customer_ids: Some(vec![]),
                ..fields()
            }),
            "customer_ids"
        );
        assert_eq!(
            field_of(TransferFields {
                customer_ids: Some((0..=MAX_CUSTOMERS as i64).map(CustomerId).collect()),
                ..fields()
            }),
            "customer_ids"
        );
        assert_eq!(
            field_of(TransferFields {
                external_userids: Some(vec!["wm1".into()]),
                ..fields()
            }),
            "customer_ids"
        );
        assert_eq!(
            field_of(TransferFields {
                customer_ids: None,
                external_userids: Some(vec!["wm 1".into()]),
                ..fields()
            }),
            "external_userids[0]"
        );
        assert_eq!(
            field_of(TransferFields {
                message: Some("好".repeat(MESSAGE_MAX_CHARS + 1)),
                ..fields()
            }),
            "message"
        );
    }

    #[test]
    fn wecom_codes_read_as_outcomes() {
        assert_eq!(outcome_of_errcode(0), (TransferStatus::Waiting, None));
        let (status, reason) = outcome_of_errcode(40128);
        assert_eq!(status, TransferStatus::Refused);
        assert_eq!(reason.as_deref(), Some(TRANSFERRED_TWICE));
        for code in [40096, 40097, 40129, 40130, 40131, 12345] {
            let (status, reason) = outcome_of_errcode(code);
            assert_eq!(status, TransferStatus::Failed);
            assert!(reason.unwrap().contains(&code.to_string()));
        }
        assert_eq!(
            TransferStatus::of_result(3),
            Some((TransferStatus::Refused, Some(CUSTOMER_REFUSED)))
        );
        assert_eq!(TransferStatus::of_result(9), None);
        assert!(TransferStatus::Asking.is_pending() && !TransferStatus::Refused.is_pending());
    }
}
