//! wagate's schema migrations. They run at gateway start (`wagate serve` / `wagate migrate`)
//! and can also run on their own: `cargo run -p migration -- up`.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_foundation;
mod m20261122_000002_sessions;
mod m20261122_000003_messages;
mod m20261122_000004_contacts;
mod m20261122_000005_webhooks;
mod m20261127_000006_api_key_scopes;
mod m20261128_000007_device_store;
mod m20261128_000009_session_runtime;
mod m20261128_000010_chat_order;
mod m20261128_000011_chat_leases;
mod m20261206_000012_quoted_messages;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_foundation::Migration),
            Box::new(m20261122_000002_sessions::Migration),
            Box::new(m20261122_000003_messages::Migration),
            Box::new(m20261122_000004_contacts::Migration),
            Box::new(m20261122_000005_webhooks::Migration),
            Box::new(m20261127_000006_api_key_scopes::Migration),
            Box::new(m20261128_000007_device_store::Migration),
            Box::new(m20261128_000009_session_runtime::Migration),
            Box::new(m20261128_000010_chat_order::Migration),
            Box::new(m20261128_000011_chat_leases::Migration),
            Box::new(m20261206_000012_quoted_messages::Migration),
        ]
    }
}
