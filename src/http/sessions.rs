//! `/api/v1/whatsapp`: WhatsApp sessions (JWT), and their API-key twins under
//! `/api/external/sessions`.

use uuid::Uuid;

use super::{
    envelope::{self, Envelope, MessageEnvelope, PagedEnvelope},
    extract::{PageQuery, Path, Query, ValidJson},
};
use crate::{
    error::ErrorEnvelope,
    service::sessions::{
        self, ConnectOutput, CreateSessionInput, NumberCheckOutput, PairCodeInput, PairCodeOutput,
        QrOutput, RenameSessionInput, SessionOutput, SessionStatusOutput,
    },
};

twin! {
    /// List the tenant's sessions.
    ///
    /// Sessions come oldest first, paged with `page` and `limit` (default 20, at most 100). A user
    /// token, or an API key with the `read_sessions` scope.
    get "/api/v1/whatsapp" | "/api/external/sessions", tag = "sessions", op = "listSessions",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of sessions", body = PagedEnvelope<SessionOutput>),
        (status = 400, description = "Bad page or limit", body = ErrorEnvelope),
    ),
    list | external_list (state, p, Query(q): Query<PageQuery>) {
        let page = sessions::list(&state, &p, q.request()?).await?;
        Ok(envelope::paged(page.data, page.pagination))
    }
}

twin! {
    /// Create a session slot; connect separately to obtain a QR code.
    ///
    /// The session starts `disconnected`. `name` takes 1 to 100 characters; `provider` defaults to
    /// the gateway's `WAGATE_PROVIDER` and must be available on this gateway (400 otherwise). A
    /// user token, or an API key with the `manage_sessions` scope.
    post "/api/v1/whatsapp" | "/api/external/sessions", tag = "sessions", op = "createSession",
    request_body = CreateSessionInput,
    responses(
        (status = 201, description = "Created (`disconnected`)", body = Envelope<SessionOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
    ),
    create | external_create (state, p, ValidJson(input): ValidJson<CreateSessionInput>) {
        Ok(envelope::created(sessions::create(&state, &p, input).await?))
    }
}

twin! {
    /// One session.
    ///
    /// Returns its name, status, paired number, provider, last error and timestamps; a session of
    /// another tenant is 404. A user token, or an API key with the `read_sessions` scope.
    get "/api/v1/whatsapp/{id}" | "/api/external/sessions/{id}", tag = "sessions", op = "getSession",
    params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "The session", body = Envelope<SessionOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ),
    get | external_get (state, p, Path(id): Path<Uuid>) {
        Ok(envelope::ok(sessions::get(&state, &p, id).await?))
    }
}

twin! {
    /// Rename a session.
    ///
    /// Only the display name changes (1 to 100 characters); the connection is not touched. A user
    /// token, or an API key with the `manage_sessions` scope.
    patch "/api/v1/whatsapp/{id}" | "/api/external/sessions/{id}", tag = "sessions", op = "renameSession",
    params(("id" = Uuid, Path, description = "Session UUID")),
    request_body = RenameSessionInput,
    responses(
        (status = 200, description = "Renamed", body = Envelope<SessionOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ),
    rename | external_rename (state, p, Path(id): Path<Uuid>, ValidJson(input): ValidJson<RenameSessionInput>) {
        Ok(envelope::ok(sessions::rename(&state, &p, id, input).await?))
    }
}

twin! {
    /// Log out (if paired) and remove the session.
    ///
    /// Any running connection is stopped, the provider is asked to log out when the session holds a
    /// pairing, and a last `session.status` event (`logged_out`, reason "Session deleted") goes to
    /// webhooks and live subscribers. A user token, or an API key with the `manage_sessions` scope.
    delete "/api/v1/whatsapp/{id}" | "/api/external/sessions/{id}", tag = "sessions", op = "deleteSession",
    params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "Deleted", body = MessageEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ),
    delete | external_delete (state, p, Path(id): Path<Uuid>) {
        sessions::delete(&state, &p, id).await?;
        Ok(envelope::message("Session deleted"))
    }
}

twin! {
    /// Initiate QR code pairing (or restore an earlier pairing without one).
    ///
    /// Allowed from `disconnected`, `logged_out` or `failed` (or an abandoned attempt): the session
    /// moves to `connecting` with a `session.status` event, and the call waits up to 10 seconds for
    /// the provider's first QR code or connection, then answers with the status reached. Later QR
    /// codes arrive as `session.qr` events and at `GET …/{id}/qr`. A user token, or an API key with
    /// the `manage_sessions` scope.
    post "/api/v1/whatsapp/{id}/connect" | "/api/external/sessions/{id}/connect", tag = "sessions", op = "connectSession",
    params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "`qr_pending` with \"Scan QR code in dashboard\", or `connected`", body = Envelope<ConnectOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "Already connected or connecting", body = ErrorEnvelope),
        (status = 502, description = "Provider unavailable", body = ErrorEnvelope),
    ),
    connect | external_connect (state, p, Path(id): Path<Uuid>) {
        Ok(envelope::ok(sessions::connect(&state, &p, id).await?))
    }
}

twin! {
    /// Real-time connection status.
    ///
    /// Returns the session's current status, paired number and `connected` flag; every change is
    /// also published as a `session.status` event. A user token, or an API key with the
    /// `read_sessions` scope.
    get "/api/v1/whatsapp/{id}/status" | "/api/external/sessions/{id}/status", tag = "sessions", op = "getSessionStatus",
    params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "Status", body = Envelope<SessionStatusOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ),
    status | external_status (state, p, Path(id): Path<Uuid>) {
        Ok(envelope::ok(sessions::status(&state, &p, id).await?))
    }
}

twin! {
    /// Disconnect without deleting the session or forgetting its pairing.
    ///
    /// Allowed while `connecting`, `qr_pending` or `connected` (409 otherwise): the connection is
    /// stopped, the session becomes `disconnected` and a `session.status` event is published. A
    /// later connect can restore the pairing without a QR code. A user token, or an API key with
    /// the `manage_sessions` scope.
    post "/api/v1/whatsapp/{id}/disconnect" | "/api/external/sessions/{id}/disconnect", tag = "sessions", op = "disconnectSession",
    params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "Disconnected", body = MessageEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "Not connected", body = ErrorEnvelope),
    ),
    disconnect | external_disconnect (state, p, Path(id): Path<Uuid>) {
        sessions::disconnect(&state, &p, id).await?;
        Ok(envelope::message("Session disconnected"))
    }
}

twin! {
    /// Forget the pairing; the next connect needs a new QR code.
    ///
    /// Allowed while `connecting`, `qr_pending` or `connected`, or while a pairing is stored (409
    /// otherwise). The session becomes `logged_out` without a phone number, the provider is asked
    /// to log out, and a `session.status` event is published. A user token, or an API key with the
    /// `manage_sessions` scope.
    post "/api/v1/whatsapp/{id}/logout" | "/api/external/sessions/{id}/logout", tag = "sessions", op = "logoutSession",
    params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "Logged out", body = Envelope<SessionOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "Not paired", body = ErrorEnvelope),
    ),
    logout | external_logout (state, p, Path(id): Path<Uuid>) {
        Ok(envelope::ok_with_message(sessions::logout(&state, &p, id).await?, "Session logged out"))
    }
}

twin! {
    /// The QR code waiting to be scanned, as payload, SVG and PNG data URL.
    ///
    /// Only while the session is `qr_pending` and the code has not expired (404 otherwise); when a
    /// code expires at `expiresAt` a new one follows, also published as a `session.qr` event. A
    /// user token, or an API key with the `read_sessions` scope.
    get "/api/v1/whatsapp/{id}/qr" | "/api/external/sessions/{id}/qr", tag = "sessions", op = "getSessionQr",
    params(("id" = Uuid, Path, description = "Session UUID")),
    responses(
        (status = 200, description = "Current QR code", body = Envelope<QrOutput>),
        (status = 404, description = "No such session, or no QR pending", body = ErrorEnvelope),
    ),
    qr | external_qr (state, p, Path(id): Path<Uuid>) {
        Ok(envelope::ok(sessions::qr(&state, &p, id).await?))
    }
}

twin! {
    /// Ask for a pairing code: link the phone by typing a code instead of scanning the QR code.
    ///
    /// Allowed while the session is `connecting` or `qr_pending` (409 otherwise), for providers
    /// that pair with codes (400 on `provider` otherwise). `phoneNumber` is the number of the phone
    /// that will type the code (WhatsApp > Linked devices > Link with phone number); the session
    /// then connects as after a scan. The code is also published as a `session.pairCode` event.
    /// A user token, or an API key with the `manage_sessions` scope.
    post "/api/v1/whatsapp/{id}/pair-code" | "/api/external/sessions/{id}/pair-code", tag = "sessions", op = "requestSessionPairCode",
    params(("id" = Uuid, Path, description = "Session UUID")),
    request_body = PairCodeInput,
    responses(
        (status = 200, description = "The code to type on the phone", body = Envelope<PairCodeOutput>),
        (status = 400, description = "Invalid phone number, or the provider does not pair with codes", body = ErrorEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "Not waiting to be paired", body = ErrorEnvelope),
        (status = 502, description = "Provider unavailable", body = ErrorEnvelope),
    ),
    pair_code | external_pair_code (state, p, Path(id): Path<Uuid>, ValidJson(input): ValidJson<PairCodeInput>) {
        Ok(envelope::ok(sessions::request_pair_code(&state, &p, id, input).await?))
    }
}

twin! {
    /// Whether a phone number is on WhatsApp, asked through this session.
    ///
    /// The session must be `connected` (409 otherwise). Answers may come from a cache of recent
    /// checks. A number that is not on WhatsApp is `onWhatsApp: false` with no `jid`; a send to
    /// it fails permanently. A user token, or an API key with the `send_messages` scope.
    get "/api/v1/whatsapp/{id}/check/{phone}" | "/api/external/sessions/{id}/check/{phone}", tag = "sessions", op = "checkSessionNumber",
    params(
        ("id" = Uuid, Path, description = "Session UUID"),
        ("phone" = String, Path, description = "Phone number in international format, with or without `+`"),
    ),
    responses(
        (status = 200, description = "Whether the number is on WhatsApp", body = Envelope<NumberCheckOutput>),
        (status = 400, description = "Not a valid phone number", body = ErrorEnvelope),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
        (status = 409, description = "Session not connected", body = ErrorEnvelope),
        (status = 502, description = "Provider unavailable", body = ErrorEnvelope),
    ),
    check_number | external_check_number (state, p, Path((id, phone)): Path<(Uuid, String)>) {
        Ok(envelope::ok(sessions::check_number(&state, &p, id, &phone).await?))
    }
}
