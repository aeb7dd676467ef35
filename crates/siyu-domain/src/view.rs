//! Saved views (常用筛选): a staff member's named searches of a list (the customer
//! list's search and segment filter), kept on the server so that they follow the
//! person to any browser. They are personal: nobody else sees or changes them.

use serde::Serialize;
use utoipa::ToSchema;

use crate::DomainError;
use crate::error::check_name;
use crate::ids::SavedViewId;

/// The lists a view can be saved for.
pub const LISTS: &[&str] = &["customers"];
/// The most views one person keeps for one list.
pub const MAX_VIEWS_PER_LIST: i64 = 50;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SavedView {
    pub id: SavedViewId,
    /// The list it is a view of (`customers`).
    pub list: String,
    pub name: String,
    /// The search.
    pub q: Option<String>,
    /// The segment definition the list is filtered by.
    pub filter: Option<String>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// A view as asked for, checked: a known list, a name, a search and filter of sensible
/// length (blank ones are absent).
#[derive(Debug, Clone, PartialEq)]
pub struct NewView {
    pub list: String,
    pub name: String,
    pub q: Option<String>,
    pub filter: Option<String>,
}

impl NewView {
    pub fn parse(
        list: &str,
        name: &str,
        q: Option<&str>,
        filter: Option<&str>,
    ) -> Result<Self, DomainError> {
        check_list(list)?;
        let name = check_name("name", name, 40)?;
        let text = |field: &str, value: Option<&str>, max: usize| match value
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            Some(v) if v.chars().count() > max => Err(DomainError::invalid(
                field,
                format!("must be at most {max} characters"),
            )),
            v => Ok(v.map(str::to_owned)),
        };
        let q = text("q", q, 200)?;
        let filter = text("filter", filter, 4000)?;
        if q.is_none() && filter.is_none() {
            return Err(DomainError::invalid(
                "q",
                "a view needs a search or a filter",
            ));
        }
        Ok(Self {
            list: list.to_owned(),
            name,
            q,
            filter,
        })
    }
}

pub fn check_list(list: &str) -> Result<(), DomainError> {
    if LISTS.contains(&list) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "list",
            format!("views are kept for {}", LISTS.join(", ")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_needs_a_known_list_a_name_and_something_to_show() {
        let v =
            NewView::parse("customers", " 上海金卡 ", Some(" "), Some("tag(\"金卡\")")).unwrap();
        assert_eq!(v.name, "上海金卡");
        assert_eq!(v.q, None, "a blank search is no search");
        assert!(NewView::parse("orders", "x", Some("a"), None).is_err());
        assert!(NewView::parse("customers", " ", Some("a"), None).is_err());
        assert!(NewView::parse("customers", "x", None, Some("  ")).is_err());
        assert!(NewView::parse("customers", "x", Some(&"字".repeat(201)), None).is_err());
    }
}
