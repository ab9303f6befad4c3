//! Worker-only lookups of sessions across tenants, for provider routes: a Cloud API webhook
//! names a phone number id, not a tenant.

use entity::wa_session::{self, Column as C};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

/// Most sessions one lookup returns.
const LIMIT: u64 = 100;

/// Sessions of `provider` whose public settings (JSON text) contain `fragment`. A coarse
/// filter: the caller checks the setting itself.
pub async fn by_provider_setting(
    db: &impl ConnectionTrait,
    provider: &str,
    fragment: &str,
) -> Result<Vec<wa_session::Model>, DbErr> {
    wa_session::Entity::find()
        .filter(C::Provider.eq(provider))
        .filter(C::Settings.contains(fragment))
        .limit(LIMIT)
        .all(db)
        .await
}
