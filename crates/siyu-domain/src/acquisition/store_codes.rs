//! Store codes (门店活码): one channel code per store, routed to that store's staff, so
//! that adds are reported per store and, summed up the unit tree, per region and per
//! brand. A store's code is an ordinary channel code whose `state` is
//! `store-{unit id}` and whose unit is the store: made for every store that lacks one
//! in one call, then changed like any code.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ChannelCode;
use crate::audience::TagId;
use crate::ids::{ChannelAccountId, ChannelCodeId, ConnectorId, UnitId};

/// The state of a store's code.
pub fn store_state(unit: UnitId) -> String {
    format!("store-{}", unit.0)
}

/// What to make codes for: the stores under a unit (every store when none), and what
/// every code made gets.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStoreCodes {
    /// The unit whose stores get codes (itself included when it is a store); none:
    /// every store.
    pub unit_id: Option<UnitId>,
    /// A WeCom connector: each code becomes a contact way routed to the store's staff
    /// who are members of its corp.
    pub connector_id: Option<ConnectorId>,
    pub account_id: Option<ChannelAccountId>,
    #[serde(default)]
    pub tag_ids: Vec<TagId>,
    /// The codes' welcome (`{customer}` and `{member}` stand for the names).
    pub welcome: Option<String>,
}

/// A store that got no code, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SkippedStore {
    pub unit_id: UnitId,
    pub name: String,
    pub reason: String,
}

/// What making store codes did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StoreCodes {
    /// The codes made now.
    pub created: Vec<ChannelCode>,
    /// Stores that had their code already: its id.
    pub existing: Vec<ChannelCodeId>,
    pub skipped: Vec<SkippedStore>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_code_s_state_names_its_store_and_keeps_the_state_rule() {
        let state = store_state(UnitId(42));
        assert_eq!(state, "store-42");
        assert_eq!(super::super::check_state(&state).unwrap(), state);
    }
}
