//! Contacts: one directory per tenant behind both contact APIs and GraphQL.
//!
//! Numbers are stored in E.164 and unique per tenant; `search` holds the lower-cased name,
//! email and phone digits that the trigram index serves. Tags live on the row (for output) and
//! in `contact_tags` (for filters and counts), always written together.

mod csv_guard;
mod cursor;
mod export;
mod groups;
mod import;
mod types;
mod validate;

use sea_orm::{Order, TransactionTrait};
use uuid::Uuid;

pub use export::export_csv;
pub use groups::*;
pub use import::{IMPORT_LIMIT, bulk_import, import_csv};
pub use types::*;

use crate::{
    auth::{Capability, Principal},
    domain::ids::TenantId,
    error::{AppError, AppResult},
    repo::{self, contacts::ListFilter, contacts::SortField},
    service::{pagination::PageRequest, webhooks},
    state::AppState,
};

/// The message of a duplicate number (409).
pub const DUPLICATE: &str = "Contact with this phone number already exists";

fn not_found() -> AppError {
    AppError::NotFound("Contact not found".into())
}

fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// The API view of a stored contact.
pub fn output(m: &entity::contact::Model) -> ContactOutput {
    ContactOutput {
        id: m.id,
        vendor_contact_id: m.vendor_contact_id.clone(),
        phone: m.phone.trim_start_matches('+').to_owned(),
        phone_e164: m.phone.clone(),
        name: m.name.clone(),
        email: m.email.clone(),
        country_code: m.country_code.clone(),
        tags: json_list(&m.tags),
        labels: json_list(&m.labels),
        params: serde_json::from_str(&m.params)
            .unwrap_or_else(|_| serde_json::Value::Object(Default::default())),
        source: m.source.clone(),
        opt_in: m.opt_in,
        is_blocked: m.is_blocked,
        last_message_at: m.last_message_at,
        conversation_count: m.conversation_count,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

/// Which API a request came through: they name the phone field differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `/api/contacts` and GraphQL: `phone`.
    Contacts,
    /// `/api/whatsapp/contacts`: `userNumber`.
    Vendor,
}

impl Family {
    fn phone_field(self) -> &'static str {
        match self {
            Family::Contacts => "phone",
            Family::Vendor => "userNumber",
        }
    }
}

fn map_unique(e: sea_orm::DbErr) -> AppError {
    if repo::is_unique_violation(&e) {
        AppError::Conflict(DUPLICATE.into())
    } else {
        e.into()
    }
}

/// Queues `contact.<kind>` webhook events for changed contacts on `txn` (before commit).
pub(super) async fn enqueue_events(
    txn: &impl sea_orm::ConnectionTrait,
    state: &AppState,
    tenant: TenantId,
    kind: &'static str,
    changed: &[&entity::contact::Model],
) -> AppResult<usize> {
    let now = state.clock.now();
    Ok(webhooks::enqueue_lazy(txn, tenant, now, || {
        changed
            .iter()
            .map(|m| webhooks::WebhookEvent::new(tenant, None, kind, now, output(m)))
            .collect()
    })
    .await?)
}

/// Creates a contact.
pub async fn create(
    state: &AppState,
    p: &Principal,
    input: NewContact,
    family: Family,
) -> AppResult<ContactOutput> {
    p.require(Capability::ManageContacts)?;
    let now = state.clock.now();
    let (row, tags) =
        validate::new_row(p.tenant_id, input, family, "api", now).map_err(AppError::fields)?;
    let txn = state.db.begin().await?;
    let saved = repo::contacts::insert(&txn, row, &tags)
        .await
        .map_err(map_unique)?;
    let n = enqueue_events(&txn, state, p.tenant_id, "contact.created", &[&saved]).await?;
    txn.commit().await.map_err(map_unique)?;
    webhooks::wake(state, n);
    Ok(output(&saved))
}

/// One contact by id.
pub async fn get(state: &AppState, p: &Principal, id: Uuid) -> AppResult<ContactOutput> {
    p.require(Capability::ManageContacts)?;
    repo::contacts::get(&state.db, p.tenant_id, id)
        .await?
        .map(|m| output(&m))
        .ok_or_else(not_found)
}

/// One contact by any of its ids: `contact_<uuid>`, a bare UUID, or the 24-hex vendor id.
pub async fn find(state: &AppState, p: &Principal, reference: &str) -> AppResult<ContactOutput> {
    p.require(Capability::ManageContacts)?;
    let r = reference.trim();
    let uuid = Uuid::parse_str(r.strip_prefix("contact_").unwrap_or(r)).ok();
    let found = match uuid {
        Some(id) => repo::contacts::get(&state.db, p.tenant_id, id).await?,
        None if validate::is_vendor_id(r) => {
            repo::contacts::get_by_vendor_id(&state.db, p.tenant_id, &r.to_ascii_lowercase())
                .await?
        }
        None => None,
    };
    found.map(|m| output(&m)).ok_or_else(not_found)
}

/// The id of the contact `reference` names (any form [`find`] accepts).
async fn resolve(state: &AppState, p: &Principal, reference: &str) -> AppResult<Uuid> {
    find(state, p, reference).await.map(|c| c.id)
}

/// [`update`] for a contact named by any of its ids.
pub async fn update_by_ref(
    state: &AppState,
    p: &Principal,
    reference: &str,
    input: UpdateContactInput,
    family: Family,
) -> AppResult<ContactOutput> {
    p.require(Capability::ManageContacts)?;
    let id = resolve(state, p, reference).await?;
    update(state, p, id, input, family).await
}

/// [`delete`] for a contact named by any of its ids.
pub async fn delete_by_ref(state: &AppState, p: &Principal, reference: &str) -> AppResult<()> {
    p.require(Capability::ManageContacts)?;
    let id = resolve(state, p, reference).await?;
    delete(state, p, id).await
}

/// Applies a partial update. Nothing to change is a 400 "No valid fields to update".
pub async fn update(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    input: UpdateContactInput,
    family: Family,
) -> AppResult<ContactOutput> {
    p.require(Capability::ManageContacts)?;
    if input.is_empty() {
        return Err(AppError::field("body", "No valid fields to update"));
    }
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    let current = repo::contacts::get(&txn, p.tenant_id, id)
        .await?
        .ok_or_else(not_found)?;
    let (row, tags) = validate::apply(current, input, family, now).map_err(AppError::fields)?;
    let saved = repo::contacts::update(&txn, p.tenant_id, row, tags.as_deref())
        .await
        .map_err(map_unique)?
        .ok_or_else(not_found)?;
    let n = enqueue_events(&txn, state, p.tenant_id, "contact.updated", &[&saved]).await?;
    txn.commit().await.map_err(map_unique)?;
    webhooks::wake(state, n);
    Ok(output(&saved))
}

/// Deletes a contact.
pub async fn delete(state: &AppState, p: &Principal, id: Uuid) -> AppResult<()> {
    p.require(Capability::ManageContacts)?;
    let txn = state.db.begin().await?;
    let gone = repo::contacts::get(&txn, p.tenant_id, id)
        .await?
        .ok_or_else(not_found)?;
    if !repo::contacts::delete(&txn, p.tenant_id, id).await? {
        return Err(not_found());
    }
    let n = enqueue_events(&txn, state, p.tenant_id, "contact.deleted", &[&gone]).await?;
    txn.commit().await?;
    webhooks::wake(state, n);
    Ok(())
}

/// Normalises search input: phone-like text (digits, `+`, spaces, dashes, dots, brackets)
/// matches on its digits; anything else lower-cased.
fn search_text(raw: &str) -> Option<String> {
    // Control characters can match nothing (and PostgreSQL refuses NUL in text).
    let cleaned: String = raw.chars().filter(|c| !c.is_control()).collect();
    let t = cleaned.trim();
    if t.is_empty() {
        return None;
    }
    let phone_like = t.chars().any(|c| c.is_ascii_digit())
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'));
    Some(if phone_like {
        t.chars().filter(char::is_ascii_digit).collect()
    } else {
        t.to_lowercase()
    })
}

/// A page of contacts matching `q`.
pub async fn list(
    state: &AppState,
    p: &Principal,
    q: ContactQuery,
    page: PageRequest,
) -> AppResult<ContactPage> {
    p.require(Capability::ManageContacts)?;
    let mut errors = crate::error::FieldErrors::new();
    let sort = match q
        .sort_by
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => ContactSort::CreatedAt,
        Some(s) => ContactSort::parse(s).unwrap_or_else(|| {
            errors.insert(
                "sortBy".into(),
                "sortBy must be created_at, name or last_message_at".into(),
            );
            ContactSort::CreatedAt
        }),
    };
    let order = match q
        .sort_order
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => SortOrder::Desc,
        Some(s) => SortOrder::parse(s).unwrap_or_else(|| {
            errors.insert("sortOrder".into(), "sortOrder must be asc or desc".into());
            SortOrder::Desc
        }),
    };
    let group_id = match q
        .group_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(g) => match Uuid::parse_str(g) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.insert("groupId".into(), "groupId must be a group UUID".into());
                None
            }
        },
    };
    let after = match q.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match cursor::decode(c, sort, order) {
            Ok(k) => Some(k),
            Err(msg) => {
                errors.insert("cursor".into(), msg.into());
                None
            }
        },
    };
    if q.search.as_ref().is_some_and(|s| s.chars().count() > 200) {
        errors.insert(
            "search".into(),
            "search must be at most 200 characters".into(),
        );
    }
    if let Some(s) = q.search.as_deref()
        && s.chars().any(char::is_control)
        && search_text(s).is_none()
    {
        // Made only of control characters: nothing to search for (and not "everything").
        errors.insert(
            "search".into(),
            "search must contain printable characters".into(),
        );
    }
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }
    if let Some(id) = group_id
        && repo::contact_groups::get(&state.db, p.tenant_id, id)
            .await?
            .is_none()
    {
        return Err(AppError::NotFound("Group not found".into()));
    }
    list_sorted(state, p.tenant_id, q, group_id, (sort, order), page, after).await
}

async fn list_sorted(
    state: &AppState,
    tenant: TenantId,
    q: ContactQuery,
    group_id: Option<Uuid>,
    (sort, order): (ContactSort, SortOrder),
    page: PageRequest,
    after: Option<repo::contact_search::Keyset>,
) -> AppResult<ContactPage> {
    let filter = ListFilter {
        search: q.search.as_deref().and_then(search_text),
        tag: q
            .tag
            .map(|t| t.trim().replace('\0', ""))
            .filter(|t| !t.is_empty()),
        group_id,
    };
    let field = match sort {
        ContactSort::CreatedAt => SortField::CreatedAt,
        ContactSort::Name => SortField::Name,
        ContactSort::LastMessageAt => SortField::LastMessageAt,
    };
    let db_order = match order {
        SortOrder::Asc => Order::Asc,
        SortOrder::Desc => Order::Desc,
    };
    let (rows, total) = repo::contacts::list(
        &state.db,
        tenant,
        &filter,
        field,
        db_order,
        page.offset(),
        page.limit,
        after.as_ref(),
    )
    .await?;
    let mut pagination = page.pagination(total);
    if rows.len() as u64 == page.limit
        && let Some(last) = rows.last()
    {
        let key = repo::contact_search::Keyset::of(last, field);
        pagination.next_cursor = Some(cursor::encode(&key, sort, order));
    }
    Ok(ContactPage {
        data: rows.iter().map(output).collect(),
        pagination,
    })
}

/// Every tag of the tenant with its number of contacts, most used first.
pub async fn tags(state: &AppState, p: &Principal) -> AppResult<Vec<TagCount>> {
    p.require(Capability::ManageContacts)?;
    Ok(repo::contacts::tag_counts(&state.db, p.tenant_id)
        .await?
        .into_iter()
        .map(|(tag, count)| TagCount { tag, count })
        .collect())
}
