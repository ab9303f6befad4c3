//! wagate: a self-hostable WhatsApp gateway. REST (axum) and GraphQL (async-graphql) are thin
//! adapters over one service layer backed by sea-orm.

pub mod auth;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod media;
pub mod phone;
pub mod provider;
pub mod qr;
pub mod repo;
pub mod secrets;
pub mod service;
pub mod startup;
pub mod state;
pub mod tasks;
pub mod telemetry;

pub use config::Config;
pub use startup::{build_state, serve, startup};
