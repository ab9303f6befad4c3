//! `/api/whatsapp/contacts`: the second vendor's contacts API over the same directory. It keeps
//! that vendor's shapes: ids `contact_<uuid>`, E.164 phones, millisecond timestamps, snake_case
//! PATCH fields, and its own error body `{success:false, error}`. JWT or API key.

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::request::Parts,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    envelope::{self, Envelope, MessageEnvelope},
    extract::{AnyAuth, Path, Query, ValidJson},
};
use crate::{
    auth::Principal,
    error::AppError,
    service::{
        contacts::{
            self, BulkContactInput, BulkError, ContactOutput, ContactQuery, Family, NewContact,
            UpdateContactInput, nullable,
        },
        pagination::{MAX_LIMIT, PageRequest},
    },
    state::AppState,
};

/// This API's error body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"success": false, "error": "Contact not found"}))]
pub struct VendorErrorBody {
    /// Always `false`.
    pub success: bool,
    /// What went wrong, e.g. "Phone number (userNumber) is required".
    pub error: String,
    /// Per-field messages, for validation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    pub errors: Option<crate::error::FieldErrors>,
}

/// An [`AppError`] rendered as `{success:false, error}` with the same status.
pub struct VendorError(AppError);

impl From<AppError> for VendorError {
    fn from(e: AppError) -> Self {
        VendorError(e)
    }
}

impl IntoResponse for VendorError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = e.status();
        let (error, errors) = match &e {
            AppError::Validation { errors, .. } => (
                errors
                    .values()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| "Validation failed".into()),
                Some(errors.clone()),
            ),
            AppError::Unauthorized(_) => ("Unauthorized".into(), None),
            AppError::RateLimited { .. } => ("Rate limit exceeded".into(), None),
            _ => (e.public_message(), None),
        };
        let mut res = (
            status,
            Json(VendorErrorBody {
                success: false,
                error,
                errors,
            }),
        )
            .into_response();
        crate::error::decorate(&e, res.headers_mut());
        res
    }
}

type VendorResult = Result<Response, VendorError>;

/// A bearer JWT or an API key; failures answer `{success:false, error:"Unauthorized"}`.
pub struct VendorAuth(pub Principal);

impl FromRequestParts<AppState> for VendorAuth {
    type Rejection = VendorError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, VendorError> {
        let AnyAuth(p) = AnyAuth::from_request_parts(parts, state).await?;
        Ok(VendorAuth(p))
    }
}

fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A contact in this API's shape.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VendorContact {
    /// `contact_<uuid>`.
    pub id: String,
    /// 24 hex characters.
    pub vendor_contact_id: String,
    /// Display name.
    pub name: Option<String>,
    /// E.164.
    pub phone: String,
    /// Email.
    pub email: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country_code: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Custom parameters.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// Source.
    pub source: String,
    /// Opted in to WhatsApp messages.
    pub opted_in: bool,
    /// Blocked.
    pub is_blocked: bool,
    /// Last message, ISO 8601 with milliseconds.
    pub last_message_at: Option<String>,
    /// Conversations so far.
    pub conversation_count: i32,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

fn prefixed(id: uuid::Uuid) -> String {
    format!("contact_{id}")
}

impl From<ContactOutput> for VendorContact {
    fn from(c: ContactOutput) -> Self {
        VendorContact {
            id: prefixed(c.id),
            vendor_contact_id: c.vendor_contact_id,
            name: c.name,
            phone: c.phone_e164,
            email: c.email,
            country_code: c.country_code,
            tags: c.tags,
            labels: c.labels,
            params: c.params,
            source: c.source,
            opted_in: c.opt_in,
            is_blocked: c.is_blocked,
            last_message_at: c.last_message_at.map(millis),
            conversation_count: c.conversation_count,
            created_at: millis(c.created_at),
            updated_at: millis(c.updated_at),
        }
    }
}

/// `{contacts, total, page, limit, hasNext}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VendorContactList {
    /// The page's contacts.
    pub contacts: Vec<VendorContact>,
    /// Contacts matching.
    pub total: u64,
    /// Page number.
    pub page: u64,
    /// Page size.
    pub limit: u64,
    /// Whether another page follows.
    pub has_next: bool,
    /// Pass as `cursor` for the next page, unaffected by contacts added meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `?page=&limit=&search=&sortBy=&sortOrder=` (plus `tag` and `groupId`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(rename_all = "camelCase", parameter_in = Query)]
pub struct VendorListQuery {
    /// Page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1)]
    pub page: Option<String>,
    /// Results per page (default 20; above 100 is capped at 100).
    #[param(value_type = Option<i64>, minimum = 1)]
    pub limit: Option<String>,
    /// Search by name, phone number or email.
    pub search: Option<String>,
    /// `created_at` (default), `name` or `last_message_at`.
    #[param(value_type = Option<crate::service::contacts::ContactSort>)]
    pub sort_by: Option<String>,
    /// `desc` (default) or `asc`.
    #[param(value_type = Option<crate::service::contacts::SortOrder>)]
    pub sort_order: Option<String>,
    /// Only contacts with this tag.
    pub tag: Option<String>,
    /// Only members of this group.
    #[param(value_type = Option<uuid::Uuid>)]
    pub group_id: Option<String>,
    /// `nextCursor` of the previous page: continue right after its last contact.
    pub cursor: Option<String>,
}

fn vendor_page(q: &VendorListQuery) -> Result<PageRequest, AppError> {
    let num = |name: &str, v: &Option<String>| -> Result<Option<i64>, AppError> {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| AppError::field(name, format!("{name} must be a whole number"))),
        }
    };
    let page = num("page", &q.page)?;
    // This API documents a maximum rather than an error: larger limits are capped.
    let limit = num("limit", &q.limit)?.map(|l| l.min(MAX_LIMIT as i64));
    PageRequest::new(page, limit)
}

/// List contacts, with search, sorting and paging.
///
/// Phones are E.164, ids `contact_<uuid>`, times ISO 8601 with milliseconds; a `limit` above 100 is
/// capped rather than refused, and `hasNext` and `nextCursor` drive paging. A user token, or an API
/// key with the `manage_contacts` scope (the bearer token wins when both are sent).
#[utoipa::path(get, path = "/api/whatsapp/contacts", operation_id = "listVendorContacts", tag = "whatsapp-contacts",
    security(("bearerAuth" = []), ("apiKeyAuth" = [])), params(VendorListQuery),
    responses(
        (status = 200, description = "A page of contacts", body = Envelope<VendorContactList>),
        (status = 400, description = "Bad query", body = VendorErrorBody),
        (status = 401, description = "Unauthorized", body = VendorErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    VendorAuth(p): VendorAuth,
    q: Result<Query<VendorListQuery>, AppError>,
) -> VendorResult {
    let Query(q) = q?;
    let page = vendor_page(&q)?;
    let by_cursor = q.cursor.as_deref().is_some_and(|c| !c.trim().is_empty());
    let out = contacts::list(
        &state,
        &p,
        ContactQuery {
            search: q.search,
            tag: q.tag,
            group_id: q.group_id,
            sort_by: q.sort_by,
            sort_order: q.sort_order,
            cursor: q.cursor,
        },
        page,
    )
    .await?;
    let pg = out.pagination;
    Ok(envelope::ok(VendorContactList {
        contacts: out.data.into_iter().map(VendorContact::from).collect(),
        total: pg.total,
        page: pg.page,
        limit: pg.limit,
        has_next: if by_cursor {
            pg.next_cursor.is_some()
        } else {
            pg.page < pg.total_pages
        },
        next_cursor: pg.next_cursor,
    }))
}

/// Get a contact by id (`contact_<uuid>`) or vendor contact id (24 hex characters).
///
/// A bare UUID is accepted too; another tenant's contact is 404. A user token, or an API key with
/// the `manage_contacts` scope.
#[utoipa::path(get, path = "/api/whatsapp/contacts/{contactId}", operation_id = "getVendorContact", tag = "whatsapp-contacts",
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    params(("contactId" = String, Path, description = "`contact_<uuid>` or vendorContactId")),
    responses(
        (status = 200, description = "The contact", body = Envelope<VendorContact>),
        (status = 401, description = "Unauthorized", body = VendorErrorBody),
        (status = 404, description = "Contact not found", body = VendorErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    VendorAuth(p): VendorAuth,
    id: Result<Path<String>, AppError>,
) -> VendorResult {
    let Path(id) = id?;
    let c = contacts::find(&state, &p, &id).await?;
    Ok(envelope::ok(VendorContact::from(c)))
}

/// `POST /api/whatsapp/contacts`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VendorCreateInput {
    /// Phone number in E.164, e.g. `+971501234567`.
    #[schema(required = true)]
    pub user_number: Option<String>,
    /// Display name.
    pub user_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// ISO 3166-1 alpha-2 (derived from the number when absent).
    pub country_code: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Custom key-value parameters.
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
}

/// Create a contact (source `api`, not opted in).
///
/// `userNumber` is required, normalised to E.164 and must be new in the tenant (409); the country
/// is derived from it unless `countryCode` is given. A `contact.created` webhook event is queued. A
/// user token, or an API key with the `manage_contacts` scope.
#[utoipa::path(post, path = "/api/whatsapp/contacts", operation_id = "createVendorContact", tag = "whatsapp-contacts",
    security(("bearerAuth" = []), ("apiKeyAuth" = [])), request_body = VendorCreateInput,
    responses(
        (status = 201, description = "Created", body = Envelope<VendorContact>),
        (status = 400, description = "Phone number (userNumber) is required", body = VendorErrorBody),
        (status = 401, description = "Unauthorized", body = VendorErrorBody),
        (status = 409, description = "Contact with this phone number already exists", body = VendorErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    VendorAuth(p): VendorAuth,
    body: Result<ValidJson<VendorCreateInput>, AppError>,
) -> VendorResult {
    let ValidJson(i) = body?;
    let input = NewContact {
        phone: i.user_number,
        name: i.user_name,
        email: i.email,
        country_code: i.country_code,
        tags: i.tags,
        params: i.params,
        source: Some("api".into()),
        opt_in: Some(false),
        ..NewContact::default()
    };
    let c = contacts::create(&state, &p, input, Family::Vendor).await?;
    Ok(envelope::created(VendorContact::from(c)))
}

/// The PATCH body: only these snake_case fields are recognised; others are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct VendorPatch {
    /// Display name.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// Email.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// ISO country code.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub country_code: Option<Option<String>>,
    /// Replaces all tags.
    pub tags: Option<Vec<String>>,
    /// Replaces all custom params.
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
    /// Block or unblock.
    pub is_blocked: Option<bool>,
    /// Contact source.
    pub source: Option<String>,
    /// WhatsApp opt-in status.
    pub opted_in: Option<bool>,
}

/// The documented PATCH answer (snake_case).
#[derive(Debug, Serialize, ToSchema)]
pub struct VendorPatched {
    /// `contact_<uuid>`.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// E.164.
    pub phone: String,
    /// Email.
    pub email: Option<String>,
    /// ISO country code.
    pub country_code: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Custom params.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// Blocked.
    pub is_blocked: bool,
    /// Opted in.
    pub opted_in: bool,
    /// Changed at, ISO 8601 with milliseconds.
    pub updated_at: String,
}

/// Update one or more fields of a contact.
///
/// Recognises `name`, `email`, `country_code`, `tags` and `params` (both replaced whole),
/// `is_blocked`, `source` and `opted_in`; other fields are ignored, and a body with none of these
/// is 400. The answer is snake_case, and a `contact.updated` webhook event is queued. A user token,
/// or an API key with the `manage_contacts` scope.
#[utoipa::path(patch, path = "/api/whatsapp/contacts/{contactId}", operation_id = "updateVendorContact", tag = "whatsapp-contacts",
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    params(("contactId" = String, Path, description = "`contact_<uuid>` or vendorContactId")),
    request_body = VendorPatch,
    responses(
        (status = 200, description = "Updated", body = Envelope<VendorPatched>),
        (status = 400, description = "No valid fields to update", body = VendorErrorBody),
        (status = 401, description = "Unauthorized", body = VendorErrorBody),
        (status = 404, description = "Contact not found", body = VendorErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    VendorAuth(p): VendorAuth,
    id: Result<Path<String>, AppError>,
    body: Result<ValidJson<VendorPatch>, AppError>,
) -> VendorResult {
    let Path(id) = id?;
    let ValidJson(b) = body?;
    let input = UpdateContactInput {
        name: b.name,
        email: b.email,
        country_code: b.country_code,
        tags: b.tags,
        params: b.params,
        is_blocked: b.is_blocked,
        source: b.source,
        opt_in: b.opted_in,
        ..UpdateContactInput::default()
    };
    let c = contacts::update_by_ref(&state, &p, &id, input, Family::Vendor).await?;
    Ok(envelope::ok(VendorPatched {
        id: prefixed(c.id),
        name: c.name,
        phone: c.phone_e164,
        email: c.email,
        country_code: c.country_code,
        tags: c.tags,
        params: c.params,
        is_blocked: c.is_blocked,
        opted_in: c.opt_in,
        updated_at: millis(c.updated_at),
    }))
}

/// Delete a contact.
///
/// Takes `contact_<uuid>`, a bare UUID or the vendor contact id; group memberships go with it and a
/// `contact.deleted` webhook event is queued. A user token, or an API key with the
/// `manage_contacts` scope.
#[utoipa::path(delete, path = "/api/whatsapp/contacts/{contactId}", operation_id = "deleteVendorContact", tag = "whatsapp-contacts",
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    params(("contactId" = String, Path, description = "`contact_<uuid>` or vendorContactId")),
    responses(
        (status = 200, description = "Deleted", body = MessageEnvelope),
        (status = 401, description = "Unauthorized", body = VendorErrorBody),
        (status = 404, description = "Contact not found", body = VendorErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    VendorAuth(p): VendorAuth,
    id: Result<Path<String>, AppError>,
) -> VendorResult {
    let Path(id) = id?;
    contacts::delete_by_ref(&state, &p, &id).await?;
    Ok(envelope::message("Contact deleted"))
}

/// `{contacts: [...]}` of a bulk import.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct VendorBulkInput {
    /// Up to 1000 contacts.
    #[schema(required = true)]
    pub contacts: Option<Vec<BulkContactInput>>,
}

/// A created contact of a bulk import.
#[derive(Debug, Serialize, ToSchema)]
pub struct VendorBulkCreated {
    /// `contact_<uuid>`.
    pub id: String,
    /// E.164.
    pub phone: String,
    /// `created`.
    pub status: String,
}

/// `{imported, skipped, errors, contacts}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VendorBulkOutcome {
    /// Contacts created.
    pub imported: u64,
    /// Rows not imported.
    pub skipped: u64,
    /// Why each skipped row was skipped (`index` is 0-based).
    pub errors: Vec<BulkError>,
    /// The created contacts.
    pub contacts: Vec<VendorBulkCreated>,
}

/// Import many contacts at once; invalid and duplicate rows are skipped and listed.
///
/// Takes 1 to 1000 contacts, created with source `import`; rows that are invalid, already in the
/// directory or repeated in the request are listed in `errors` by 0-based index, and the call still
/// answers 200. Each created contact queues a `contact.created` webhook event. A user token, or an
/// API key with the `manage_contacts` scope.
#[utoipa::path(post, path = "/api/whatsapp/contacts/bulk", operation_id = "bulkImportVendorContacts", tag = "whatsapp-contacts",
    security(("bearerAuth" = []), ("apiKeyAuth" = [])), request_body = VendorBulkInput,
    responses(
        (status = 200, description = "Imported, possibly with partial failures", body = Envelope<VendorBulkOutcome>),
        (status = 400, description = "No contacts, or more than 1000", body = VendorErrorBody),
        (status = 401, description = "Unauthorized", body = VendorErrorBody),
    ))]
pub async fn bulk(
    State(state): State<AppState>,
    VendorAuth(p): VendorAuth,
    body: Result<ValidJson<VendorBulkInput>, AppError>,
) -> VendorResult {
    let ValidJson(b) = body?;
    let out = contacts::bulk_import(&state, &p, b.contacts.unwrap_or_default()).await?;
    Ok(envelope::ok(VendorBulkOutcome {
        imported: out.imported,
        skipped: out.skipped,
        errors: out.errors,
        contacts: out
            .contacts
            .into_iter()
            .map(|c| VendorBulkCreated {
                id: prefixed(c.id),
                phone: c.phone,
                status: c.status,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn render(e: AppError) -> (u16, serde_json::Value) {
        let res = VendorError(e).into_response();
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_documented_error_has_its_status_and_text() {
        let table = [
            (
                AppError::field("userNumber", "Phone number (userNumber) is required"),
                400,
                "Phone number (userNumber) is required",
            ),
            (
                AppError::field("body", "No valid fields to update"),
                400,
                "No valid fields to update",
            ),
            (
                AppError::Unauthorized("Missing X-API-Key header".into()),
                401,
                "Unauthorized",
            ),
            (
                AppError::NotFound("Contact not found".into()),
                404,
                "Contact not found",
            ),
            (
                AppError::Conflict(contacts::DUPLICATE.into()),
                409,
                "Contact with this phone number already exists",
            ),
            (
                AppError::RateLimited {
                    retry_after_secs: 3,
                },
                429,
                "Rate limit exceeded",
            ),
            (
                AppError::internal(anyhow::anyhow!("secret detail")),
                500,
                "Internal server error",
            ),
        ];
        for (e, status, text) in table {
            let (s, body) = render(e).await;
            assert_eq!(s, status, "{text}");
            assert_eq!(body["success"], false);
            assert_eq!(body["error"], text);
            assert!(body.get("code").is_none());
            assert!(!body.to_string().contains("secret detail"));
        }
    }
}
