//! The `wagate` command line.

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::{
    config::{Config, ConfigArgs},
    db, graphql, http, startup, telemetry,
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

#[derive(Subcommand, Clone, Copy)]
enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Print the GraphQL SDL.
    Schema,
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
