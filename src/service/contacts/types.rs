//! Contact inputs and outputs, shared by both REST families and GraphQL.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A contact as the first contacts API and GraphQL show it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ContactOutput {
    /// Contact id.
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
    /// 24 hex characters: the id the second contacts API also accepts.
    pub vendor_contact_id: String,
    /// International number as digits without `+` (`919876543210`).
    pub phone: String,
    /// The same number in E.164 (`+919876543210`).
    #[serde(rename = "phoneE164")]
    #[graphql(name = "phoneE164")]
    pub phone_e164: String,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// ISO 3166-1 alpha-2 country, derived from the number unless given.
    pub country_code: Option<String>,
    /// Tags, for filters and campaigns.
    pub tags: Vec<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Custom key-value parameters (a JSON object).
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// Where the contact came from: `api`, `import`, or what the client set.
    pub source: String,
    /// Whether the contact opted in to WhatsApp messages.
    pub opt_in: bool,
    /// Whether the contact is blocked.
    pub is_blocked: bool,
    /// Last message sent to or received from the number.
    pub last_message_at: Option<DateTime<Utc>>,
    /// Conversations with the number (a new one starts after 24 h of silence).
    pub conversation_count: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a new contact carries (both APIs map their own field names onto it).
#[derive(Clone, Debug, Default)]
pub struct NewContact {
    /// Phone number in any international format.
    pub phone: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// ISO country; derived from the number when absent.
    pub country_code: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Labels.
    pub labels: Option<Vec<String>>,
    /// Custom parameters (must be a JSON object).
    pub params: Option<serde_json::Value>,
    /// Source; `api` when absent.
    pub source: Option<String>,
    /// Opt-in; `false` when absent.
    pub opt_in: Option<bool>,
    /// Blocked; `false` when absent.
    pub is_blocked: Option<bool>,
}

/// `POST /api/contacts`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateContactInput {
    /// International phone number, e.g. `919876543210` or `+91 98765 43210`.
    #[schema(required = true)]
    pub phone: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Opt-in to WhatsApp messages (default false).
    pub opt_in: Option<bool>,
    /// ISO 3166-1 alpha-2; derived from the number when absent.
    pub country_code: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Labels.
    pub labels: Option<Vec<String>>,
    /// Custom parameters (a JSON object).
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
    /// Source (default `api`).
    pub source: Option<String>,
    /// Blocked (default false).
    pub is_blocked: Option<bool>,
}

impl From<CreateContactInput> for NewContact {
    fn from(i: CreateContactInput) -> Self {
        NewContact {
            phone: i.phone,
            name: i.name,
            email: i.email,
            country_code: i.country_code,
            tags: i.tags,
            labels: i.labels,
            params: i.params,
            source: i.source,
            opt_in: i.opt_in,
            is_blocked: i.is_blocked,
        }
    }
}

/// Deserialises a field that may be absent (outer `None`), `null` (`Some(None)`) or a value.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A partial update: absent fields stay, `null` clears the nullable ones.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateContactInput {
    /// New phone number (must stay unique in the tenant).
    pub phone: Option<String>,
    /// Display name (`null` clears).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// Email (`null` clears).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// ISO country (`null` derives it from the number again).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub country_code: Option<Option<String>>,
    /// Replaces all tags.
    pub tags: Option<Vec<String>>,
    /// Replaces all labels.
    pub labels: Option<Vec<String>>,
    /// Replaces all custom parameters.
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
    /// Source.
    pub source: Option<String>,
    /// Opt-in.
    pub opt_in: Option<bool>,
    /// Blocked.
    pub is_blocked: Option<bool>,
}

impl UpdateContactInput {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.phone.is_none()
            && self.name.is_none()
            && self.email.is_none()
            && self.country_code.is_none()
            && self.tags.is_none()
            && self.labels.is_none()
            && self.params.is_none()
            && self.source.is_none()
            && self.opt_in.is_none()
            && self.is_blocked.is_none()
    }
}

/// Sort field of a contact list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, Enum)]
#[serde(rename_all = "snake_case")]
pub enum ContactSort {
    /// Creation time (default).
    #[default]
    CreatedAt,
    /// Name (contacts without one last).
    Name,
    /// Last message time (contacts without messages last).
    LastMessageAt,
}

impl ContactSort {
    /// The query-string name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::Name => "name",
            Self::LastMessageAt => "last_message_at",
        }
    }

    /// Accepts `created_at`/`createdAt`, `name`, `last_message_at`/`lastMessageAt`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "").as_str() {
            "createdat" => Some(Self::CreatedAt),
            "name" => Some(Self::Name),
            "lastmessageat" => Some(Self::LastMessageAt),
            _ => None,
        }
    }
}

/// Sort direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, Enum)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending.
    Asc,
    /// Descending (default).
    #[default]
    Desc,
}

impl SortOrder {
    /// The query-string name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }

    /// Accepts `asc` or `desc`, any case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "asc" => Some(Self::Asc),
            "desc" => Some(Self::Desc),
            _ => None,
        }
    }
}

/// Filters of a contact list, as given (validated by the service).
#[derive(Clone, Debug, Default)]
pub struct ContactQuery {
    /// Matches name, email or phone digits (substring, any case).
    pub search: Option<String>,
    /// Only contacts with this tag.
    pub tag: Option<String>,
    /// Only members of this group.
    pub group_id: Option<String>,
    /// Sort field name.
    pub sort_by: Option<String>,
    /// `asc` or `desc`.
    pub sort_order: Option<String>,
    /// `nextCursor` of the previous page: continue after its last row (instead of `page`).
    pub cursor: Option<String>,
}

/// A page of contacts.
#[derive(Clone, Debug, Serialize, ToSchema, SimpleObject)]
pub struct ContactPage {
    /// The contacts.
    pub data: Vec<ContactOutput>,
    /// Paging.
    pub pagination: crate::service::pagination::Pagination,
}

/// A tag and how many contacts carry it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct TagCount {
    /// The tag.
    pub tag: String,
    /// Contacts with it.
    pub count: u64,
}

/// One contact of a bulk import, in the second vendor's field names.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkContactInput {
    /// Phone number (E.164).
    #[schema(required = true)]
    pub user_number: Option<String>,
    /// Display name.
    pub user_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// ISO country.
    pub country_code: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Custom parameters.
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
}

impl From<BulkContactInput> for NewContact {
    fn from(i: BulkContactInput) -> Self {
        NewContact {
            phone: i.user_number,
            name: i.user_name,
            email: i.email,
            country_code: i.country_code,
            tags: i.tags,
            params: i.params,
            ..NewContact::default()
        }
    }
}

/// A row of a bulk import that was not imported.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct BulkError {
    /// 0-based position in the request.
    pub index: u64,
    /// The phone as given.
    pub phone: Option<String>,
    /// Why.
    pub error: String,
}

/// A contact created by a bulk import.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct BulkCreated {
    /// Contact id.
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
    /// E.164 number.
    pub phone: String,
    /// Always `created`.
    pub status: String,
}

/// The outcome of a bulk import.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct BulkOutcome {
    /// Contacts created.
    pub imported: u64,
    /// Rows not imported (invalid or duplicate).
    pub skipped: u64,
    /// Why each skipped row was skipped.
    pub errors: Vec<BulkError>,
    /// The created contacts.
    pub contacts: Vec<BulkCreated>,
}

/// A CSV row that was not imported.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, SimpleObject)]
pub struct ImportRowError {
    /// 1-based line of the file (the header is line 1).
    pub line: u64,
    /// The phone as given.
    pub phone: Option<String>,
    /// Why.
    pub error: String,
}

/// The outcome of a CSV import.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ImportOutcome {
    /// Contacts created.
    pub imported: u64,
    /// Rows not imported (invalid, or a number already in the directory or earlier in the file).
    pub skipped: u64,
    /// The first row errors, with line numbers (at most `WAGATE_IMPORT_MAX_ERRORS`, 100).
    pub errors: Vec<ImportRowError>,
    /// True when more rows failed than `errors` lists.
    pub errors_truncated: bool,
}
