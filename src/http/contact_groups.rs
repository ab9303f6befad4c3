//! `/api/contacts/groups`: contact groups and their members (JWT).

use axum::{extract::State, response::Response};
use uuid::Uuid;

use super::{
    envelope::{self, Envelope, MessageEnvelope, PagedEnvelope},
    extract::{PageQuery, Path, Query, UserAuth, ValidJson},
};
use crate::{
    error::{AppResult, ErrorEnvelope},
    service::contacts::{
        self, CreateGroupInput, GroupOutput, MembersInput, MembersOutcome, UpdateGroupInput,
    },
    state::AppState,
};

/// List groups by name, with member counts.
///
/// Paged with `page` and `limit` (default 20, at most 100). Needs a user access token.
#[utoipa::path(get, path = "/api/contacts/groups", operation_id = "listContactGroups", tag = "contact-groups",
    security(("bearerAuth" = [])), params(PageQuery),
    responses(
        (status = 200, description = "A page of groups", body = PagedEnvelope<GroupOutput>),
        (status = 400, description = "Bad page or limit", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    ))]
pub async fn list(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Query(q): Query<PageQuery>,
) -> AppResult<Response> {
    let out = contacts::list_groups(&state, &p, q.request()?).await?;
    Ok(envelope::paged(out.data, out.pagination))
}

/// Create a group.
///
/// `name` (1 to 100 characters) must be unique in the tenant (409 otherwise); `description` takes
/// up to 1000 characters. The group starts without members. Needs a user access token.
#[utoipa::path(post, path = "/api/contacts/groups", operation_id = "createContactGroup", tag = "contact-groups",
    security(("bearerAuth" = [])), request_body = CreateGroupInput,
    responses(
        (status = 201, description = "Created", body = Envelope<GroupOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
        (status = 409, description = "A group with this name exists", body = ErrorEnvelope),
    ))]
pub async fn create(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    ValidJson(input): ValidJson<CreateGroupInput>,
) -> AppResult<Response> {
    Ok(envelope::created(
        contacts::create_group(&state, &p, input).await?,
    ))
}

/// One group.
///
/// Returns its name, description and member count; another tenant's group is 404. Needs a user
/// access token.
#[utoipa::path(get, path = "/api/contacts/groups/{id}", operation_id = "getContactGroup", tag = "contact-groups",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Group UUID")),
    responses(
        (status = 200, description = "The group", body = Envelope<GroupOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok(contacts::get_group(&state, &p, id).await?))
}

/// Rename a group or change its description.
///
/// Give `name`, `description` or both (neither is 400); `description: null` clears it, and a name
/// another group has is 409. Needs a user access token.
#[utoipa::path(patch, path = "/api/contacts/groups/{id}", operation_id = "updateContactGroup", tag = "contact-groups",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Group UUID")),
    request_body = UpdateGroupInput,
    responses(
        (status = 200, description = "Updated", body = Envelope<GroupOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "A group with this name exists", body = ErrorEnvelope),
    ))]
pub async fn update(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
    ValidJson(input): ValidJson<UpdateGroupInput>,
) -> AppResult<Response> {
    Ok(envelope::ok(
        contacts::update_group(&state, &p, id, input).await?,
    ))
}

/// Delete a group (its contacts stay).
///
/// Only the group and its memberships are removed; the contacts are not changed. Needs a user
/// access token.
#[utoipa::path(delete, path = "/api/contacts/groups/{id}", operation_id = "deleteContactGroup", tag = "contact-groups",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Group UUID")),
    responses(
        (status = 200, description = "Deleted", body = MessageEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    contacts::delete_group(&state, &p, id).await?;
    Ok(envelope::message("Group deleted"))
}

/// Add contacts to a group (`{contactIds}`; members already in it are left as they are).
///
/// Takes up to 1000 ids (UUID or `contact_<uuid>`; repeats are ignored). If any id is not a contact
/// of the tenant the call is 404 and adds nothing; otherwise the answer gives how many were added
/// and the new member count. Needs a user access token.
#[utoipa::path(post, path = "/api/contacts/groups/{id}/members", operation_id = "addContactGroupMembers", tag = "contact-groups",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Group UUID")),
    request_body = MembersInput,
    responses(
        (status = 200, description = "Added", body = Envelope<MembersOutcome>),
        (status = 400, description = "No or malformed ids", body = ErrorEnvelope),
        (status = 404, description = "Group or a contact not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn add_members(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
    ValidJson(input): ValidJson<MembersInput>,
) -> AppResult<Response> {
    Ok(envelope::ok(
        contacts::add_members(&state, &p, id, input).await?,
    ))
}

/// Remove contacts from a group (`{contactIds}`).
///
/// Takes up to 1000 ids (UUID or `contact_<uuid>`); ids that are not members are ignored. The
/// answer gives how many were removed and the new member count. Needs a user access token.
#[utoipa::path(delete, path = "/api/contacts/groups/{id}/members", operation_id = "removeContactGroupMembers", tag = "contact-groups",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Group UUID")),
    request_body = MembersInput,
    responses(
        (status = 200, description = "Removed", body = Envelope<MembersOutcome>),
        (status = 400, description = "No or malformed ids", body = ErrorEnvelope),
        (status = 404, description = "Group not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn remove_members(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
    ValidJson(input): ValidJson<MembersInput>,
) -> AppResult<Response> {
    Ok(envelope::ok(
        contacts::remove_members(&state, &p, id, input).await?,
    ))
}
