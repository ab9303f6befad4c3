//! The `wagate` command line.

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::{
    config::{Config, ConfigArgs},
    db, graphql, http,
    phone::PhoneNumber,
    provider::web::login::{self, LoginCheck},
    startup, telemetry,
};

/// Self-hostable WhatsApp gateway.
#[derive(Parser)]
#[command(name = "wagate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Subcommand, Clone)]
enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Print the GraphQL SDL.
    Schema,
    /// Check the WhatsApp Web provider with a real phone: link a throw-away device (QR code in
    /// the terminal, or a pair code), send a message to the linked number itself, print its
    /// receipts, unlink. Needs internet access to WhatsApp; keeps nothing.
    WebLogin {
        /// Device name the phone shows under Linked devices.
        #[arg(long, default_value = "wagate web-login")]
        session: String,
        /// Link by typing a code on this phone (international format) instead of scanning.
        #[arg(long)]
        pair_phone: Option<String>,
        /// Longest wait for the phone to link, e.g. `3m`.
        #[arg(long, default_value = "3m")]
        wait: humantime::Duration,
    },
}

/// Runs the command line; returns the process exit code.
pub async fn run() -> i32 {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            print!("{}", http::openapi_json());
            0
        }
        Command::Schema => {
            print!("{}", graphql::sdl());
            0
        }
        Command::WebLogin {
            session,
            pair_phone,
            wait,
        } => web_login(cli.config, session, pair_phone, wait.into()).await,
        cmd @ (Command::Serve | Command::Migrate) => {
            let cfg = match Config::from_args(cli.config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("wagate: {e}");
                    return 2;
                }
            };
            telemetry::init(cfg.log_format);
            let result = match cmd {
                Command::Migrate => migrate(cfg).await,
                _ => serve(cfg).await,
            };
            match result {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("wagate: {e:#}");
                    1
                }
            }
        }
    }
}

async fn web_login(
    args: ConfigArgs,
    session: String,
    pair_phone: Option<String>,
    wait: std::time::Duration,
) -> i32 {
    let cfg = match Config::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wagate: {e}");
            return 2;
        }
    };
    if let Err(e) = cfg.check_web_test_build() {
        eprintln!("wagate: {e}");
        return 2;
    }
    let pair_phone = match pair_phone.as_deref().map(PhoneNumber::parse).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("wagate: --pair-phone: {e}");
            return 2;
        }
    };
    let check = LoginCheck {
        device_name: session,
        pair_phone,
        link_within: wait,
        receipts_within: std::time::Duration::from_secs(60),
    };
    match login::run(cfg.web, check).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wagate web-login: {e:#}");
            1
        }
    }
}

async fn migrate(cfg: Config) -> anyhow::Result<()> {
    cfg.ensure_data_dir()?;
    let conn = db::connect(&cfg).await?;
    db::migrate(&conn).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(cfg.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.addr))?;
    startup::startup(cfg, listener, startup::shutdown_signal()).await
}
