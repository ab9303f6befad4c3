//! The documented success envelope `{success:true, data, message?}`.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// `{success: true, data, message?}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always `true`.
    pub success: bool,
    /// The payload.
    pub data: T,
    /// Optional human-readable message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A file in a response body (documentation only).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct BinaryFile(pub Vec<u8>);

/// `{success: true, message}` for actions that return no data.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageEnvelope {
    /// Always `true`.
    pub success: bool,
    /// What happened.
    pub message: String,
}

/// 200 with data.
pub fn ok<T: Serialize>(data: T) -> Response {
    (
        StatusCode::OK,
        Json(Envelope {
            success: true,
            data,
            message: None,
        }),
    )
        .into_response()
}

/// 201 with data.
pub fn created<T: Serialize>(data: T) -> Response {
    (
        StatusCode::CREATED,
        Json(Envelope {
            success: true,
            data,
            message: None,
        }),
    )
        .into_response()
}

/// 202 with data: the work is queued.
pub fn accepted<T: Serialize>(data: T) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(Envelope {
            success: true,
            data,
            message: None,
        }),
    )
        .into_response()
}

/// 200 with only a message.
pub fn message(msg: impl Into<String>) -> Response {
    (
        StatusCode::OK,
        Json(MessageEnvelope {
            success: true,
            message: msg.into(),
        }),
    )
        .into_response()
}

/// `{success: true, data: [...], pagination: {page, limit, total, totalPages}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PagedEnvelope<T> {
    /// Always `true`.
    pub success: bool,
    /// The page's items.
    pub data: Vec<T>,
    /// Paging.
    pub pagination: crate::service::pagination::Pagination,
}

/// 200 with a page of items.
pub fn paged<T: Serialize>(
    data: Vec<T>,
    pagination: crate::service::pagination::Pagination,
) -> Response {
    (
        StatusCode::OK,
        Json(PagedEnvelope {
            success: true,
            data,
            pagination,
        }),
    )
        .into_response()
}

/// 200 with data and a message.
pub fn ok_with_message<T: Serialize>(data: T, msg: impl Into<String>) -> Response {
    (
        StatusCode::OK,
        Json(Envelope {
            success: true,
            data,
            message: Some(msg.into()),
        }),
    )
        .into_response()
}
