//! Sessions recently seen connected, so the send path can skip a database read.

use uuid::Uuid;

use crate::domain::ids::TenantId;

/// Sessions recently seen connected, so a burst of sends does not read the session row for
/// every message. An entry lives [`CONNECTED_FRESHNESS`]; any status change on this instance
/// drops it at once. A message accepted in the short window after a disconnect elsewhere is
/// not lost: it waits in the outbox like any message whose session dropped after queueing.
#[derive(Default)]
pub struct ConnectedCache(
    std::sync::Mutex<std::collections::HashMap<Uuid, (TenantId, std::time::Instant)>>,
);

/// How long a "connected" sighting is trusted.
pub const CONNECTED_FRESHNESS: std::time::Duration = std::time::Duration::from_millis(250);

impl ConnectedCache {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, (TenantId, std::time::Instant)>>
    {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when the tenant's session was seen connected within the freshness window.
    pub fn recently(&self, tenant: TenantId, session: Uuid) -> bool {
        self.lock()
            .get(&session)
            .is_some_and(|(t, at)| *t == tenant && at.elapsed() < CONNECTED_FRESHNESS)
    }

    /// Records that the tenant's session is connected now.
    pub fn saw(&self, tenant: TenantId, session: Uuid) {
        let mut map = self.lock();
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| at.elapsed() < CONNECTED_FRESHNESS);
        }
        map.insert(session, (tenant, std::time::Instant::now()));
    }

    /// Drops a session (its status changed).
    pub fn forget(&self, session: Uuid) {
        self.lock().remove(&session);
    }
}
