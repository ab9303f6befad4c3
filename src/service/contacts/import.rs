//! Imports: CSV files streamed row by row (never held whole), and JSON bulk arrays.
//!
//! A CSV is checked up front (empty, binary, not UTF-8, no `phone` column: 400 before anything
//! is written). Rows are then parsed and validated on a blocking thread while the async side
//! inserts the previous batch, one transaction per batch, so other writers interleave.

use std::{
    collections::HashMap,
    io::{self, Read},
};

use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::SyncIoBridge;

use super::{
    BulkContactInput, BulkCreated, BulkError, BulkOutcome, Family, ImportOutcome, ImportRowError,
    NewContact,
    csv_guard::{MAX_ROW, RowGuard, TOO_LONG, UNCLOSED, restore},
    validate,
};
use crate::{
    auth::{Capability, Principal},
    domain::ids::TenantId,
    error::{AppError, AppResult, FieldErrors},
    repo,
    state::AppState,
};

/// Largest CSV upload (100 MiB).
pub const IMPORT_LIMIT: u64 = 100 * 1024 * 1024;
/// Row errors listed in an import's answer.
const MAX_REPORTED_ERRORS: usize = 100;
/// Rows written per transaction (about 0.2 s of SQLite's write lock on a 2-core machine;
/// fewer, larger commits also mean fewer full-text index segments to merge).
const BATCH: usize = 5000;
/// Row bytes per batch at most, so a file of long rows holds little memory at once.
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Bytes inspected before any row is read.
const PREFIX: usize = 64 * 1024;
/// Imports at least this large refresh the planner's statistics (PostgreSQL), so the next
/// list or search is planned for the directory's new size rather than waiting for autovacuum.
const ANALYZE_AFTER: u64 = 10_000;
/// Most contacts in one JSON bulk request.
pub const MAX_BULK: usize = 1000;

type Row = (entity::contact::Model, Vec<String>);

/// A parsed line: the row to insert, or why not.
enum Parsed {
    Ok { line: u64, row: Box<Row> },
    Bad(ImportRowError),
}

fn file_error(msg: impl Into<String>) -> AppError {
    AppError::field("file", msg)
}

/// Column positions of the header.
struct Columns {
    phone: usize,
    name: Option<usize>,
    email: Option<usize>,
    tags: Option<usize>,
    labels: Option<usize>,
    opt_in: Option<usize>,
    country: Option<usize>,
    blocked: Option<usize>,
    source: Option<usize>,
    params: Option<usize>,
}

fn columns(header: &csv::ByteRecord) -> AppResult<Columns> {
    let names: Vec<String> = header
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim()
                .to_ascii_lowercase()
                .replace(['_', ' ', '-'], "")
        })
        .collect();
    let find = |aliases: &[&str]| names.iter().position(|n| aliases.contains(&n.as_str()));
    let phone = find(&["phone", "phonenumber", "usernumber", "mobile", "number"]).ok_or_else(
        || file_error("The CSV header has no phone column (expected columns: phone,name and optional email,tags,optIn)"),
    )?;
    Ok(Columns {
        phone,
        name: find(&["name", "username", "fullname"]),
        email: find(&["email", "emailaddress"]),
        tags: find(&["tags", "tag"]),
        labels: find(&["labels", "label"]),
        opt_in: find(&["optin", "optedin"]),
        country: find(&["countrycode", "country"]),
        blocked: find(&["isblocked", "blocked"]),
        source: find(&["source"]),
        params: find(&["params"]),
    })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Some(true),
        "false" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Splits a tags cell: `vip,lead`, `vip|lead` or `vip;lead`.
fn split_list(s: &str) -> Vec<String> {
    s.split([',', '|', ';'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn first_error(errors: FieldErrors) -> String {
    errors
        .into_values()
        .next()
        .unwrap_or_else(|| "Invalid row".into())
}

/// Turns one CSV record into a row, or a row error.
fn parse_record(
    rec: &csv::ByteRecord,
    line: u64,
    cols: &Columns,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Parsed {
    let mut cells = Vec::with_capacity(rec.len());
    for cell in rec.iter() {
        match std::str::from_utf8(cell) {
            Ok(s) => cells.push(s),
            Err(_) => {
                return Parsed::Bad(ImportRowError {
                    line,
                    phone: None,
                    error: "The row is not valid UTF-8 text".into(),
                });
            }
        }
    }
    let get = |i: Option<usize>| {
        i.and_then(|i| cells.get(i))
            .map(|s| restore(s.trim()).trim())
            .filter(|s| !s.is_empty())
    };
    let phone = get(Some(cols.phone)).map(str::to_owned);
    let bad = |error: String| {
        Parsed::Bad(ImportRowError {
            line,
            phone: phone.clone(),
            error,
        })
    };
    let opt_in = match get(cols.opt_in).map(parse_bool) {
        Some(None) => return bad("optIn must be true or false".into()),
        Some(v) => v,
        None => None,
    };
    let is_blocked = match get(cols.blocked).map(parse_bool) {
        Some(None) => return bad("isBlocked must be true or false".into()),
        Some(v) => v,
        None => None,
    };
    let params = match get(cols.params).map(serde_json::from_str::<serde_json::Value>) {
        Some(Err(_)) => return bad("params must be a JSON object".into()),
        Some(Ok(v)) => Some(v),
        None => None,
    };
    let input = NewContact {
        phone: phone.clone(),
        name: get(cols.name).map(str::to_owned),
        email: get(cols.email).map(str::to_owned),
        country_code: get(cols.country).map(str::to_owned),
        tags: get(cols.tags).map(split_list),
        labels: get(cols.labels).map(split_list),
        params,
        source: get(cols.source).map(str::to_owned),
        opt_in,
        is_blocked,
    };
    // Rows keep the file's order (creation time, then id) so an export lists them as given.
    let at = now + chrono::Duration::microseconds(i64::try_from(line).unwrap_or(0));
    match validate::new_row(tenant, input, Family::Contacts, "import", at) {
        Ok(row) => Parsed::Ok {
            line,
            row: Box::new(row),
        },
        Err(e) => bad(first_error(e)),
    }
}

/// The row error for the guard's stand-in rows.
fn marker_error(rec: &csv::ByteRecord, line: u64) -> Option<Parsed> {
    let error = match rec.get(0)? {
        m if m == TOO_LONG => format!(
            "The row is longer than {} KiB (or a quote opened on it is never closed); it was skipped",
            MAX_ROW / 1024
        ),
        m if m == UNCLOSED => {
            "A quote opened on this row is never closed, so the rest of the file would be one field"
                .to_owned()
        }
        _ => return None,
    };
    Some(Parsed::Bad(ImportRowError {
        line,
        phone: None,
        error,
    }))
}

/// A reader that fails with `FileTooLarge` past `limit` bytes.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(io::ErrorKind::FileTooLarge, "the upload is over the limit")
        })?;
        Ok(n)
    }
}

fn read_error(e: &csv::Error) -> AppError {
    match e.kind() {
        csv::ErrorKind::Io(io) if io.kind() == io::ErrorKind::FileTooLarge => {
            AppError::PayloadTooLarge(format!("The CSV file must be at most {IMPORT_LIMIT} bytes"))
        }
        _ => file_error(format!("The CSV file could not be read: {e}")),
    }
}

/// Reads the start of the upload and rejects what is not a CSV; returns the delimiter and the
/// bytes read (without a UTF-8 BOM).
async fn inspect<R: AsyncRead + Unpin>(reader: &mut R) -> AppResult<(u8, Vec<u8>)> {
    let mut prefix = Vec::with_capacity(PREFIX);
    while prefix.len() < PREFIX {
        let mut chunk = vec![0; PREFIX - prefix.len()];
        let n = reader
            .read(&mut chunk)
            .await
            .map_err(|e| file_error(format!("The upload could not be read: {e}")))?;
        if n == 0 {
            break;
        }
        prefix.extend_from_slice(&chunk[..n]);
    }
    if let Some(rest) = prefix.strip_prefix(b"\xEF\xBB\xBF") {
        prefix = rest.to_vec();
    }
    if prefix.iter().all(u8::is_ascii_whitespace) {
        return Err(file_error("The CSV file is empty"));
    }
    if prefix.contains(&0) {
        return Err(file_error("The file is binary, not a CSV text file"));
    }
    if let Err(e) = std::str::from_utf8(&prefix) {
        // A character cut at the end of the prefix is fine; anything else is another encoding.
        if e.error_len().is_some() {
            return Err(file_error(
                "The CSV file is not UTF-8 text (save it as CSV UTF-8)",
            ));
        }
    }
    let header_end = prefix
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(prefix.len());
    let header = &prefix[..header_end];
    let count = |d: u8| header.iter().filter(|b| **b == d).count();
    let delimiter = if count(b';') > count(b',') {
        b';'
    } else {
        b','
    };
    Ok((delimiter, prefix))
}

/// Imports a CSV upload into the caller's directory: `phone` plus optional `name`, `email`,
/// `tags`, `optIn` (and `countryCode`, `labels`, `isBlocked`, `source`, `params`, as exported).
pub async fn import_csv<R>(
    state: &AppState,
    p: &Principal,
    mut reader: R,
) -> AppResult<ImportOutcome>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    p.require(Capability::ManageContacts)?;
    let (delimiter, prefix) = inspect(&mut reader).await?;
    let tenant = p.tenant_id;
    let now = state.clock.now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<AppResult<Vec<Parsed>>>(2);
    let bridge = SyncIoBridge::new(reader);
    let parser = tokio::task::spawn_blocking(move || {
        let source = RowGuard::new(
            Capped {
                inner: Read::chain(io::Cursor::new(prefix), bridge),
                left: IMPORT_LIMIT,
            },
            delimiter,
        );
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .from_reader(source);
        let cols = match rdr.byte_headers() {
            Ok(h) => columns(h),
            Err(e) => Err(read_error(&e)),
        };
        let cols = match cols {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let mut rec = csv::ByteRecord::new();
        let mut batch = Vec::with_capacity(BATCH);
        let mut batch_bytes = 0;
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    if rec.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
                        continue;
                    }
                    // The csv crate reports a record that follows blank lines at the first
                    // blank one; count back from where the record ended instead.
                    let embedded = rec.iter().flatten().filter(|b| **b == b'\n').count() as u64;
                    let ended = rdr.position().line().saturating_sub(1 + embedded);
                    let line = rec.position().map_or(0, |p| p.line()).max(ended);
                    batch_bytes += rec.as_slice().len();
                    batch.push(match marker_error(&rec, line) {
                        Some(bad) => bad,
                        None => parse_record(&rec, line, &cols, tenant, now),
                    });
                    if (batch.len() == BATCH || batch_bytes >= BATCH_BYTES)
                        && tx
                            .blocking_send(Ok(std::mem::replace(
                                &mut batch,
                                Vec::with_capacity(BATCH),
                            )))
                            .is_err()
                    {
                        return;
                    }
                    if batch.is_empty() {
                        batch_bytes = 0;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Ok(std::mem::take(&mut batch)));
                    let _ = tx.blocking_send(Err(read_error(&e)));
                    return;
                }
            }
        }
        let _ = tx.blocking_send(Ok(batch));
    });
    let mut out = ImportOutcome {
        imported: 0,
        skipped: 0,
        errors: Vec::new(),
        errors_truncated: false,
    };
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut failure = None;
    while let Some(msg) = rx.recv().await {
        match msg {
            Ok(batch) => store_batch(state, batch, &mut seen, &mut out).await?,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(rx);
    let _ = parser.await;
    match failure {
        Some(e) => Err(e),
        None => {
            out.errors.sort_by_key(|e| e.line);
            if out.imported >= ANALYZE_AFTER {
                repo::contacts::refresh_statistics(&state.db).await?;
            }
            Ok(out)
        }
    }
}

fn report(out: &mut ImportOutcome, e: ImportRowError) {
    out.skipped += 1;
    if out.errors.len() < MAX_REPORTED_ERRORS {
        out.errors.push(e);
    } else {
        out.errors_truncated = true;
    }
}

async fn store_batch(
    state: &AppState,
    batch: Vec<Parsed>,
    seen: &mut HashMap<String, u64>,
    out: &mut ImportOutcome,
) -> AppResult<()> {
    let mut rows = Vec::with_capacity(batch.len());
    let mut lines = Vec::with_capacity(batch.len());
    for item in batch {
        match item {
            Parsed::Bad(e) => report(out, e),
            Parsed::Ok { line, row } => {
                if let Some(first) = seen.get(&row.0.phone) {
                    let phone = Some(row.0.phone.clone());
                    report(
                        out,
                        ImportRowError {
                            line,
                            phone,
                            error: format!("Duplicate of line {first}"),
                        },
                    );
                    continue;
                }
                seen.insert(row.0.phone.clone(), line);
                lines.push((line, row.0.id, row.0.phone.clone()));
                rows.push(*row);
            }
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let models: Vec<entity::contact::Model> = rows.iter().map(|r| r.0.clone()).collect();
    let txn = state.db.begin().await?;
    let inserted = repo::contacts::insert_many(&txn, rows).await?;
    let created: Vec<&entity::contact::Model> =
        models.iter().filter(|m| inserted.contains(&m.id)).collect();
    let tenant = crate::domain::ids::TenantId(models[0].tenant_id);
    let n = super::enqueue_events(&txn, state, tenant, "contact.created", &created).await?;
    txn.commit().await?;
    crate::service::webhooks::wake(state, n);
    for (line, id, phone) in lines {
        if inserted.contains(&id) {
            out.imported += 1;
        } else {
            report(
                out,
                ImportRowError {
                    line,
                    phone: Some(phone),
                    error: "Contact already exists".into(),
                },
            );
        }
    }
    Ok(())
}

/// Imports up to [`MAX_BULK`] contacts from JSON (the second vendor's bulk endpoint): each row
/// is created, or listed in `errors` with its index.
pub async fn bulk_import(
    state: &AppState,
    p: &Principal,
    contacts: Vec<BulkContactInput>,
) -> AppResult<BulkOutcome> {
    p.require(Capability::ManageContacts)?;
    if contacts.is_empty() {
        return Err(AppError::field(
            "contacts",
            "contacts must be a non-empty array",
        ));
    }
    if contacts.len() > MAX_BULK {
        return Err(AppError::field(
            "contacts",
            format!("At most {MAX_BULK} contacts per request"),
        ));
    }
    let now = state.clock.now();
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut order = Vec::new();
    let mut seen = HashMap::new();
    for (index, c) in contacts.into_iter().enumerate() {
        let index = index as u64;
        let given = c.user_number.clone();
        let at = now + chrono::Duration::microseconds(index as i64);
        match validate::new_row(p.tenant_id, c.into(), Family::Vendor, "import", at) {
            Err(e) => errors.push(BulkError {
                index,
                phone: given,
                error: first_error(e),
            }),
            Ok(row) => {
                if seen.insert(row.0.phone.clone(), index).is_some() {
                    errors.push(BulkError {
                        index,
                        phone: given,
                        error: "Contact already exists".into(),
                    });
                    continue;
                }
                order.push((index, given, row.0.id, row.0.phone.clone()));
                rows.push(row);
            }
        }
    }
    let models: Vec<entity::contact::Model> = rows.iter().map(|r| r.0.clone()).collect();
    let txn = state.db.begin().await?;
    let inserted = repo::contacts::insert_many(&txn, rows).await?;
    let created: Vec<&entity::contact::Model> =
        models.iter().filter(|m| inserted.contains(&m.id)).collect();
    let n = super::enqueue_events(&txn, state, p.tenant_id, "contact.created", &created).await?;
    txn.commit().await?;
    crate::service::webhooks::wake(state, n);
    let mut created = Vec::new();
    for (index, given, id, phone) in order {
        if inserted.contains(&id) {
            created.push(BulkCreated {
                id,
                phone,
                status: "created".into(),
            });
        } else {
            errors.push(BulkError {
                index,
                phone: given,
                error: "Contact already exists".into(),
            });
        }
    }
    errors.sort_by_key(|e| e.index);
    Ok(BulkOutcome {
        imported: created.len() as u64,
        skipped: errors.len() as u64,
        errors,
        contacts: created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reader_fails_past_its_limit() {
        let mut ok = Capped {
            inner: &b"0123456789"[..],
            left: 10,
        };
        let mut buf = Vec::new();
        assert_eq!(ok.read_to_end(&mut buf).unwrap(), 10);
        let mut over = Capped {
            inner: &b"0123456789"[..],
            left: 9,
        };
        let err = over.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn header_aliases_and_cells() {
        let header = csv::ByteRecord::from(vec!["Name", "Phone Number", "opt_in", "Tags"]);
        let cols = columns(&header).unwrap();
        assert_eq!(
            (cols.phone, cols.name, cols.opt_in, cols.tags),
            (1, Some(0), Some(2), Some(3))
        );
        assert!(columns(&csv::ByteRecord::from(vec!["name", "email"])).is_err());
        assert_eq!(split_list(" vip| lead ;x,,"), ["vip", "lead", "x"]);
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[tokio::test]
    async fn inspect_detects_delimiter_bom_and_bad_files() {
        let (d, rest) = inspect(&mut &b"\xEF\xBB\xBFphone;name\n1;a\n"[..])
            .await
            .unwrap();
        assert_eq!(d, b';');
        assert!(rest.starts_with(b"phone"));
        let (d, _) = inspect(&mut &b"phone,name;x\n"[..]).await.unwrap();
        assert_eq!(d, b',');
        for bad in [
            &b""[..],
            b"  \n",
            b"phone\0,name",
            b"phone,name\n\xff\xfe\n",
        ] {
            let mut r = bad;
            assert!(inspect(&mut r).await.is_err(), "{bad:?}");
        }
    }
}
