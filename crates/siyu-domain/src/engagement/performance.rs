//! How an item of the content library did: over the mass sends that carried it, how
//! many customers it was planned for, sent to and delivered to, and what they ordered
//! within a window after their message (the figures a content team compares items by),
//! and, for a link card, how often its short link on those sends was clicked.

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::DomainError;

/// The window after a message in which an order counts for it, unless asked otherwise.
pub const DEFAULT_WINDOW_DAYS: u32 = 7;
/// The longest window that may be asked for.
pub const MAX_WINDOW_DAYS: u32 = 90;

/// Checks an asked-for window, in days.
pub fn window_days(asked: Option<u32>) -> Result<u32, DomainError> {
    match asked.unwrap_or(DEFAULT_WINDOW_DAYS) {
        days @ 1..=MAX_WINDOW_DAYS => Ok(days),
        _ => Err(DomainError::invalid(
            "window_days",
            format!("must be 1 to {MAX_WINDOW_DAYS} days"),
        )),
    }
}

/// An item's figures over the sends that carried it (those the caller may see).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ContentPerformance {
    /// Planned sends that carried the item.
    pub sends: i64,
    /// Customers those sends were planned for.
    pub recipients: i64,
    /// Customers the channel took the message for (on WeCom: put in a member's task).
    pub sent: i64,
    /// Customers who received it (on WeCom: the member confirmed and WeCom delivered).
    pub delivered: i64,
    /// Sends on which the item, a link card to a registered destination, led through
    /// a short link of the send's own: clicks are counted on those only.
    pub tracked_sends: i64,
    /// Clicks on those short links (not crawlers fetching a preview), at any time.
    pub clicks: i64,
    /// The window an order counts in after the message, in days.
    pub window_days: u32,
    /// Orders that recipients placed within the window after their message (orders
    /// that count: paid, completed or partly refunded).
    pub orders: i64,
    /// Recipients who placed them.
    pub ordering_customers: i64,
    /// Their amount, net of refunds, in major units of the tenant's currency.
    #[serde(serialize_with = "crate::order::serialize_major")]
    #[schema(value_type = f64)]
    pub gmv: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_one_to_ninety_days_and_a_week_by_default() {
        assert_eq!(window_days(None).unwrap(), 7);
        assert_eq!(window_days(Some(30)).unwrap(), 30);
        assert!(window_days(Some(0)).is_err());
        assert!(window_days(Some(91)).is_err());
    }
}
