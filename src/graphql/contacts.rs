//! Contact, tag and group queries and mutations over the contacts service.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};

use super::{GqlAuth, GqlResultExt, app, mutation::parse_id};
use crate::service::{
    contacts::{
        self, BulkContactInput, BulkOutcome, ContactOutput, ContactPage, ContactQuery, ContactSort,
        CreateGroupInput, Family, GroupOutput, GroupPage, MembersInput, MembersOutcome, NewContact,
        SortOrder, TagCount, UpdateContactInput, UpdateGroupInput,
    },
    pagination::PageRequest,
};

/// What a contact list matches.
#[derive(InputObject, Default)]
pub struct ContactFilter {
    /// Name, email or phone digits (substring, any case).
    pub search: Option<String>,
    /// Only contacts with this tag.
    pub tag: Option<String>,
    /// Only members of this group.
    pub group_id: Option<ID>,
}

/// A new contact.
#[derive(InputObject)]
pub struct ContactCreateInput {
    /// International phone number.
    pub phone: String,
    /// Display name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Opt-in (default false).
    pub opt_in: Option<bool>,
    /// ISO country (derived from the number when absent).
    pub country_code: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Labels.
    pub labels: Option<Vec<String>>,
    /// Custom parameters (a JSON object).
    pub params: Option<serde_json::Value>,
    /// Source (default `api`).
    pub source: Option<String>,
    /// Blocked (default false).
    pub is_blocked: Option<bool>,
}

/// Changes to a contact: omitted fields stay, `null` clears name, email or country.
#[derive(InputObject, Default)]
pub struct ContactUpdateInput {
    /// New number.
    pub phone: Option<String>,
    /// Display name.
    pub name: MaybeUndefined<String>,
    /// Email.
    pub email: MaybeUndefined<String>,
    /// ISO country.
    pub country_code: MaybeUndefined<String>,
    /// Replaces all tags.
    pub tags: Option<Vec<String>>,
    /// Replaces all labels.
    pub labels: Option<Vec<String>>,
    /// Replaces all custom parameters.
    pub params: Option<serde_json::Value>,
    /// Source.
    pub source: Option<String>,
    /// Opt-in.
    pub opt_in: Option<bool>,
    /// Blocked.
    pub is_blocked: Option<bool>,
}

/// One contact of a bulk import.
#[derive(InputObject)]
pub struct ContactImportInput {
    /// International phone number.
    pub phone: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// ISO country.
    pub country_code: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Custom parameters.
    pub params: Option<serde_json::Value>,
}

fn maybe<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// Contact queries.
#[derive(Default)]
pub struct ContactQueries;

#[Object]
impl ContactQueries {
    /// The tenant's contacts: newest first unless sorted otherwise. `cursor` (a previous
    /// page's `pagination.nextCursor`) continues right after that page, whatever was added
    /// meanwhile.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "super::page_cost(limit.clone(), child_complexity)")]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Search text, tag and group filters")] filter: Option<ContactFilter>,
        #[graphql(desc = "Page number, from 1 (default 1)")] page: Option<i64>,
        #[graphql(desc = "Items per page, 1–100 (default 20)")] limit: Option<i64>,
        #[graphql(desc = "Sort field (default CREATED_AT)")] sort_by: Option<ContactSort>,
        #[graphql(desc = "Sort direction (default DESC)")] sort_order: Option<SortOrder>,
        #[graphql(
            desc = "`pagination.nextCursor` of the previous page: continue right after it (then `page` is ignored)"
        )]
        cursor: Option<String>,
    ) -> Result<ContactPage> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let page = PageRequest::new(page, limit).gql()?;
        let f = filter.unwrap_or_default();
        let q = ContactQuery {
            search: f.search,
            tag: f.tag,
            group_id: f.group_id.map(|g| g.to_string()),
            sort_by: sort_by.map(|s| s.as_str().to_owned()),
            sort_order: sort_order.map(|s| s.as_str().to_owned()),
            cursor,
        };
        contacts::list(app(ctx)?, &p, q, page).await.gql()
    }

    /// One contact, by UUID, `contact_<uuid>` or vendor contact id.
    async fn contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Contact id: a UUID, `contact_<uuid>` or the 24-hex vendor id")] id: ID,
    ) -> Result<ContactOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        contacts::find(app(ctx)?, &p, id.as_str()).await.gql()
    }

    /// Tags in use with their contact counts, most used first.
    #[graphql(complexity = "50 * child_complexity")]
    async fn contact_tags(&self, ctx: &Context<'_>) -> Result<Vec<TagCount>> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        contacts::tags(app(ctx)?, &p).await.gql()
    }

    /// Contact groups by name.
    #[graphql(complexity = "super::page_cost(limit.clone(), child_complexity)")]
    async fn contact_groups(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page number, from 1 (default 1)")] page: Option<i64>,
        #[graphql(desc = "Items per page, 1–100 (default 20)")] limit: Option<i64>,
    ) -> Result<GroupPage> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let page = PageRequest::new(page, limit).gql()?;
        contacts::list_groups(app(ctx)?, &p, page).await.gql()
    }

    /// One contact group.
    async fn contact_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Group id")] id: ID,
    ) -> Result<GroupOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        contacts::get_group(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()
    }
}

/// Contact mutations.
#[derive(Default)]
pub struct ContactMutations;

#[Object]
impl ContactMutations {
    /// Add a contact (the number must be new in the tenant).
    async fn create_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact; `phone` is required")] input: ContactCreateInput,
    ) -> Result<ContactOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let new = NewContact {
            phone: Some(input.phone),
            name: input.name,
            email: input.email,
            country_code: input.country_code,
            tags: input.tags,
            labels: input.labels,
            params: input.params,
            source: input.source,
            opt_in: input.opt_in,
            is_blocked: input.is_blocked,
        };
        contacts::create(app(ctx)?, &p, new, Family::Contacts)
            .await
            .gql()
    }

    /// Change some fields of a contact (by UUID, `contact_<uuid>` or vendor contact id).
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Contact id: a UUID, `contact_<uuid>` or the 24-hex vendor id")] id: ID,
        #[graphql(desc = "Fields to change; absent fields stay, `null` clears")]
        input: ContactUpdateInput,
    ) -> Result<ContactOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let update = UpdateContactInput {
            phone: input.phone,
            name: maybe(input.name),
            email: maybe(input.email),
            country_code: maybe(input.country_code),
            tags: input.tags,
            labels: input.labels,
            params: input.params,
            source: input.source,
            opt_in: input.opt_in,
            is_blocked: input.is_blocked,
        };
        contacts::update_by_ref(app(ctx)?, &p, id.as_str(), update, Family::Contacts)
            .await
            .gql()
    }

    /// Delete a contact (by UUID, `contact_<uuid>` or vendor contact id).
    async fn delete_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Contact id: a UUID, `contact_<uuid>` or the 24-hex vendor id")] id: ID,
    ) -> Result<bool> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        contacts::delete_by_ref(app(ctx)?, &p, id.as_str())
            .await
            .gql()?;
        Ok(true)
    }

    /// Import up to 1000 contacts; invalid and duplicate ones are skipped and listed.
    async fn import_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Contacts to create, 1 to 1,000; each is created or listed in `errors`")]
        contacts: Vec<ContactImportInput>,
    ) -> Result<BulkOutcome> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let rows = contacts
            .into_iter()
            .map(|c| BulkContactInput {
                user_number: c.phone,
                user_name: c.name,
                email: c.email,
                country_code: c.country_code,
                tags: c.tags,
                params: c.params,
            })
            .collect();
        contacts::bulk_import(app(ctx)?, &p, rows).await.gql()
    }

    /// Create a contact group.
    async fn create_contact_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Group name, unique in your tenant")] name: String,
        #[graphql(desc = "What the group is for")] description: Option<String>,
    ) -> Result<GroupOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let input = CreateGroupInput {
            name: Some(name),
            description,
        };
        contacts::create_group(app(ctx)?, &p, input).await.gql()
    }

    /// Rename a group or change its description (`null` clears it).
    async fn update_contact_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Group id")] id: ID,
        #[graphql(desc = "New name, unique in your tenant")] name: Option<String>,
        #[graphql(desc = "What the group is for")] description: MaybeUndefined<String>,
    ) -> Result<GroupOutput> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let input = UpdateGroupInput {
            name,
            description: maybe(description),
        };
        contacts::update_group(app(ctx)?, &p, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    /// Delete a contact group (its contacts stay).
    async fn delete_contact_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Group id")] id: ID,
    ) -> Result<bool> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        contacts::delete_group(app(ctx)?, &p, parse_id(&id, "id")?)
            .await
            .gql()?;
        Ok(true)
    }

    /// Add contacts to a group.
    async fn add_contacts_to_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Group id")] group_id: ID,
        #[graphql(desc = "Contact ids, at most 1,000")] contact_ids: Vec<ID>,
    ) -> Result<MembersOutcome> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let input = MembersInput {
            contact_ids: Some(contact_ids.into_iter().map(|i| i.to_string()).collect()),
        };
        contacts::add_members(app(ctx)?, &p, parse_id(&group_id, "groupId")?, input)
            .await
            .gql()
    }

    /// Remove contacts from a group.
    async fn remove_contacts_from_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Group id")] group_id: ID,
        #[graphql(desc = "Contact ids, at most 1,000")] contact_ids: Vec<ID>,
    ) -> Result<MembersOutcome> {
        let p = ctx.data::<GqlAuth>()?.require().gql()?;
        let input = MembersInput {
            contact_ids: Some(contact_ids.into_iter().map(|i| i.to_string()).collect()),
        };
        contacts::remove_members(app(ctx)?, &p, parse_id(&group_id, "groupId")?, input)
            .await
            .gql()
    }
}
