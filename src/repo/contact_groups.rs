//! Contact groups and their members.

use std::collections::HashMap;

use entity::{contact_group, contact_group_member};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::domain::ids::TenantId;

/// Inserts a group (a duplicate name in the tenant is a unique violation).
pub async fn insert(
    db: &impl ConnectionTrait,
    row: contact_group::Model,
) -> Result<contact_group::Model, DbErr> {
    row.into_active_model().insert(db).await
}

/// One group of the tenant.
pub async fn get(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<contact_group::Model>, DbErr> {
    contact_group::Entity::find_by_id(id)
        .filter(contact_group::Column::TenantId.eq(tenant.uuid()))
        .one(db)
        .await
}

/// A page of the tenant's groups by name, and the total.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    offset: u64,
    limit: u64,
) -> Result<(Vec<contact_group::Model>, u64), DbErr> {
    let base =
        contact_group::Entity::find().filter(contact_group::Column::TenantId.eq(tenant.uuid()));
    let total = base.clone().count(db).await?;
    let rows = base
        .order_by_asc(contact_group::Column::Name)
        .order_by_asc(contact_group::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// Saves a group's name and description; `None` when it is gone.
pub async fn update(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    row: contact_group::Model,
) -> Result<Option<contact_group::Model>, DbErr> {
    let res = contact_group::Entity::update_many()
        .set(row.clone().into_active_model().reset_all())
        .filter(contact_group::Column::Id.eq(row.id))
        .filter(contact_group::Column::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    Ok((res.rows_affected > 0).then_some(row))
}

/// Deletes a group (memberships cascade); false when there was none.
pub async fn delete(db: &impl ConnectionTrait, tenant: TenantId, id: Uuid) -> Result<bool, DbErr> {
    let res = contact_group::Entity::delete_many()
        .filter(contact_group::Column::Id.eq(id))
        .filter(contact_group::Column::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Member counts of the given groups.
pub async fn member_counts(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    groups: &[Uuid],
) -> Result<HashMap<Uuid, u64>, DbErr> {
    let rows: Vec<(Uuid, i64)> = contact_group_member::Entity::find()
        .select_only()
        .column(contact_group_member::Column::GroupId)
        .column_as(contact_group_member::Column::ContactId.count(), "count")
        .filter(contact_group_member::Column::TenantId.eq(tenant.uuid()))
        .filter(contact_group_member::Column::GroupId.is_in(groups.iter().copied()))
        .group_by(contact_group_member::Column::GroupId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(g, n)| (g, n.max(0) as u64))
        .collect())
}

/// Adds contacts (already checked to be the tenant's) to a group; members already in it stay.
/// Returns how many were added.
pub async fn add_members(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    group: Uuid,
    contacts: &[Uuid],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, DbErr> {
    let mut added = 0;
    for chunk in contacts.chunks(500) {
        let rows = chunk.iter().map(|c| {
            contact_group_member::Model {
                group_id: group,
                contact_id: *c,
                tenant_id: tenant.uuid(),
                created_at: now,
            }
            .into_active_model()
        });
        added += contact_group_member::Entity::insert_many(rows)
            .on_conflict_do_nothing_on([
                contact_group_member::Column::GroupId,
                contact_group_member::Column::ContactId,
            ])
            .exec_without_returning(db)
            .await
            .map(|r| match r {
                sea_orm::TryInsertResult::Inserted(n) => n,
                _ => 0,
            })?;
    }
    Ok(added)
}

/// Removes contacts from a group; returns how many were members.
pub async fn remove_members(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    group: Uuid,
    contacts: &[Uuid],
) -> Result<u64, DbErr> {
    let res = contact_group_member::Entity::delete_many()
        .filter(contact_group_member::Column::TenantId.eq(tenant.uuid()))
        .filter(contact_group_member::Column::GroupId.eq(group))
        .filter(contact_group_member::Column::ContactId.is_in(contacts.iter().copied()))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
