//! CSV export, streamed: the directory is read in keyset pages (oldest first) and each page is
//! encoded and sent before the next is read, so memory stays flat whatever the size.

use futures_util::Stream;

use super::output;
use crate::{
    auth::{Capability, Principal},
    domain::ids::TenantId,
    error::{AppError, AppResult},
    repo,
    state::AppState,
};

/// Contacts read per page.
const PAGE: u64 = 1000;

/// The export's columns (the import reads them all back).
pub const EXPORT_HEADER: [&str; 11] = [
    "phone",
    "name",
    "email",
    "countryCode",
    "tags",
    "labels",
    "optIn",
    "isBlocked",
    "source",
    "params",
    "createdAt",
];

fn encode(rows: &[entity::contact::Model], header: bool) -> Result<Vec<u8>, AppError> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 96 + 128));
    if header {
        w.write_record(EXPORT_HEADER).map_err(AppError::internal)?;
    }
    for m in rows {
        let c = output(m);
        let params = c.params.to_string();
        let record = [
            c.phone.as_str(),
            c.name.as_deref().unwrap_or(""),
            c.email.as_deref().unwrap_or(""),
            c.country_code.as_deref().unwrap_or(""),
            &c.tags.join(","),
            &c.labels.join(","),
            if c.opt_in { "true" } else { "false" },
            if c.is_blocked { "true" } else { "false" },
            &c.source,
            if params == "{}" { "" } else { &params },
            &c.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ];
        for cell in record {
            w.write_field(super::csv_guard::defuse(cell).as_bytes())
                .map_err(AppError::internal)?;
        }
        w.write_record(std::iter::empty::<&[u8]>())
            .map_err(AppError::internal)?;
    }
    w.into_inner()
        .map_err(|e| AppError::internal(anyhow::anyhow!("csv: {e}")))
}

struct Cursor {
    state: AppState,
    tenant: TenantId,
    after: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>,
    first: bool,
    done: bool,
}

/// The caller's contacts as CSV chunks: a header row, then every contact oldest first.
pub fn export_csv(
    state: &AppState,
    p: &Principal,
) -> AppResult<impl Stream<Item = Result<Vec<u8>, AppError>> + Send + 'static + use<>> {
    p.require(Capability::ManageContacts)?;
    let start = Cursor {
        state: state.clone(),
        tenant: p.tenant_id,
        after: None,
        first: true,
        done: false,
    };
    Ok(futures_util::stream::unfold(start, |mut cur| async move {
        if cur.done {
            return None;
        }
        let rows = match repo::contacts::after(&cur.state.db, cur.tenant, cur.after, PAGE).await {
            Ok(rows) => rows,
            Err(e) => {
                cur.done = true;
                let e = AppError::from(e);
                // Logged here: the response has already started, so it can only be cut short.
                let _ = e.public_message();
                return Some((Err(e), cur));
            }
        };
        cur.done = (rows.len() as u64) < PAGE;
        cur.after = rows.last().map(|m| (m.created_at, m.id));
        let chunk = encode(&rows, cur.first);
        cur.first = false;
        Some((chunk, cur))
    }))
}
