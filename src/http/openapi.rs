//! OpenAPI document metadata: security schemes and shared components.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::error::ErrorEnvelope;

/// Title, tags and components; paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "wagate",
        description = "Self-hostable WhatsApp gateway. Successful responses use `{success:true, data, message?}`; failures use `{success:false, code, message, errors?}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
        contact(name = "wagate maintainers")
    ),
    servers((url = "/", description = "This gateway")),
    components(schemas(
        ErrorEnvelope,
        crate::service::webhooks::DeliveryState,
        crate::service::contacts::ContactSort,
        crate::service::contacts::SortOrder,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Sign-up, sign-in and tokens"),
        (name = "api-keys", description = "API keys for server-to-server integrations"),
        (name = "sessions", description = "WhatsApp sessions: create, connect with a QR code, status, disconnect"),
        (name = "messages", description = "Send text, media and locations through the durable outbox; delivery status; inbound messages; media download"),
        (name = "contacts", description = "The contact directory: search, CRUD, tags, CSV import and export"),
        (name = "contact-groups", description = "Contact groups and their members"),
        (name = "whatsapp-contacts", description = "The same directory in the second vendor's API shape (`{success:false, error}` errors); JWT or API key"),
        (name = "webhooks", description = "Signed, retried delivery of events to your endpoints, with a delivery log"),
        (name = "sandbox", description = "Simulator controls for sandbox sessions"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Access token from /api/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKeyAuth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "API key from POST /api/external/api-keys",
            ))),
        );
    }
}

/// Final touches on the generated document, as JSON:
/// - an inline schema identical to a named component becomes a `$ref` to it (utoipa inlines
///   the `data` of generic envelopes, which would give clients a twin type per envelope);
/// - an operation whose doc comment is one paragraph gets it as `description` too (utoipa
///   puts the first paragraph in `summary` only);
/// - every schema property has a description (see [`describe_properties`]).
pub fn finish(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut v) = serde_json::to_value(&doc) else {
        return doc;
    };
    let components: Vec<(String, serde_json::Value)> = v["components"]["schemas"]
        .as_object()
        .map(|m| m.iter().map(|(k, s)| (k.clone(), s.clone())).collect())
        .unwrap_or_default();
    if let Some(schemas) = v["components"]["schemas"].as_object_mut() {
        for (name, schema) in schemas.iter_mut() {
            for_children(schema, &mut |child| refer(child, &components, Some(name)));
            describe_properties(schema);
        }
    }
    if let Some(paths) = v["paths"].as_object_mut() {
        for item in paths.values_mut() {
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                for_children(op, &mut |child| refer(child, &components, None));
                if op.get("description").is_none()
                    && let Some(summary) = op.get("summary").cloned()
                {
                    op["description"] = summary;
                }
            }
        }
    }
    serde_json::from_value(v).unwrap_or(doc)
}

/// Replaces `node` by a `$ref` when it equals a component other than `own`; otherwise looks
/// further down.
fn refer(
    node: &mut serde_json::Value,
    components: &[(String, serde_json::Value)],
    own: Option<&String>,
) {
    if ["properties", "enum", "allOf", "oneOf", "anyOf"]
        .iter()
        .any(|k| node.get(k).is_some())
        && let Some((name, _)) = components
            .iter()
            .find(|(name, schema)| Some(name) != own && schema == node)
    {
        *node = serde_json::json!({"$ref": format!("#/components/schemas/{name}")});
        return;
    }
    for_children(node, &mut |child| refer(child, components, own));
}

/// Gives each property of an object schema a description: a nullable `$ref` (utoipa writes
/// the field's doc comment inside the `oneOf`) gets it hoisted to the property; an envelope's
/// `data` says it is the call's result.
fn describe_properties(schema: &mut serde_json::Value) {
    let Some(props) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (name, prop) in props.iter_mut() {
        if prop.get("description").is_some() {
            continue;
        }
        let hoisted = prop
            .get("oneOf")
            .and_then(|o| o.as_array())
            .and_then(|items| items.iter().find_map(|i| i.get("description").cloned()));
        let description = match hoisted {
            Some(d) => d,
            None if name == "data" => {
                serde_json::Value::from("The result of the call (see the schema for its fields).")
            }
            None => continue,
        };
        prop["description"] = description;
    }
}

/// Calls `f` on every direct child value of `node`.
fn for_children(node: &mut serde_json::Value, f: &mut dyn FnMut(&mut serde_json::Value)) {
    match node {
        serde_json::Value::Object(m) => m.values_mut().for_each(f),
        serde_json::Value::Array(a) => a.iter_mut().for_each(f),
        _ => {}
    }
}
