//! `twin!`: declares a JWT route and its API-key twin under `/api/external` from one
//! description and one body. Both call the same service function, which decides what the
//! caller may do (an API key without the needed scope gets 403 there), so the two routes
//! cannot drift apart.

/// Declares `$user` (bearer JWT at `$path`, operation id `$op`) and `$ext` (`X-API-Key` at
/// `$ext_path`, operation id `$op` + `WithApiKey`).
///
/// ```ignore
/// twin! {
///     /// Doc comment (becomes the operation description).
///     get "/api/things/{id}" | "/api/external/things/{id}", tag = "things", op = "getThing",
///     params(("id" = Uuid, Path, description = "Thing UUID")),
///     responses((status = 200, description = "The thing", body = Envelope<Thing>),),
///     get_thing | external_get_thing (state, p, Path(id): Path<Uuid>) {
///         Ok(envelope::ok(things::get(&state, &p, id).await?))
///     }
/// }
/// ```
macro_rules! twin {
    (
        $(#[$doc:meta])*
        $method:ident $path:literal | $ext_path:literal, tag = $tag:literal, op = $op:literal,
        $(params($($params:tt)*),)?
        $(request_body = $body_ty:ty,)?
        responses($($resp:tt)*),
        $user:ident | $ext:ident ($state:ident, $p:ident $($args:tt)*) $body:block
    ) => {
        $(#[$doc])*
        #[utoipa::path($method, path = $path, operation_id = $op, tag = $tag, security(("bearerAuth" = [])),
            $(params($($params)*),)?
            $(request_body = $body_ty,)?
            responses($($resp)*
                (status = 401, description = "Missing or invalid access token", body = $crate::error::ErrorEnvelope),
            ))]
        pub async fn $user(
            axum::extract::State($state): axum::extract::State<$crate::state::AppState>,
            $crate::http::extract::UserAuth($p): $crate::http::extract::UserAuth
            $($args)*
        ) -> $crate::error::AppResult<axum::response::Response> $body

        $(#[$doc])*
        ///
        /// With an API key: needs the scope listed for this operation in the README.
        #[utoipa::path($method, path = $ext_path, operation_id = concat!($op, "WithApiKey"), tag = $tag, security(("apiKeyAuth" = [])),
            $(params($($params)*),)?
            $(request_body = $body_ty,)?
            responses($($resp)*
                (status = 401, description = "Missing, unknown or revoked API key", body = $crate::error::ErrorEnvelope),
                (status = 403, description = "The API key lacks the scope this operation needs", body = $crate::error::ErrorEnvelope),
            ))]
        pub async fn $ext(
            axum::extract::State($state): axum::extract::State<$crate::state::AppState>,
            $crate::http::extract::KeyAuth($p): $crate::http::extract::KeyAuth
            $($args)*
        ) -> $crate::error::AppResult<axum::response::Response> $body
    };
}
