//! Limits on trait names: how many new names one event may bring, how many one profile
//! (or one group membership) may hold, and how many distinct names a tenant may use.
//!
//! # Why
//! Every distinct trait name costs memory in each server's audience index, and write
//! keys of web and mini-program sources are public: without limits, a few identify
//! calls with thousands of made-up keys (or one CSV row with thousands of columns) grow
//! every server by hundreds of megabytes, for good, since the index is rebuilt from the
//! database at start. Real tenants use tens to a few hundred names.
//!
//! # Where each limit is enforced
//! - **Per event** and **per tenant**, in the answer: a tracking call's item that brings
//!   more new names than [`TraitLimits::max_new_per_event`], or whose new names would
//!   take the tenant past [`TraitLimits::max_distinct`], is refused with the code
//!   `too_many_traits` (its messageId stays free, like any refused item); an import row
//!   likewise. "New" means new to the tenant: the answer does not know the profile yet.
//! - **Per profile**, where traits are applied (the profile is known only then): the
//!   event's names new to the profile beyond [`TraitLimits::max_per_profile`] are
//!   dropped, the rest of the event is stored, and the drop is counted against the
//!   source and logged. The applier also drops, the same way, names beyond the per-event
//!   and per-tenant limits that reached it anyway (several server processes, or calls
//!   answered from a few seconds' old view of the tenant's names, can each let a few
//!   through), so the limits hold in the database whatever the answers said.
//!
//! Group traits (of `group` calls) are counted the same way in a scope of their own:
//! their names do not use up the profile's.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::DomainError;

/// Which traits a name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraitScope {
    /// A customer's profile.
    Customer,
    /// A customer's membership of a group.
    Group,
}

impl TraitScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Self::Customer),
            "group" => Some(Self::Group),
            _ => None,
        }
    }
}

/// A tenant's trait limits (`GET|PUT /api/v1/settings/traits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraitLimits {
    /// Names new to the tenant one event (or import row) may bring (1–1,000).
    pub max_new_per_event: u32,
    /// Names one profile, or one group membership, may hold (1–5,000).
    pub max_per_profile: u32,
    /// Distinct names the tenant's profiles may use, and as many for group traits
    /// (1–20,000).
    pub max_distinct: u32,
}

impl Default for TraitLimits {
    fn default() -> Self {
        Self {
            max_new_per_event: 100,
            max_per_profile: 500,
            max_distinct: 2_000,
        }
    }
}

impl TraitLimits {
    /// The settings stored under this key.
    pub const KEY: &'static str = "traits";

    /// Checks the bounds: each limit at least 1 (0 would refuse every trait) and at
    /// most what a server can carry (the highest distinct count keeps a tenant's index
    /// columns within tens of MB).
    pub fn check(self) -> Result<Self, DomainError> {
        for (field, value, max) in [
            ("max_new_per_event", self.max_new_per_event, 1_000),
            ("max_per_profile", self.max_per_profile, 5_000),
            ("max_distinct", self.max_distinct, 20_000),
        ] {
            if !(1..=max).contains(&value) {
                return Err(DomainError::invalid(
                    field,
                    format!("must be between 1 and {max}"),
                ));
            }
        }
        Ok(self)
    }

    /// Why an event (or import row) is refused, given how many of its names are new to
    /// the tenant and how many names the tenant uses already; `None` if it is taken.
    pub fn refusal(self, scope: TraitScope, new: usize, known: usize) -> Option<String> {
        let what = match scope {
            TraitScope::Customer => "trait",
            TraitScope::Group => "group trait",
        };
        if new > self.max_new_per_event as usize {
            return Some(format!(
                "the event brings {new} {what} names new to the tenant; the limit is {} \
                 (settings/traits max_new_per_event)",
                self.max_new_per_event
            ));
        }
        if new > 0 && known + new > self.max_distinct as usize {
            return Some(format!(
                "the tenant uses {known} {what} names and the event brings {new} more; the \
                 limit is {} (settings/traits max_distinct)",
                self.max_distinct
            ));
        }
        None
    }
}

/// The code of a refusal over trait limits, in tracking answers and import reasons.
pub const TOO_MANY_TRAITS: &str = "too_many_traits";

/// What may be applied of an event's traits to one profile (or group membership).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Admitted {
    /// The traits to apply.
    pub traits: Map<String, Value>,
    /// Names dropped for want of room.
    pub dropped: usize,
    /// Names kept that the tenant did not know yet (to be recorded).
    pub new_to_tenant: Vec<String>,
}

/// Decides which of `incoming` may be applied: names the profile holds already always;
/// new ones while the profile has room (`held` names now) and, when new to the tenant
/// (`known` says which are not), while the event and the tenant have room (`distinct`
/// names in use). The rest are dropped, in the traits' order (by name), so the same
/// event always keeps the same names.
pub fn admit(
    limits: TraitLimits,
    incoming: &Map<String, Value>,
    on_profile: impl Fn(&str) -> bool,
    held: usize,
    known: impl Fn(&str) -> bool,
    distinct: usize,
) -> Admitted {
    let mut out = Admitted::default();
    let mut held = held;
    let mut distinct = distinct;
    let mut new_in_event = 0usize;
    for (name, value) in incoming {
        if on_profile(name) {
            out.traits.insert(name.clone(), value.clone());
            continue;
        }
        if held >= limits.max_per_profile as usize {
            out.dropped += 1;
            continue;
        }
        if !known(name) {
            if new_in_event >= limits.max_new_per_event as usize
                || distinct >= limits.max_distinct as usize
            {
                out.dropped += 1;
                continue;
            }
            new_in_event += 1;
            distinct += 1;
            out.new_to_tenant.push(name.clone());
        }
        held += 1;
        out.traits.insert(name.clone(), value.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(names: &[&str]) -> Map<String, Value> {
        names.iter().map(|n| (n.to_string(), json!(1))).collect()
    }

    #[test]
    fn limits_are_bounded() {
        assert!(TraitLimits::default().check().is_ok());
        for bad in [
            TraitLimits {
                max_new_per_event: 0,
                ..Default::default()
            },
            TraitLimits {
                max_per_profile: 5_001,
                ..Default::default()
            },
            TraitLimits {
                max_distinct: 20_001,
                ..Default::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_event_is_refused_past_the_event_or_tenant_limit() {
        let limits = TraitLimits {
            max_new_per_event: 3,
            max_per_profile: 10,
            max_distinct: 5,
        };
        assert_eq!(limits.refusal(TraitScope::Customer, 3, 2), None);
        let many = limits.refusal(TraitScope::Customer, 4, 0).unwrap();
        assert!(many.contains("brings 4 trait names"), "{many}");
        let full = limits.refusal(TraitScope::Group, 1, 5).unwrap();
        assert!(full.contains("uses 5 group trait names"), "{full}");
        assert_eq!(
            limits.refusal(TraitScope::Customer, 0, 9),
            None,
            "known names only: always taken"
        );
    }

    #[test]
    fn admission_keeps_known_names_and_drops_the_surplus_of_new_ones() {
        let limits = TraitLimits {
            max_new_per_event: 2,
            max_per_profile: 4,
            max_distinct: 100,
        };
        // the profile holds a and b; c is known to the tenant; d, e, f are new to it
        let profile = ["a", "b"];
        let tenant = ["a", "b", "c"];
        let got = admit(
            limits,
            &map(&["a", "c", "d", "e", "f"]),
            |n| profile.contains(&n),
            2,
            |n| tenant.contains(&n),
            3,
        );
        // a (held); c fits (3 of 4); d fits (4 of 4, first new name); e, f: no room
        assert_eq!(got.traits, map(&["a", "c", "d"]));
        assert_eq!(got.dropped, 2);
        assert_eq!(got.new_to_tenant, ["d"]);
        // per event: of four names new to the tenant, two are kept
        let got = admit(
            limits,
            &map(&["w", "x", "y", "z"]),
            |_| false,
            0,
            |_| false,
            0,
        );
        assert_eq!((got.traits.len(), got.dropped), (2, 2));
        // per tenant: one name of room left
        let got = admit(limits, &map(&["x", "y"]), |_| false, 0, |_| false, 99);
        assert_eq!((got.new_to_tenant.len(), got.dropped), (1, 1));
    }
}
