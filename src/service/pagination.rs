//! Page requests and the documented `pagination` object.

use async_graphql::SimpleObject;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};

/// Default page size.
pub const DEFAULT_LIMIT: u64 = 20;
/// Largest page size.
pub const MAX_LIMIT: u64 = 100;
/// Deepest offset a page may start at (`(page − 1) × limit`). Deeper pages would make the
/// database walk and discard that many rows; contact lists offer cursors for deep reads.
pub const MAX_OFFSET: u64 = 10_000_000;

/// A validated page request.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    /// 1-based page.
    pub page: u64,
    /// Items per page.
    pub limit: u64,
}

impl PageRequest {
    /// Validates `page` (≥ 1, default 1) and `limit` (1–100, default 20).
    pub fn new(page: Option<i64>, limit: Option<i64>) -> AppResult<Self> {
        let mut errors = crate::error::FieldErrors::new();
        let page = match page {
            None => 1,
            Some(p) if p >= 1 => p as u64,
            Some(_) => {
                errors.insert(
                    "page".into(),
                    "Page must be a whole number of at least 1".into(),
                );
                1
            }
        };
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(l) if (1..=MAX_LIMIT as i64).contains(&l) => l as u64,
            Some(_) => {
                errors.insert(
                    "limit".into(),
                    format!("Limit must be a whole number from 1 to {MAX_LIMIT}"),
                );
                DEFAULT_LIMIT
            }
        };
        if errors.is_empty() && (page - 1).saturating_mul(limit) > MAX_OFFSET {
            errors.insert(
                "page".into(),
                format!(
                    "Page is too deep: (page - 1) x limit must be at most {MAX_OFFSET}; use a cursor to read further"
                ),
            );
        }
        if errors.is_empty() {
            Ok(Self { page, limit })
        } else {
            Err(AppError::fields(errors))
        }
    }

    /// Parses query-string values, then validates.
    pub fn from_query(page: Option<&str>, limit: Option<&str>) -> AppResult<Self> {
        let mut errors = crate::error::FieldErrors::new();
        let mut parse =
            |name: &str, v: Option<&str>| match v.map(str::trim).filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => match s.parse::<i64>() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        errors.insert(name.into(), format!("'{s}' is not a whole number"));
                        None
                    }
                },
            };
        let (p, l) = (parse("page", page), parse("limit", limit));
        if !errors.is_empty() {
            return Err(AppError::fields(errors));
        }
        Self::new(p, l)
    }

    /// Rows to skip (at most [`MAX_OFFSET`], checked when the request was made).
    pub fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.limit).min(MAX_OFFSET)
    }

    /// The `pagination` object for a result with `total` items.
    pub fn pagination(&self, total: u64) -> Pagination {
        Pagination {
            page: self.page,
            limit: self.limit,
            total,
            total_pages: total.div_ceil(self.limit),
            next_cursor: None,
        }
    }
}

/// `{page, limit, total, totalPages}`.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// Current page (1-based).
    pub page: u64,
    /// Items per page.
    pub limit: u64,
    /// Items in all pages.
    pub total: u64,
    /// Number of pages.
    pub total_pages: u64,
    /// Contact lists only: pass it as `cursor` to get the rows after this page's last one,
    /// unaffected by contacts added or removed meanwhile. Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_pages_are_refused_before_any_query() {
        let e = PageRequest::new(Some(i64::MAX), Some(100)).unwrap_err();
        assert!(e.field_errors().unwrap()["page"].contains("too deep"));
        let e = PageRequest::from_query(Some("9223372036854775807"), None).unwrap_err();
        assert!(e.field_errors().unwrap().contains_key("page"));
        let deepest = (MAX_OFFSET / 100 + 1) as i64;
        assert_eq!(
            PageRequest::new(Some(deepest), Some(100)).unwrap().offset(),
            MAX_OFFSET
        );
        assert!(PageRequest::new(Some(deepest + 1), Some(100)).is_err());
    }
}
