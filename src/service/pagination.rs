//! Page requests and the documented `pagination` object.

use async_graphql::SimpleObject;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};

/// Default page size.
pub const DEFAULT_LIMIT: u64 = 20;
/// Largest page size.
pub const MAX_LIMIT: u64 = 100;

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

    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.limit)
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
