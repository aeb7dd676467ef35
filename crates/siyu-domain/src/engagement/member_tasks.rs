//! A mass send on WeCom as member tasks: WeCom sends nothing itself; each member whose
//! customers receive the send gets a task (one `add_msg_template` call of at most
//! [`WECOM_BATCH`] customers named by `external_userid`) and must confirm it in the
//! WeCom app. These are the rules for that: which relation each recipient is reached
//! through, how a task's and a customer's results read, and how a call whose answer was
//! lost is found again among what WeCom lists.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use utoipa::ToSchema;

use super::broadcast::{Exclusion, Plan};
use crate::ids::StaffId;
use crate::order::string_enum;

/// Customers per member task: WeCom's limit for one `add_msg_template`.
pub const WECOM_BATCH: usize = 10_000;

/// A relation a WeCom send may reach a customer through: the customer is an external
/// contact of the member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WecomRoute {
    pub customer: i64,
    pub external_userid: String,
    /// The member's WeCom userid, and the staff member they are in siyu.
    pub userid: String,
    pub staff: StaffId,
    /// The member is the customer's owner in siyu.
    pub owner: bool,
    /// When the member added the customer (epoch ms).
    pub added_at: i64,
    /// The member left the company (their customers wait for a transfer).
    pub member_left: bool,
}

/// One member's part of a send: the customers one call names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberTask {
    pub userid: String,
    pub staff: StaffId,
    /// (customer id, external_userid), by customer id.
    pub recipients: Vec<(i64, String)>,
    /// The task's own text (a template rendered with the member's values); `None`:
    /// the send's text.
    pub text: Option<String>,
}

/// Leads each recipient of a plan to one member (dropping, with their reason, those no
/// member can reach) and makes the member tasks: the customer's owner when the owner
/// has them, else the member who added them last; a member who left reaches no one.
/// One customer is reached once, however many members have them: a person is one
/// customer after merges, so de-duplication across identities holds here too.
pub fn assign_members(plan: &mut Plan, routes: &[WecomRoute]) -> Vec<MemberTask> {
    let mut best: HashMap<i64, &WecomRoute> = HashMap::new();
    let mut left_only: HashSet<i64> = HashSet::new();
    for route in routes {
        if route.member_left {
            left_only.insert(route.customer);
            continue;
        }
        let better = match best.get(&route.customer) {
            None => true,
            Some(kept) => {
                (
                    route.owner,
                    route.added_at,
                    std::cmp::Reverse(&route.userid),
                ) > (kept.owner, kept.added_at, std::cmp::Reverse(&kept.userid))
            }
        };
        if better {
            best.insert(route.customer, route);
        }
    }
    // one member's customers, whole, by userid; cut into calls below
    let mut by_member: BTreeMap<&str, MemberTask> = BTreeMap::new();
    let mut kept = Vec::with_capacity(plan.recipients.len());
    for &customer in &plan.recipients {
        match best.get(&customer) {
            Some(route) => {
                by_member
                    .entry(route.userid.as_str())
                    .or_insert_with(|| MemberTask {
                        userid: route.userid.clone(),
                        staff: route.staff,
                        recipients: Vec::new(),
                        text: None,
                    })
                    .recipients
                    .push((customer, route.external_userid.clone()));
                kept.push(customer);
            }
            None => {
                let reason = if left_only.contains(&customer) {
                    Exclusion::MemberLeft
                } else {
                    Exclusion::NoRelation
                };
                *plan.excluded.entry(reason).or_default() += 1;
            }
        }
    }
    plan.recipients = kept;
    let mut tasks = Vec::new();
    for whole in by_member.into_values() {
        for chunk in whole.recipients.chunks(WECOM_BATCH) {
            tasks.push(MemberTask {
                userid: whole.userid.clone(),
                staff: whole.staff,
                recipients: chunk.to_vec(),
                text: None,
            });
        }
    }
    tasks
}

string_enum!(
    /// What became of one recipient of a send. On the sandbox a recipient is `sent`
    /// once their batch is answered; on WeCom they wait for their member to confirm.
    RecipientStatus {
        // planned, not yet with the channel
        Planned => "planned",
        // with WeCom: the member has not confirmed the task yet
        Waiting => "waiting",
        Sent => "sent",
        // the customer deleted the member (or was deleted) before the member sent
        NotFriend => "not_friend",
        // WeCom's receive cap: they had as many mass messages as the corp allows
        OverCap => "over_cap",
        // WeCom refused them (the call's fail_list, or the call refused as a whole)
        Refused => "refused",
        // never sent: the send was cancelled, or the member never confirmed
        NotSent => "not_sent",
        // their member left the company before sending
        MemberLeft => "member_left",
    }
);

impl RecipientStatus {
    /// A status of `get_groupmsg_send_result`: 0 not sent, 1 sent, 2 not a friend any
    /// more, 3 over the receive cap. `None` for one WeCom does not document.
    pub fn of_wecom(status: i64) -> Option<Self> {
        match status {
            0 => Some(RecipientStatus::Waiting),
            1 => Some(RecipientStatus::Sent),
            2 => Some(RecipientStatus::NotFriend),
            3 => Some(RecipientStatus::OverCap),
            _ => None,
        }
    }
}

string_enum!(
    /// Where a member's task stands after siyu made it.
    TaskState {
        // with the member, not confirmed yet
        Waiting => "waiting",
        // the member sent it: each recipient's result is final
        Confirmed => "confirmed",
        // cancelled before the member sent it
        Cancelled => "cancelled",
        // the member left the company before sending
        MemberLeft => "member_left",
        // WeCom refused the call as a whole
        Failed => "failed",
        // not confirmed within the days siyu follows a task
        Expired => "expired",
    }
);

impl TaskState {
    /// Whether nothing will change any more.
    pub fn is_final(self) -> bool {
        self != TaskState::Waiting
    }
}

/// A message WeCom lists that might be a batch's lost call: its member tasks and the
/// customers of the task of the batch's member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostCallCandidate {
    pub msgid: String,
    pub members: Vec<String>,
    pub customers: HashSet<String>,
}

/// What reconciling a batch whose answer was lost found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "found", rename_all = "snake_case")]
pub enum Reconciled {
    /// WeCom has the batch: this message.
    Message { msgid: String },
    /// WeCom has nothing of it: it may be sent.
    Nothing,
    /// Several messages could be it: a person must tell.
    Unclear { msgids: Vec<String> },
}

/// Finds a batch among the candidates (messages of the same text made since the batch's
/// intent, not recorded by any batch): one whose only task is the batch's member and
/// whose customers are among the batch's. The call named only the batch's customers
/// and only its member, so anything else is another message.
pub fn reconcile(
    member: &str,
    customers: &HashSet<String>,
    candidates: &[LostCallCandidate],
) -> Reconciled {
    let mut found: Vec<&str> = candidates
        .iter()
        .filter(|c| c.members.len() == 1 && c.members[0] == member)
        .filter(|c| !c.customers.is_empty() && c.customers.is_subset(customers))
        .map(|c| c.msgid.as_str())
        .collect();
    found.sort_unstable();
    match found.as_slice() {
        [] => Reconciled::Nothing,
        [one] => Reconciled::Message {
            msgid: (*one).to_owned(),
        },
        many => Reconciled::Unclear {
            msgids: many.iter().map(|m| (*m).to_owned()).collect(),
        },
    }
}

string_enum!(
    /// Where a batch stands with its channel.
    BatchState {
        Planned => "planned",
        // its intent recorded: the channel may have it
        Sending => "sending",
        // a lost call could not be told apart from other messages: a person decides
        Unresolved => "unresolved",
        // the channel answered (on WeCom: the member's task is made)
        Sent => "sent",
        Cancelled => "cancelled",
    }
);

/// Why a batch waits for a person, and the messages that could be its lost call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Unresolved {
    pub msgids: Vec<String>,
    pub reason: String,
}

/// One batch of a send as the console shows it: on WeCom, one member's task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BroadcastTask {
    pub batch: i64,
    /// The member (WeCom userid), their name and staff id; `None` on the sandbox.
    pub member_userid: Option<String>,
    pub member_name: Option<String>,
    pub staff_id: Option<StaffId>,
    pub recipients: i64,
    pub state: BatchState,
    /// Where the member's task stands (WeCom, once made).
    pub task_state: Option<TaskState>,
    pub msgid: Option<String>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub member_sent_at: Option<i64>,
    /// When the member was reminded (epoch ms, oldest first).
    pub reminders: Vec<i64>,
    pub unresolved: Option<Unresolved>,
    /// Recipients by what became of them.
    pub results: HashMap<RecipientStatus, i64>,
}

/// One recipient of a send and what became of them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BroadcastRecipient {
    pub customer_id: crate::ids::CustomerId,
    pub batch: i64,
    pub member_userid: Option<String>,
    pub external_userid: Option<String>,
    pub status: RecipientStatus,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub status_at: Option<i64>,
}

/// What a person decides for a batch whose lost call siyu could not find for sure
/// (`POST /api/v1/broadcasts/{id}/batches/{batch}/resolve`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchResolution {
    /// WeCom has it: this message (one of the batch's candidates).
    Sent { msgid: String },
    /// WeCom has none of them: send it now.
    SendAgain,
    /// Leave it unsent.
    NotSent,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(customer: i64, userid: &str, owner: bool, added_at: i64) -> WecomRoute {
        WecomRoute {
            customer,
            external_userid: format!("wm{customer}{userid}"),
            userid: userid.into(),
            staff: StaffId(if userid == "alice" { 1 } else { 2 }),
            owner,
            added_at,
            member_left: false,
        }
    }

    #[test]
    fn each_recipient_goes_through_one_member_and_the_rest_say_why_not() {
        let mut plan = Plan {
            recipients: vec![1, 2, 3, 4, 5],
            excluded: HashMap::new(),
        };
        let mut left = route(4, "carol", true, 9);
        left.member_left = true;
        let routes = vec![
            // 1: bob owns them, alice added them later: bob
            route(1, "alice", false, 5),
            route(1, "bob", true, 1),
            // 2: no owner among them: the latest add, alice
            route(2, "alice", false, 7),
            route(2, "bob", false, 3),
            // 3: no relation at all; 4: only with a member who left
            left,
            route(5, "alice", true, 1),
        ];
        let tasks = assign_members(&mut plan, &routes);
        assert_eq!(plan.recipients, vec![1, 2, 5]);
        assert_eq!(
            plan.excluded,
            HashMap::from([(Exclusion::NoRelation, 1), (Exclusion::MemberLeft, 1)])
        );
        assert_eq!(
            tasks,
            vec![
                MemberTask {
                    userid: "alice".into(),
                    staff: StaffId(1),
                    recipients: vec![(2, "wm2alice".into()), (5, "wm5alice".into())],
                    text: None,
                },
                MemberTask {
                    userid: "bob".into(),
                    staff: StaffId(2),
                    recipients: vec![(1, "wm1bob".into())],
                    text: None,
                },
            ]
        );
    }

    #[test]
    fn a_member_with_more_customers_than_a_call_takes_gets_several_tasks() {
        let n = WECOM_BATCH as i64 + 5;
        let mut plan = Plan {
            recipients: (1..=n).collect(),
            excluded: HashMap::new(),
        };
        let routes: Vec<WecomRoute> = (1..=n).map(|c| route(c, "alice", true, 0)).collect();
        let tasks = assign_members(&mut plan, &routes);
        assert_eq!(
            tasks.iter().map(|t| t.recipients.len()).collect::<Vec<_>>(),
            vec![WECOM_BATCH, 5]
        );
    }

    #[test]
    fn a_lost_call_is_found_only_when_exactly_one_message_can_be_it() {
        let ours: HashSet<String> = ["a", "b", "c"].map(String::from).into();
        let candidate = |msgid: &str, members: &[&str], customers: &[&str]| LostCallCandidate {
            msgid: msgid.into(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            customers: customers.iter().map(|c| (*c).to_owned()).collect(),
        };
        // another member's, one with a stranger, one with no customer: none is it
        let others = vec![
            candidate("m1", &["bob"], &["a"]),
            candidate("m2", &["alice"], &["a", "z"]),
            candidate("m3", &["alice"], &[]),
            candidate("m4", &["alice", "bob"], &["a"]),
        ];
        assert_eq!(reconcile("alice", &ours, &others), Reconciled::Nothing);
        // WeCom left one out (fail_list): still ours
        let mut one = others.clone();
        one.push(candidate("m5", &["alice"], &["a", "b"]));
        assert_eq!(
            reconcile("alice", &ours, &one),
            Reconciled::Message { msgid: "m5".into() }
        );
        one.push(candidate("m6", &["alice"], &["c"]));
        assert_eq!(
            reconcile("alice", &ours, &one),
            Reconciled::Unclear {
                msgids: vec!["m5".into(), "m6".into()]
            }
        );
    }

    #[test]
    fn wecom_result_statuses_read_as_recipient_statuses() {
        assert_eq!(RecipientStatus::of_wecom(1), Some(RecipientStatus::Sent));
        assert_eq!(RecipientStatus::of_wecom(3), Some(RecipientStatus::OverCap));
        assert_eq!(RecipientStatus::of_wecom(9), None);
        assert!(!TaskState::Waiting.is_final());
        assert!(TaskState::Expired.is_final());
    }
}
