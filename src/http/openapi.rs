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
        license(name = "Apache-2.0")
    ),
    components(schemas(ErrorEnvelope)),
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
