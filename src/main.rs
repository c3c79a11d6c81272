//! The `slotsync` command: `serve` (default), `migrate`, `openapi`, `emulator`, `demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use slotsync::app::Application;
use slotsync::config::Settings;
use slotsync::{api, store, telemetry};

/// Two-way sync between your time slots and Google Calendar.
#[derive(Parser)]
#[command(name = "slotsync", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Settings for `serve`, used when no subcommand is given.
    #[command(flatten)]
    serve: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default): migrates the database, then serves the API,
    /// Swagger UI at /docs and the spec at /openapi.json.
    Serve(Box<Settings>),
    /// Bring the database schema up to date, then exit.
    Migrate(MigrateArgs),
    /// Print the OpenAPI spec (or write it to a file).
    Openapi(OpenapiArgs),
    /// Run the local Google emulator (OAuth 2.0 + Calendar v3 + push notifications) for
    /// trying slotsync without a Google project; see docs/emulator.md. With a subcommand,
    /// act as a Google user on a running emulator instead.
    Emulator(Box<EmulatorCommand>),
    /// Try two-way sync in one command: the service and a Google emulator, a demo user
    /// connected through the real OAuth flow, and commands to paste. Runs until Ctrl-C.
    Demo(slotsync::demo::DemoArgs),
    /// Receive slotsync's outbound webhooks: verify each delivery's signature and print
    /// it. Pass the endpoint's `--secret`, or a user's `--token` to register the receiver
    /// as one of that user's endpoints for as long as it runs. Runs until Ctrl-C.
    WebhookListen(slotsync::demo::receiver::WebhookListenArgs),
}

/// `slotsync emulator [OPTIONS]` runs one; `slotsync emulator list|create|edit|delete|split`
/// acts on a running one.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct EmulatorCommand {
    #[command(subcommand)]
    google_side: Option<GoogleSide>,

    /// Options for running the emulator, used when no subcommand is given.
    #[command(flatten)]
    run: slotsync::emulator::EmulatorArgs,
}

/// What `slotsync emulator` can do on a running emulator, as the Google user.
#[derive(Subcommand)]
enum GoogleSide {
    #[command(flatten)]
    Events(slotsync::demo::GoogleSideCommand),
    /// Split a recurring series at one occurrence ("this and following" in Google
    /// Calendar): the series ends before it, a new series `<id>_R<start>` starts there.
    Split(slotsync::emulator::SplitArgs),
}

#[derive(Args)]
struct MigrateArgs {
    /// Database URL: SQLite (`sqlite://file.db?mode=rwc`) or PostgreSQL (`postgres://…`).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://slotsync.db?mode=rwc")]
    database_url: String,
}

#[derive(Args)]
struct OpenapiArgs {
    /// Write the spec to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    dotenvy::dotenv().ok();
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(settings)) => serve(*settings).await,
        Some(Command::Migrate(args)) => migrate(args).await,
        Some(Command::Openapi(args)) => openapi(args),
        Some(Command::Emulator(emulator)) => match *emulator {
            EmulatorCommand {
                google_side: Some(GoogleSide::Events(command)),
                ..
            } => slotsync::demo::google_side::run(command).await,
            EmulatorCommand {
                google_side: Some(GoogleSide::Split(args)),
                ..
            } => slotsync::emulator::run_split(args).await,
            EmulatorCommand { run, .. } => {
                telemetry::init("pretty");
                slotsync::emulator::run_cli(run).await
            }
        },
        Some(Command::Demo(args)) => slotsync::demo::run(args, shutdown_signal()).await,
        Some(Command::WebhookListen(args)) => slotsync::demo::receiver::run(args, shutdown_signal()).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slotsync: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    telemetry::init(&settings.log_format);
    let app = Application::build(settings).await?;
    let addr = app.addr();
    tracing::info!("slotsync listening on http://{addr} — Swagger UI at http://{addr}/docs");
    app.run_until_stopped(shutdown_signal()).await?;
    tracing::info!("slotsync stopped");
    Ok(())
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    telemetry::init("pretty");
    let db = store::connect(&args.database_url).await?;
    store::migrate(&db).await?;
    println!("database is up to date");
    Ok(())
}

fn openapi(args: OpenapiArgs) -> anyhow::Result<()> {
    let spec = api::spec_json();
    match args.out {
        Some(path) => {
            std::fs::write(&path, format!("{spec}\n"))?;
            eprintln!("wrote {}", path.display());
        }
        None => println!("{spec}"),
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
