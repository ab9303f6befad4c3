//! The REST adapter: thin axum handlers over the service layer, declared once with utoipa so
//! the router and the OpenAPI document cannot disagree.

#[macro_use]
mod twin;

pub mod api_keys;
pub mod auth;
pub mod conn;
pub mod contact_groups;
pub mod contacts;
pub mod envelope;
pub mod extract;
pub mod layers;
pub mod media_form;
pub mod messages;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod sandbox;
pub mod sessions;
pub mod vendor_contacts;
pub mod webhooks;

use axum::{Router, extract::DefaultBodyLimit, http::HeaderName};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use utoipa_swagger_ui::SwaggerUi;

use crate::state::AppState;

/// Every documented REST route.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(api_keys::whoami))
        .routes(routes!(sessions::list, sessions::create))
        .routes(routes!(sessions::get, sessions::rename, sessions::delete))
        .routes(routes!(sessions::connect))
        .routes(routes!(sessions::status))
        .routes(routes!(sessions::disconnect))
        .routes(routes!(sessions::logout))
        .routes(routes!(sessions::qr))
        .routes(routes!(sessions::pair_code))
        .routes(routes!(sessions::check_number))
        .routes(routes!(sessions::external_list, sessions::external_create))
        .routes(routes!(
            sessions::external_get,
            sessions::external_rename,
            sessions::external_delete
        ))
        .routes(routes!(sessions::external_connect))
        .routes(routes!(sessions::external_status))
        .routes(routes!(sessions::external_disconnect))
        .routes(routes!(sessions::external_logout))
        .routes(routes!(sessions::external_qr))
        .routes(routes!(sessions::external_pair_code))
        .routes(routes!(sessions::external_check_number))
        .routes(routes!(sandbox::scan))
        .routes(routes!(sandbox::inbound))
        .routes(routes!(messages::send_text))
        .routes(routes!(messages::external_send_text))
        .routes(routes!(messages::send_location))
        .routes(routes!(messages::external_send_location))
        .merge(media_routes())
        .routes(routes!(messages::list))
        .routes(routes!(messages::get))
        .routes(routes!(messages::external_get))
        .routes(routes!(messages::media))
        .routes(routes!(contacts::list, contacts::create))
        .routes(routes!(contacts::external_list))
        .routes(routes!(contacts::tags))
        .routes(routes!(contacts::export))
        .routes(routes!(contacts::get, contacts::update, contacts::delete))
        .routes(routes!(contact_groups::list, contact_groups::create))
        .routes(routes!(
            contact_groups::get,
            contact_groups::update,
            contact_groups::delete
        ))
        .routes(routes!(
            contact_groups::add_members,
            contact_groups::remove_members
        ))
        .routes(routes!(vendor_contacts::list, vendor_contacts::create))
        .routes(routes!(vendor_contacts::bulk))
        .routes(routes!(
            vendor_contacts::get,
            vendor_contacts::update,
            vendor_contacts::delete
        ))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::secret))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::retry))
        .routes(routes!(webhooks::test))
        .routes(routes!(webhooks::external_list, webhooks::external_create))
        .routes(routes!(
            webhooks::external_get,
            webhooks::external_update,
            webhooks::external_delete
        ))
        .routes(routes!(webhooks::external_secret))
        .routes(routes!(webhooks::external_rotate_secret))
        .routes(routes!(webhooks::external_deliveries))
        .routes(routes!(webhooks::external_retry))
        .routes(routes!(webhooks::external_test))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
}

/// Upload routes: no blanket body limit (the service stops each file at its kind's limit as
/// it streams in, form text fields are capped, and a CSV import stops at 100 MiB).
fn media_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(messages::send_image))
        .routes(routes!(messages::external_send_image))
        .routes(routes!(messages::send_document))
        .routes(routes!(messages::external_send_document))
        .routes(routes!(messages::send_video))
        .routes(routes!(messages::external_send_video))
        .routes(routes!(messages::send_audio))
        .routes(routes!(messages::external_send_audio))
        .routes(routes!(contacts::import))
        .layer(DefaultBodyLimit::disable())
}

/// The OpenAPI document, as served at `/openapi.json` and committed at `openapi/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::finish(api_router().split_for_parts().1)
}

/// The OpenAPI document as pretty JSON with a trailing newline.
pub fn openapi_json() -> String {
    let mut s = openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// The complete application router: REST, GraphQL, docs, and the cross-cutting layers.
pub fn router(state: AppState) -> Router {
    let (rest, spec) = api_router().split_for_parts();
    let spec = openapi::finish(spec);
    let request_id = HeaderName::from_static("x-request-id");
    let mut app = rest
        .fallback(middleware::not_found)
        .with_state(state.clone())
        .merge(crate::graphql::router(state.clone()))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", spec));
    // Routes providers serve themselves (webhooks of their upstream), outside the spec.
    for provider in state.providers.all() {
        let host = crate::service::sessions::provider_host(&state);
        if let Some(routes) = provider.routes(host) {
            app = app.nest(&format!("/providers/{}", provider.kind().as_str()), routes);
        }
    }
    let app = app
        .layer(DefaultBodyLimit::max(state.cfg.body_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            middleware::panicked,
        ))
        .layer(axum::middleware::from_fn(middleware::ensure_envelope))
        .layer(axum::middleware::from_fn(middleware::rate_headers))
        .layer(axum::middleware::from_fn(layers::caching))
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(axum::middleware::from_fn(middleware::log_requests));
    let app = match layers::cors(&state.cfg.http.cors_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    app.layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
