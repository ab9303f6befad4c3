//! A contact in a tenant's directory, shared by both contact APIs and GraphQL.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// 24 lowercase hex characters, assigned at creation (the second vendor's id).
    pub vendor_contact_id: String,
    /// E.164 with `+`; unique per tenant.
    pub phone: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country_code: Option<String>,
    /// JSON array of strings (mirrored row by row in `contact_tags` for filters and counts).
    pub tags: String,
    /// JSON array of strings.
    pub labels: String,
    /// JSON object of custom parameters.
    pub params: String,
    /// Where the contact came from (`api`, `import`, `manual`, ...).
    pub source: String,
    pub opt_in: bool,
    pub is_blocked: bool,
    pub last_message_at: Option<DateTimeUtc>,
    pub conversation_count: i32,
    /// Lower-cased name, email and phone digits: what search matches (trigram-indexed).
    pub search: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
