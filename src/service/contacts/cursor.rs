//! Opaque keyset cursors of contact lists: base64url of `{sort, order, value, id}`. A cursor
//! only continues the list it came from (same sort and order).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ContactSort, SortOrder};
use crate::repo::contact_search::{KeyValue, Keyset};

#[derive(Serialize, Deserialize)]
struct Wire {
    s: ContactSort,
    o: SortOrder,
    v: Option<String>,
    id: Uuid,
}

/// The cursor after `key` in a list sorted by `sort`, `order`.
pub fn encode(key: &Keyset, sort: ContactSort, order: SortOrder) -> String {
    let v = key.value.as_ref().map(|v| match v {
        KeyValue::Time(t) => t.to_rfc3339_opts(SecondsFormat::Nanos, true),
        KeyValue::Text(s) => s.clone(),
    });
    let wire = Wire {
        s: sort,
        o: order,
        v,
        id: key.id,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

/// The key a cursor continues after; it must come from a list with the same sort and order.
pub fn decode(cursor: &str, sort: ContactSort, order: SortOrder) -> Result<Keyset, &'static str> {
    const BAD: &str = "cursor is not a nextCursor of this API";
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| BAD)?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| BAD)?;
    if wire.s != sort || wire.o != order {
        return Err("cursor belongs to a list with another sortBy or sortOrder");
    }
    let value = match (wire.v, sort) {
        (None, ContactSort::CreatedAt) => return Err(BAD),
        (None, _) => None,
        (Some(s), ContactSort::Name) => Some(KeyValue::Text(s)),
        (Some(s), _) => Some(KeyValue::Time(
            DateTime::parse_from_rfc3339(&s)
                .map_err(|_| BAD)?
                .with_timezone(&Utc),
        )),
    };
    Ok(Keyset { value, id: wire.id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_lists() {
        let key = Keyset {
            value: Some(KeyValue::Time(Utc::now())),
            id: Uuid::now_v7(),
        };
        let c = encode(&key, ContactSort::CreatedAt, SortOrder::Desc);
        assert_eq!(
            decode(&c, ContactSort::CreatedAt, SortOrder::Desc).unwrap(),
            key
        );
        assert!(decode(&c, ContactSort::CreatedAt, SortOrder::Asc).is_err());
        assert!(decode(&c, ContactSort::Name, SortOrder::Desc).is_err());
        assert!(decode("nope!", ContactSort::Name, SortOrder::Desc).is_err());
        let none = Keyset {
            value: None,
            id: Uuid::now_v7(),
        };
        let c = encode(&none, ContactSort::Name, SortOrder::Asc);
        assert_eq!(decode(&c, ContactSort::Name, SortOrder::Asc).unwrap(), none);
    }
}
