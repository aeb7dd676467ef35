//! Cursor pagination. Lists are ordered by id; the cursor is the last id a page held,
//! made opaque so that clients do not build cursors of their own and the ordering can
//! change later without breaking them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use utoipa::ToSchema;

use crate::DomainError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// What a caller asks of a list: at most `limit` items after the `after` id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<i64>,
    /// For lists ordered by a time and then an id (a timeline): the last pair a page held.
    pub after_pair: Option<(i64, i64)>,
    pub limit: u32,
}

impl PageRequest {
    /// Reads the query parameters `cursor` and `limit`.
    pub fn parse(cursor: Option<&str>, limit: Option<u32>) -> Result<Self, DomainError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(DomainError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let bad = || DomainError::invalid("cursor", "is not a cursor this server gave out");
        let (after, after_pair) = match cursor {
            None | Some("") => (None, None),
            Some(c) => match decode_cursor(c) {
                Some(id) => (Some(id), None),
                None => (None, Some(decode_pair_cursor(c).ok_or_else(bad)?)),
            },
        };
        Ok(Self {
            after,
            after_pair,
            limit,
        })
    }

    pub fn first(limit: u32) -> Self {
        Self {
            after: None,
            after_pair: None,
            limit,
        }
    }

    /// How many rows to fetch: one more than the limit tells whether a next page exists.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The id to list after (0 when starting from the beginning; ids start at 1).
    pub fn after_id(&self) -> i64 {
        self.after.unwrap_or(0)
    }
}

/// One page of a list and the cursor of the next one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from rows fetched with [`PageRequest::fetch_limit`].
    pub fn from_rows(mut rows: Vec<T>, request: PageRequest, id_of: impl Fn(&T) -> i64) -> Self {
        let has_more = rows.len() > request.limit as usize;
        rows.truncate(request.limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|last| encode_cursor(id_of(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    /// Builds a page of items looked up by ids, where `ids` were fetched with
    /// [`PageRequest::fetch_limit`] (the items of the first `limit` of them, some perhaps
    /// gone or filtered out). The cursor follows the ids, so a missing item never ends
    /// the list early.
    pub fn from_ids(items: Vec<T>, ids: &[i64], request: PageRequest) -> Self {
        let limit = request.limit as usize;
        let next_cursor = if ids.len() > limit {
            ids.get(limit - 1).map(|last| encode_cursor(*last))
        } else {
            None
        };
        Self { items, next_cursor }
    }

    /// Builds a page whose next one starts after the id `next_after` (none: the last
    /// page), for lists that read more rows than they show (a search within a filter).
    pub fn continuing_after(items: Vec<T>, next_after: Option<i64>) -> Self {
        Self {
            items,
            next_cursor: next_after.map(encode_cursor),
        }
    }

    /// Builds a page of a list ordered by a pair (time, id), from rows fetched with
    /// [`PageRequest::fetch_limit`].
    pub fn from_rows_by_pair(
        mut rows: Vec<T>,
        request: PageRequest,
        key_of: impl Fn(&T) -> (i64, i64),
    ) -> Self {
        let has_more = rows.len() > request.limit as usize;
        rows.truncate(request.limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|last| {
                let (a, b) = key_of(last);
                URL_SAFE_NO_PAD.encode(format!("at:{a}:{b}"))
            })
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("id:{id}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("id:")?.parse().ok()
}

fn decode_pair_cursor(cursor: &str) -> Option<(i64, i64)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (a, b) = text.strip_prefix("at:")?.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let req = PageRequest::parse(Some(&encode_cursor(42)), Some(10)).unwrap();
        assert_eq!(req.after, Some(42));
        assert!(PageRequest::parse(Some("not-a-cursor!"), None).is_err());
        assert!(PageRequest::parse(None, Some(0)).is_err());
        assert!(PageRequest::parse(None, Some(MAX_LIMIT + 1)).is_err());
    }

    #[test]
    fn page_knows_when_more_rows_exist() {
        let req = PageRequest::first(2);
        let page = Page::from_rows(vec![1, 2, 3], req, |x| *x);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(decode_cursor(page.next_cursor.as_deref().unwrap()), Some(2));
        let by_pair = Page::from_rows_by_pair(vec![(5, 1), (4, 9), (4, 8)], req, |x| *x);
        let next = PageRequest::parse(by_pair.next_cursor.as_deref(), Some(2)).unwrap();
        assert_eq!((next.after, next.after_pair), (None, Some((4, 9))));
        let last = Page::from_rows(vec![1, 2], req, |x| *x);
        assert!(last.next_cursor.is_none());
    }
}
