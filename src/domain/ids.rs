//! Newtypes for identifiers, so a tenant id can never be passed where a user id belongs.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// The raw UUID.
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// A tenant (customer account).
    TenantId
);
id_type!(
    /// A dashboard user.
    UserId
);
id_type!(
    /// An API key.
    ApiKeyId
);

/// GraphQL shows every id as `ID` (a string holding the UUID), in outputs as in arguments.
pub fn gql_id(id: Uuid) -> async_graphql::ID {
    async_graphql::ID(id.to_string())
}

/// An optional id as a GraphQL `ID`.
pub fn gql_opt_id(id: Option<Uuid>) -> Option<async_graphql::ID> {
    id.map(gql_id)
}

/// [`gql_id`] over an optional list.
pub fn gql_ids(ids: Option<Vec<Uuid>>) -> Option<Vec<async_graphql::ID>> {
    ids.map(|v| v.into_iter().map(gql_id).collect())
}
