//! Contact groups ("organize groups"): named sets of contacts, unique by name in a tenant.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::types::nullable;
use crate::{
    auth::{Capability, Principal},
    error::{AppError, AppResult, FieldErrors},
    repo,
    service::pagination::{PageRequest, Pagination},
    state::AppState,
};

/// Longest group name.
const MAX_GROUP_NAME: usize = 100;
/// Longest description.
const MAX_DESCRIPTION: usize = 1000;
/// Most contacts added or removed in one request.
pub const MAX_MEMBERS_PER_CALL: usize = 1000;

/// A group.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct GroupOutput {
    /// Group id.
    #[graphql(
        skip_output,
        derived(
            name = "id",
            into = "async_graphql::ID",
            owned,
            with = "crate::domain::ids::gql_id"
        )
    )]
    pub id: Uuid,
    /// Name, unique in the tenant.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Contacts in the group.
    pub member_count: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A page of groups.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
pub struct GroupPage {
    /// The groups.
    pub data: Vec<GroupOutput>,
    /// Paging.
    pub pagination: Pagination,
}

/// `POST /api/contacts/groups`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateGroupInput {
    /// 1–100 characters, unique in the tenant.
    #[schema(required = true)]
    pub name: Option<String>,
    /// Up to 1000 characters.
    pub description: Option<String>,
}

/// `PATCH /api/contacts/groups/{id}`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateGroupInput {
    /// New name.
    pub name: Option<String>,
    /// New description (`null` clears).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// `{contactIds}` of a membership change.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembersInput {
    /// Contact ids (at most 1000).
    #[schema(required = true)]
    pub contact_ids: Option<Vec<String>>,
}

/// The outcome of a membership change.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct MembersOutcome {
    /// Contacts added (or removed) by this call; ones already in (or not in) the group don't count.
    pub changed: u64,
    /// Members now.
    pub member_count: u64,
}

const DUPLICATE_GROUP: &str = "A group with this name already exists";

fn group_not_found() -> AppError {
    AppError::NotFound("Group not found".into())
}

fn name_rule(errors: &mut FieldErrors, raw: Option<&str>, required: bool) -> Option<String> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            if required || raw.is_some() {
                errors.insert(
                    "name".into(),
                    "name is required (1 to 100 characters)".into(),
                );
            }
            None
        }
        Some(n) if n.contains('\0') => {
            errors.insert("name".into(), "name must not contain NUL characters".into());
            None
        }
        Some(n) if n.chars().count() > MAX_GROUP_NAME => {
            errors.insert(
                "name".into(),
                format!("name must be at most {MAX_GROUP_NAME} characters"),
            );
            None
        }
        Some(n) => Some(n.to_owned()),
    }
}

fn description_rule(errors: &mut FieldErrors, raw: Option<String>) -> Option<String> {
    let d = raw.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())?;
    if d.contains('\0') {
        errors.insert(
            "description".into(),
            "description must not contain NUL characters".into(),
        );
    }
    if d.chars().count() > MAX_DESCRIPTION {
        errors.insert(
            "description".into(),
            format!("description must be at most {MAX_DESCRIPTION} characters"),
        );
    }
    Some(d)
}

fn map_unique(e: sea_orm::DbErr) -> AppError {
    if repo::is_unique_violation(&e) {
        AppError::Conflict(DUPLICATE_GROUP.into())
    } else {
        e.into()
    }
}

async fn with_count(
    state: &AppState,
    p: &Principal,
    g: entity::contact_group::Model,
) -> AppResult<GroupOutput> {
    let counts = repo::contact_groups::member_counts(&state.db, p.tenant_id, &[g.id]).await?;
    Ok(group_output(
        g.clone(),
        counts.get(&g.id).copied().unwrap_or(0),
    ))
}

fn group_output(g: entity::contact_group::Model, member_count: u64) -> GroupOutput {
    GroupOutput {
        id: g.id,
        name: g.name,
        description: g.description,
        member_count,
        created_at: g.created_at,
        updated_at: g.updated_at,
    }
}

/// Creates a group.
pub async fn create_group(
    state: &AppState,
    p: &Principal,
    input: CreateGroupInput,
) -> AppResult<GroupOutput> {
    p.require(Capability::ManageContacts)?;
    let mut errors = FieldErrors::new();
    let name = name_rule(&mut errors, input.name.as_deref(), true);
    let description = description_rule(&mut errors, input.description);
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return Err(AppError::fields(errors));
    };
    let now = state.clock.now();
    let row = entity::contact_group::Model {
        id: Uuid::now_v7(),
        tenant_id: p.tenant_id.uuid(),
        name,
        description,
        created_at: now,
        updated_at: now,
    };
    let saved = repo::contact_groups::insert(&state.db, row)
        .await
        .map_err(map_unique)?;
    Ok(group_output(saved, 0))
}

/// One group with its member count.
pub async fn get_group(state: &AppState, p: &Principal, id: Uuid) -> AppResult<GroupOutput> {
    p.require(Capability::ManageContacts)?;
    let g = repo::contact_groups::get(&state.db, p.tenant_id, id)
        .await?
        .ok_or_else(group_not_found)?;
    with_count(state, p, g).await
}

/// A page of groups by name.
pub async fn list_groups(
    state: &AppState,
    p: &Principal,
    page: PageRequest,
) -> AppResult<GroupPage> {
    p.require(Capability::ManageContacts)?;
    let (rows, total) =
        repo::contact_groups::list(&state.db, p.tenant_id, page.offset(), page.limit).await?;
    let ids: Vec<Uuid> = rows.iter().map(|g| g.id).collect();
    let counts = repo::contact_groups::member_counts(&state.db, p.tenant_id, &ids).await?;
    Ok(GroupPage {
        data: rows
            .into_iter()
            .map(|g| {
                let n = counts.get(&g.id).copied().unwrap_or(0);
                group_output(g, n)
            })
            .collect(),
        pagination: page.pagination(total),
    })
}

/// Renames a group or changes its description.
pub async fn update_group(
    state: &AppState,
    p: &Principal,
    id: Uuid,
    input: UpdateGroupInput,
) -> AppResult<GroupOutput> {
    p.require(Capability::ManageContacts)?;
    if input.name.is_none() && input.description.is_none() {
        return Err(AppError::field("body", "No valid fields to update"));
    }
    let mut errors = FieldErrors::new();
    let name = name_rule(&mut errors, input.name.as_deref(), false);
    let description = input.description.map(|d| description_rule(&mut errors, d));
    if !errors.is_empty() {
        return Err(AppError::fields(errors));
    }
    let mut g = repo::contact_groups::get(&state.db, p.tenant_id, id)
        .await?
        .ok_or_else(group_not_found)?;
    if let Some(n) = name {
        g.name = n;
    }
    if let Some(d) = description {
        g.description = d;
    }
    g.updated_at = state.clock.now();
    let saved = repo::contact_groups::update(&state.db, p.tenant_id, g)
        .await
        .map_err(map_unique)?
        .ok_or_else(group_not_found)?;
    with_count(state, p, saved).await
}

/// Deletes a group (its contacts stay).
pub async fn delete_group(state: &AppState, p: &Principal, id: Uuid) -> AppResult<()> {
    p.require(Capability::ManageContacts)?;
    if repo::contact_groups::delete(&state.db, p.tenant_id, id).await? {
        Ok(())
    } else {
        Err(group_not_found())
    }
}

fn contact_ids(input: MembersInput) -> AppResult<Vec<Uuid>> {
    let raw = input.contact_ids.unwrap_or_default();
    if raw.is_empty() {
        return Err(AppError::field(
            "contactIds",
            "contactIds must be a non-empty array of contact ids",
        ));
    }
    if raw.len() > MAX_MEMBERS_PER_CALL {
        return Err(AppError::field(
            "contactIds",
            format!("At most {MAX_MEMBERS_PER_CALL} contact ids per request"),
        ));
    }
    let mut ids = Vec::with_capacity(raw.len());
    for r in raw {
        let r = r.trim();
        match uuid::Uuid::parse_str(r.strip_prefix("contact_").unwrap_or(r)) {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(_) => {
                return Err(AppError::field(
                    "contactIds",
                    format!("'{r}' is not a contact id"),
                ));
            }
        }
    }
    Ok(ids)
}

/// Adds contacts to a group. Every id must be a contact of the tenant (else 404, nothing added).
pub async fn add_members(
    state: &AppState,
    p: &Principal,
    group: Uuid,
    input: MembersInput,
) -> AppResult<MembersOutcome> {
    p.require(Capability::ManageContacts)?;
    let ids = contact_ids(input)?;
    repo::contact_groups::get(&state.db, p.tenant_id, group)
        .await?
        .ok_or_else(group_not_found)?;
    let known = repo::contacts::existing_ids(&state.db, p.tenant_id, &ids).await?;
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !known.contains(id))
        .map(Uuid::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(AppError::NotFound(format!(
            "Contact not found: {}",
            missing.join(", ")
        )));
    }
    let now = state.clock.now();
    let changed =
        repo::contact_groups::add_members(&state.db, p.tenant_id, group, &ids, now).await?;
    members_outcome(state, p, group, changed).await
}

async fn members_outcome(
    state: &AppState,
    p: &Principal,
    group: Uuid,
    changed: u64,
) -> AppResult<MembersOutcome> {
    let counts = repo::contact_groups::member_counts(&state.db, p.tenant_id, &[group]).await?;
    Ok(MembersOutcome {
        changed,
        member_count: counts.get(&group).copied().unwrap_or(0),
    })
}

/// Removes contacts from a group (ids that are not members are ignored).
pub async fn remove_members(
    state: &AppState,
    p: &Principal,
    group: Uuid,
    input: MembersInput,
) -> AppResult<MembersOutcome> {
    p.require(Capability::ManageContacts)?;
    let ids = contact_ids(input)?;
    repo::contact_groups::get(&state.db, p.tenant_id, group)
        .await?
        .ok_or_else(group_not_found)?;
    let changed = repo::contact_groups::remove_members(&state.db, p.tenant_id, group, &ids).await?;
    members_outcome(state, p, group, changed).await
}
