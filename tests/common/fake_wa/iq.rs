//! Answers to the IQs a client sends after `<success>`.

use std::sync::Mutex;

use whatsapp_rust::wacore_binary::{Jid, Node, NodeContent, builder::NodeBuilder};

use super::{Companion, NO_PREKEYS, SERVER, State, contact::Upload, server::Session};

/// The server's answer to an IQ (`get` or `set`) from a client: what the client parses, or an
/// empty `result` where that is all it needs.
///
/// - `w:p` `<ping>` (keepalive): a `result` with the server time.
/// - `passive` `<active/>` (the client leaves passive mode after login): a `result`, then
///   `<ib><offline count="0"/></ib>`, the end of an empty offline queue, which the client
///   waits for before it reports itself connected.
/// - `encrypt` with a pre-key `<list>` (upload): remembered for `<count/>`, which answers
///   `<count value=…/>`.
/// - `w:sync:app:state` `<sync>`: every requested collection, empty (no snapshot, no patches).
/// - `w:m` `<media_conn/>`: the fake's media host ([`super::media`]) and its auth token.
/// - `abt` `<props>`: a props hash with no A/B props; `blocklist`: an empty `<list/>`;
///   `privacy`: everyone may see everything.
/// - anything else (digest, usync, unified session, …): an empty `result`.
pub(super) fn reply_to_iq(
    id: &str,
    node: &Node,
    session: &Session,
    state: &Mutex<State>,
) -> Vec<Node> {
    let xmlns = attr(node, "xmlns").unwrap_or_default();
    let children = node.children().unwrap_or_default();
    let first = children.first().map(|c| c.tag.as_ref()).unwrap_or("");
    let result = |content: Vec<Node>| {
        let b = NodeBuilder::new("iq")
            .attr("from", SERVER)
            .attr("type", "result")
            .attr("id", id.to_owned());
        if content.is_empty() {
            b.build()
        } else {
            b.children(content).build()
        }
    };
    let own = session.companion.as_ref().map(Companion::jid);
    match (xmlns.as_str(), first) {
        ("w:p", _) => vec![
            NodeBuilder::new("iq")
                .attr("from", SERVER)
                .attr("type", "result")
                .attr("id", id.to_owned())
                .attr("t", chrono::Utc::now().timestamp().to_string())
                .build(),
        ],
        ("passive", "active") => vec![
            result(Vec::new()),
            NodeBuilder::new("ib")
                .attr("from", SERVER)
                .children([NodeBuilder::new("offline").attr("count", "0").build()])
                .build(),
        ],
        ("encrypt", "count") => {
            let n = own
                .and_then(|jid| state.lock().ok()?.prekeys.get(&jid).copied())
                .unwrap_or(NO_PREKEYS);
            vec![result(vec![
                NodeBuilder::new("count")
                    .attr("value", n.to_string())
                    .build(),
            ])]
        }
        ("encrypt", _) if node.get_optional_child("list").is_some() => {
            let uploaded = node
                .get_optional_child("list")
                .map_or(0, |l| l.get_children_by_tag("key").count());
            if let (Some(jid), Ok(mut state)) = (own, state.lock()) {
                *state.prekeys.entry(jid.clone()).or_default() += uploaded;
                match Upload::parse(node) {
                    Ok(upload) => match state.uploads.get_mut(&jid) {
                        Some(kept) if kept.identity == upload.identity => {
                            kept.one_time.extend(upload.one_time);
                            kept.signed = upload.signed;
                        }
                        _ => {
                            state.uploads.insert(jid, upload);
                        }
                    },
                    Err(e) => eprintln!("[fake-wa] an unreadable pre-key upload: {e:#}"),
                }
            }
            vec![result(Vec::new())]
        }
        ("w:sync:app:state", "sync") => {
            let collections = children[0]
                .get_children_by_tag("collection")
                .filter_map(|c| attr(c, "name"))
                .map(|name| {
                    NodeBuilder::new("collection")
                        .attr("name", name)
                        .attr("version", "0")
                        .build()
                });
            vec![result(vec![
                NodeBuilder::new("sync").children(collections).build(),
            ])]
        }
        ("usync", "usync") => {
            let contacts: Vec<String> = state
                .lock()
                .map(|s| s.contacts.keys().cloned().collect())
                .unwrap_or_default();
            let own_number = session.companion.as_ref().map(|c| c.number.as_str());
            match usync(&children[0], &contacts, own_number) {
                Some(answer) => vec![result(vec![answer])],
                None => vec![result(Vec::new())],
            }
        }
        ("encrypt", "key") => {
            let users = children[0].get_children_by_tag("user").filter_map(|u| {
                let number = attr(u, "jid")?.split(['@', ':']).next()?.to_owned();
                let contact = state.lock().ok()?.contacts.get(&number).cloned()?;
                let mut contact = contact.try_lock().ok()?;
                Some(contact.bundle_node())
            });
            vec![result(vec![
                NodeBuilder::new("list").children(users).build(),
            ])]
        }
        ("abt", "props") => vec![result(vec![
            NodeBuilder::new("props")
                .attr("protocol", "2")
                .attr("hash", "fake-props")
                .attr("refresh", "86400")
                .build(),
        ])],
        ("w:m", "media_conn") => {
            let host = state
                .lock()
                .map(|s| s.media_host.clone())
                .unwrap_or_default();
            vec![result(vec![
                NodeBuilder::new("media_conn")
                    .attr("auth", super::MEDIA_AUTH)
                    .attr("ttl", "3600")
                    .attr("auth_ttl", "3600")
                    .attr("max_buckets", "12")
                    .children([NodeBuilder::new("host")
                        .attr("hostname", host)
                        .attr("type", "primary")
                        .build()])
                    .build(),
            ])]
        }
        ("blocklist", _) => vec![result(vec![NodeBuilder::new("list").build()])],
        ("privacy", "privacy") if attr(node, "type").as_deref() == Some("get") => {
            let categories = [
                ("last", "all"),
                ("online", "all"),
                ("profile", "all"),
                ("status", "all"),
                ("groupadd", "all"),
                ("readreceipts", "all"),
                ("calladd", "all"),
            ]
            .map(|(name, value)| {
                NodeBuilder::new("category")
                    .attr("name", name)
                    .attr("value", value)
                    .build()
            });
            vec![result(vec![
                NodeBuilder::new("privacy").children(categories).build(),
            ])]
        }
        _ => vec![result(Vec::new())],
    }
}

/// The answer to a `<usync>` query about the fake's `contacts` (numbers): `contact` (on
/// WhatsApp: `in` for a contact, `out` for any other number) and `devices` (a contact's
/// device 0; for `own`, the logged-in account's number, an empty list: the client sends no
/// copies to the phone, which plays no Signal); `None` when it asks nothing the fake answers
/// (LIDs, unknown numbers' devices).
fn usync(query: &Node, contacts: &[String], own: Option<&str>) -> Option<Node> {
    let asked = query.get_optional_child("query")?;
    let contact = asked.get_optional_child("contact").is_some();
    let devices = asked.get_optional_child("devices").is_some();
    let users: Vec<Node> = query
        .get_optional_child("list")?
        .get_children_by_tag("user")
        .filter_map(|u| {
            let number = match attr(u, "jid") {
                Some(j) => j.split(['@', ':']).next()?.to_owned(),
                None => text(u.get_optional_child("contact")?)?
                    .trim_start_matches('+')
                    .to_owned(),
            };
            let known = contacts.contains(&number);
            let mut answers = Vec::new();
            if contact {
                answers.push(
                    NodeBuilder::new("contact")
                        .attr("type", if known { "in" } else { "out" })
                        .build(),
                );
            }
            if devices && known {
                answers.push(
                    NodeBuilder::new("devices")
                        .children([NodeBuilder::new("device-list")
                            .children([NodeBuilder::new("device").attr("id", "0").build()])
                            .build()])
                        .build(),
                );
            } else if devices && own == Some(number.as_str()) {
                answers.push(
                    NodeBuilder::new("devices")
                        .children([NodeBuilder::new("device-list").build()])
                        .build(),
                );
            }
            (!answers.is_empty()).then(|| {
                NodeBuilder::new("user")
                    .attr("jid", jid(&format!("{number}@{SERVER}")))
                    .children(answers)
                    .build()
            })
        })
        .collect();
    (!users.is_empty()).then(|| {
        NodeBuilder::new("usync")
            .children([NodeBuilder::new("list").children(users).build()])
            .build()
    })
}

/// A node's content as text.
fn text(node: &Node) -> Option<String> {
    match node.content.as_ref()? {
        NodeContent::String(s) => Some(s.to_string()),
        NodeContent::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

/// The server's `<ack class="receipt">` of a `<receipt>` from the client.
pub(super) fn receipt_ack(receipt: &Node) -> Option<Node> {
    let mut ack = NodeBuilder::new("ack")
        .attr("class", "receipt")
        .attr("id", attr(receipt, "id")?)
        .attr("from", jid(&attr(receipt, "to")?));
    if let Some(kind) = attr(receipt, "type") {
        ack = ack.attr("type", kind);
    }
    Some(ack.build())
}

/// The server's `<ack class="message" id=… from=… t=…/>` of a `<message>` from the client:
/// it took the message for its recipient (`from` is the message's `to`).
pub(super) fn message_ack(message: &Node) -> Option<Node> {
    Some(
        NodeBuilder::new("ack")
            .attr("class", "message")
            .attr("id", attr(message, "id")?)
            .attr("from", jid(&attr(message, "to")?))
            .attr("t", chrono::Utc::now().timestamp().to_string())
            .build(),
    )
}

/// An attribute as a string.
pub(super) fn attr(node: &Node, key: &str) -> Option<String> {
    node.attrs.get(key).map(|v| v.as_str().into_owned())
}

/// A JID attribute value (the binary encoding has a JID form, as WhatsApp sends them).
pub(super) fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}
