//! `/api/contacts` (JWT) and `/api/external/contacts` (API key): the first contacts API, with
//! CSV import and export and tag counts. Phones render as digits without `+`.

use axum::{
    body::{Body, Bytes},
    extract::{FromRequest, Multipart, Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{StreamExt, TryStreamExt};
use tokio_util::io::StreamReader;
use uuid::Uuid;

use super::{
    envelope::{self, Envelope, MessageEnvelope, PagedEnvelope},
    extract::{KeyAuth, Path, Query, UserAuth, ValidJson},
};
use crate::{
    error::{AppError, AppResult, ErrorEnvelope},
    service::{
        contacts::{
            self, ContactOutput, ContactQuery, CreateContactInput, Family, IMPORT_LIMIT,
            ImportOutcome, TagCount, UpdateContactInput,
        },
        pagination::PageRequest,
    },
    state::AppState,
};

/// `?page=&limit=&search=&tag=&groupId=&sortBy=&sortOrder=`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(rename_all = "camelCase", parameter_in = Query)]
pub struct ContactListQuery {
    /// Page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1)]
    pub page: Option<String>,
    /// Items per page (default 20, at most 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// Search by name, email or phone digits (substring, any case).
    pub search: Option<String>,
    /// Only contacts with this tag.
    pub tag: Option<String>,
    /// Only members of this group.
    #[param(value_type = Option<uuid::Uuid>)]
    pub group_id: Option<String>,
    /// `created_at` (default), `name` or `last_message_at`.
    #[param(value_type = Option<crate::service::contacts::ContactSort>)]
    pub sort_by: Option<String>,
    /// `desc` (default) or `asc`.
    #[param(value_type = Option<crate::service::contacts::SortOrder>)]
    pub sort_order: Option<String>,
    /// `pagination.nextCursor` of the previous page: continue right after its last contact
    /// (stable while contacts are added or removed; `page` is then ignored).
    pub cursor: Option<String>,
}

impl ContactListQuery {
    fn split(self) -> AppResult<(ContactQuery, PageRequest)> {
        let page = PageRequest::from_query(self.page.as_deref(), self.limit.as_deref())?;
        Ok((
            ContactQuery {
                search: self.search,
                tag: self.tag,
                group_id: self.group_id,
                sort_by: self.sort_by,
                sort_order: self.sort_order,
                cursor: self.cursor,
            },
            page,
        ))
    }
}

/// List contacts (newest first unless sorted otherwise), with search and filters.
///
/// `search` matches name, email or phone digits (substring, any case); `tag` and `groupId` filter
/// (an unknown group is 404), and `sortBy`/`sortOrder` sort. Pages go by `page` and `limit`, or by
/// `cursor`: a full page returns `pagination.nextCursor` to continue from. Needs a user access
/// token. API keys use `GET /api/external/contacts`.
#[utoipa::path(get, path = "/api/contacts", operation_id = "listContacts", tag = "contacts",
    security(("bearerAuth" = [])), params(ContactListQuery),
    responses(
        (status = 200, description = "A page of contacts", body = PagedEnvelope<ContactOutput>),
        (status = 400, description = "Bad filter, sort, page or limit", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    ))]
pub async fn list(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Query(q): Query<ContactListQuery>,
) -> AppResult<Response> {
    let (q, page) = q.split()?;
    let out = contacts::list(&state, &p, q, page).await?;
    Ok(envelope::paged(out.data, out.pagination))
}

/// List contacts with an API key (same query and answer as `GET /api/contacts`).
///
/// `search`, `tag`, `groupId`, sorting and `page`/`cursor` paging work the same way; an unknown
/// group is 404. Needs an API key with the `manage_contacts` scope.
#[utoipa::path(get, path = "/api/external/contacts", operation_id = "listContactsWithApiKey", tag = "contacts",
    security(("apiKeyAuth" = [])), params(ContactListQuery),
    responses(
        (status = 200, description = "A page of contacts", body = PagedEnvelope<ContactOutput>),
        (status = 400, description = "Bad filter, sort, page or limit", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid API key", body = ErrorEnvelope),
    ))]
pub async fn external_list(
    State(state): State<AppState>,
    KeyAuth(p): KeyAuth,
    Query(q): Query<ContactListQuery>,
) -> AppResult<Response> {
    let (q, page) = q.split()?;
    let out = contacts::list(&state, &p, q, page).await?;
    Ok(envelope::paged(out.data, out.pagination))
}

/// Add a contact. The number is normalised to E.164 and must be new in the tenant.
///
/// The country is derived from the number unless `countryCode` is given; `source` defaults to
/// `api`, `optIn` and `isBlocked` to false. A `contact.created` webhook event is queued. Needs a
/// user access token.
#[utoipa::path(post, path = "/api/contacts", operation_id = "createContact", tag = "contacts",
    security(("bearerAuth" = [])), request_body = CreateContactInput,
    responses(
        (status = 201, description = "Created", body = Envelope<ContactOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 409, description = "The tenant already has this number", body = ErrorEnvelope),
    ))]
pub async fn create(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    ValidJson(input): ValidJson<CreateContactInput>,
) -> AppResult<Response> {
    Ok(envelope::created(
        contacts::create(&state, &p, input.into(), Family::Contacts).await?,
    ))
}

/// One contact.
///
/// Takes the contact's UUID; another tenant's contact is 404. The phone renders as digits without
/// `+`, with `phoneE164` alongside. Needs a user access token.
#[utoipa::path(get, path = "/api/contacts/{id}", operation_id = "getContact", tag = "contacts",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Contact UUID")),
    responses(
        (status = 200, description = "The contact", body = Envelope<ContactOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok(contacts::get(&state, &p, id).await?))
}

/// Change some fields of a contact (absent fields stay; tags, labels and params are replaced).
///
/// `null` clears `name` or `email`, `countryCode: null` derives the country from the number again,
/// and a new `phone` is normalised and must stay unique (409). A body with no known field is 400; a
/// change queues a `contact.updated` webhook event. Needs a user access token.
#[utoipa::path(patch, path = "/api/contacts/{id}", operation_id = "updateContact", tag = "contacts",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Contact UUID")),
    request_body = UpdateContactInput,
    responses(
        (status = 200, description = "Updated", body = Envelope<ContactOutput>),
        (status = 400, description = "Validation failed, or no field to update", body = ErrorEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "Another contact has this number", body = ErrorEnvelope),
    ))]
pub async fn update(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
    ValidJson(input): ValidJson<UpdateContactInput>,
) -> AppResult<Response> {
    Ok(envelope::ok(
        contacts::update(&state, &p, id, input, Family::Contacts).await?,
    ))
}

/// Delete a contact (its group memberships go with it).
///
/// Queues a `contact.deleted` webhook event carrying the contact as it was. Needs a user access
/// token.
#[utoipa::path(delete, path = "/api/contacts/{id}", operation_id = "deleteContact", tag = "contacts",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Contact UUID")),
    responses(
        (status = 200, description = "Deleted", body = MessageEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    contacts::delete(&state, &p, id).await?;
    Ok(envelope::message("Contact deleted"))
}

/// Tags in use, with how many contacts carry each (most used first).
///
/// Not paged: every tag of the tenant comes in one answer. Needs a user access token.
#[utoipa::path(get, path = "/api/contacts/tags", operation_id = "listContactTags", tag = "contacts",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Tags and counts", body = Envelope<Vec<TagCount>>),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    ))]
pub async fn tags(State(state): State<AppState>, UserAuth(p): UserAuth) -> AppResult<Response> {
    Ok(envelope::ok(contacts::tags(&state, &p).await?))
}

/// The `multipart/form-data` body of an import: one CSV in the field `file`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ImportForm {
    /// CSV with a header row: `phone` (required), `name`, `email`, `tags`, `optIn` (and the
    /// other export columns). `,` or `;` delimited, UTF-8 (a BOM is fine), at most 100 MiB.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

fn malformed(e: axum::extract::multipart::MultipartError) -> AppError {
    AppError::field(
        "body",
        format!("Malformed multipart body: {}", e.body_text()),
    )
}

/// Import contacts from a CSV file. The upload is streamed and written in batches; numbers
/// already in the directory (or repeated in the file) and invalid rows are skipped and listed
/// with their line numbers.
///
/// Header names are matched loosely (`phone`, `phoneNumber`, `mobile`, `userNumber` …), and each
/// created contact queues a `contact.created` webhook event. The answer counts imported and skipped
/// rows and lists the first 100 row errors (`errorsTruncated` when more failed). Needs a user
/// access token.
#[utoipa::path(post, path = "/api/contacts/import", operation_id = "importContacts", tag = "contacts",
    security(("bearerAuth" = [])),
    request_body(content((ImportForm = "multipart/form-data"), (String = "text/csv")), description = "The CSV as the multipart field `file`, or as the whole body"),
    responses(
        (status = 200, description = "Imported", body = Envelope<ImportOutcome>),
        (status = 400, description = "No file, binary or non-UTF-8 file, or no phone column", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 413, description = "Over 100 MiB", body = ErrorEnvelope),
        (status = 415, description = "Not multipart/form-data or text/csv", body = ErrorEnvelope),
    ))]
pub async fn import(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    req: Request,
) -> AppResult<Response> {
    let too_large = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > IMPORT_LIMIT + 1024 * 1024);
    if too_large {
        return Err(AppError::PayloadTooLarge(format!(
            "The CSV file must be at most {IMPORT_LIMIT} bytes"
        )));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("text/csv") {
        let stream = req.into_body().into_data_stream();
        let reader = StreamReader::new(stream.map_err(std::io::Error::other));
        return Ok(envelope::ok(
            contacts::import_csv(&state, &p, reader).await?,
        ));
    }
    if !content_type.starts_with("multipart/form-data") {
        return Err(AppError::UnsupportedMediaType(
            "Content-Type must be multipart/form-data (field `file`) or text/csv".into(),
        ));
    }
    let mut mp = Multipart::from_request(req, &state)
        .await
        .map_err(|e| AppError::field("body", format!("Malformed multipart body: {e}")))?;
    while let Some(mut field) = mp.next_field().await.map_err(malformed)? {
        if field.name() != Some("file") {
            continue;
        }
        // The field borrows the form; the importer parses on a blocking thread and needs an
        // owned reader, so chunks are handed over through a small channel.
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let forward = async move {
            loop {
                let item = match field.chunk().await {
                    Ok(Some(chunk)) => Ok(chunk),
                    Ok(None) => break,
                    Err(e) => Err(std::io::Error::other(e)),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        };
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let import = contacts::import_csv(&state, &p, StreamReader::new(Box::pin(chunks)));
        let ((), out) = tokio::join!(forward, import);
        return Ok(envelope::ok(out?));
    }
    Err(AppError::field(
        "file",
        "A CSV file is required in the form field `file`",
    ))
}

/// Download every contact as CSV (streamed; columns `phone,name,email,countryCode,tags,labels,
/// optIn,isBlocked,source,params,createdAt`, which the import reads back).
///
/// Contacts come oldest first, as the attachment `contacts.csv`; a cell that would start like a
/// spreadsheet formula gets a leading `'`. Needs a user access token.
#[utoipa::path(get, path = "/api/contacts/export", operation_id = "exportContacts", tag = "contacts",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The CSV file", content_type = "text/csv", body = String),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    ))]
pub async fn export(State(state): State<AppState>, UserAuth(p): UserAuth) -> AppResult<Response> {
    // Fused: the compression layer may poll again after the end.
    let stream = contacts::export_csv(&state, &p)?.map_ok(Bytes::from).fuse();
    let mut res = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"contacts.csv\""),
    );
    Ok(res)
}
