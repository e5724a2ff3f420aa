//! The `tanhui` command line.

use std::io::BufRead;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::accounts::{service, validate};
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::account::AccountType;
use crate::ledger::signing::PlatformKey;
use crate::startup::{self, Application};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(name = "tanhui", version, about = "Tanhui carbon-inclusive points service", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the HTTP server (the default). Migrations run first.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Re-derive every balance from the transfers and every sealed block from its members; exits
    /// non-zero and lists each mismatch when anything does not add up.
    Verify,
    /// Load a demo world (people with points, a partner of each kind with offers, a data provider)
    /// into an empty database, and print what to try next.
    Demo,
    /// Copy the SQLite database, while the service runs, into a new file at PATH (a consistent snapshot,
    /// `VACUUM INTO`). Refuses an existing file, and PostgreSQL (use pg_dump or pg_basebackup there).
    Backup {
        /// Where the copy goes; must not exist yet.
        path: std::path::PathBuf,
    },
    /// Ask the local server's `/readyz` (the container's health check): exits 0 when it answers 200.
    Healthcheck,
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an administrator account; the password is read as one line from standard input.
    Create {
        /// Mainland mobile number used to sign in.
        #[arg(long)]
        phone: String,
        /// Name shown in the audit log.
        #[arg(long)]
        display_name: String,
        /// Read the password from standard input (required, so it never shows in the process list).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Home region code of the account.
        #[arg(long, default_value = "CN")]
        region_code: String,
        /// The region the administrator governs, with everything under it: `CN` (the default) makes a
        /// national administrator, a province or city code a regional one.
        #[arg(long, default_value = "CN")]
        governs: String,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load().map_err(anyhow::Error::msg)?;
    telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            actix_web::rt::System::new().block_on(async move {
                let app = Application::build(settings).await?;
                app.run_until_stopped().await?;
                tracing::info!("stopped");
                Ok::<_, anyhow::Error>(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let db = startup::open_database(&settings)?;
            println!("database is up to date ({:?})", db.backend());
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify => verify(settings),
        Command::Backup { path } => {
            let copied = crate::db::backup::sqlite_into(&settings.database, &path)?;
            println!("backed up {copied} bytes to {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck => Ok(healthcheck(&settings.server)),
        Command::Demo => {
            let base_url = format!("http://{}:{}", settings.server.host, settings.server.port);
            let state = runtime()?.block_on(startup::build_state(settings, Clock::system()))?;
            match crate::demo::load(&state) {
                Ok(world) => {
                    println!("{}", crate::demo::guide(&world, &base_url));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("demo: {}", e.detail);
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    phone,
                    display_name,
                    password_stdin: _,
                    region_code,
                    governs,
                },
        } => {
            let password = read_password_line()?;
            let reg = validate::validate(validate::RegisterRequest {
                phone,
                password,
                display_name,
                account_type: AccountType::Individual,
                region_code,
                credit_code: None,
            })
            .map_err(|errors| anyhow::anyhow!("{}", crate::error::ApiError::validation(errors).detail))?;
            let state = runtime()?.block_on(startup::build_state(settings, Clock::system()))?;
            let hash = state.passwords.hash(&reg.password)?;
            let mut conn = state.db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
            let created = service::register(
                &mut conn,
                &state.secrets,
                state.clock.now(),
                &reg,
                &hash,
                Some(&governs),
            )
            .map_err(|e| anyhow::anyhow!("{}", crate::error::ApiError::from(e).detail))?;
            println!(
                "administrator created: user_id={} account_id={}",
                created.user_id, created.account_id
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// How long the health check waits for the whole answer: a probe that hangs is a failed probe.
const HEALTHCHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// GET /readyz on this machine's listener with a plain HTTP/1.0 request (the image has no curl).
fn healthcheck(server: &crate::config::ServerSettings) -> ExitCode {
    use std::io::{Read, Write};
    // A server listening on every address is reached on loopback.
    let host = match server.host.as_str() {
        "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "::1",
        host => host,
    };
    let address = (host, server.port);
    let probe = || -> std::io::Result<String> {
        let target = std::net::ToSocketAddrs::to_socket_addrs(&address)?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut stream = std::net::TcpStream::connect_timeout(&target, HEALTHCHECK_TIMEOUT)?;
        stream.set_read_timeout(Some(HEALTHCHECK_TIMEOUT))?;
        stream.set_write_timeout(Some(HEALTHCHECK_TIMEOUT))?;
        stream.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut head = [0u8; 64];
        let n = stream.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..n]).into_owned())
    };
    match probe() {
        Ok(answer) if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") => {
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            eprintln!("not ready: {}", answer.lines().next().unwrap_or(""));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("no answer from {}:{}: {e}", address.0, address.1);
            ExitCode::FAILURE
        }
    }
}

/// One line from standard input, without its line ending.
fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_string())
}

/// `verify`'s progress on stderr: a line per stage, rewritten at most every [`Progress::EVERY`] (and
/// when the stage ends), with how many rows were read and how fast.
#[derive(Default)]
struct Progress {
    stage: Option<crate::verify::Stage>,
    started: Option<std::time::Instant>,
    printed: Option<std::time::Instant>,
}

impl Progress {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(500);

    fn report(&mut self, stage: crate::verify::Stage, done: usize, total: usize) {
        let now = std::time::Instant::now();
        if self.stage != Some(stage) {
            if self.stage.is_some() {
                eprintln!();
            }
            // The first stage's clock runs from the start of the run (its first chunk took time too).
            let started = if self.stage.is_some() {
                now
            } else {
                self.started.unwrap_or(now)
            };
            *self = Progress {
                stage: Some(stage),
                started: Some(started),
                printed: None,
            };
        }
        let finished = done >= total;
        if !finished && self.printed.is_some_and(|at| now - at < Self::EVERY) {
            return;
        }
        self.printed = Some(now);
        let elapsed = self.started.map_or(0.0, |at| (now - at).as_secs_f64());
        let rate = if elapsed > 0.0 { done as f64 / elapsed } else { 0.0 };
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        eprint!(
            "\r{}: {done}/{total} ({percent}%) in {elapsed:.1} s, {rate:.0}/s   ",
            stage.label()
        );
    }
}

fn verify(settings: Settings) -> anyhow::Result<ExitCode> {
    use secrecy::ExposeSecret;
    let db = startup::open_database(&settings)?;
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let configured = settings
        .ledger
        .signing_key
        .as_ref()
        .map(|k| k.expose_secret().to_string());
    let key = PlatformKey::load(&mut conn, &Clock::system(), configured.as_deref())?;
    let mut shown = Progress {
        started: Some(std::time::Instant::now()),
        ..Progress::default()
    };
    let report = crate::verify::verify(&mut conn, &key.public_key_bytes(), |stage, done, total| {
        shown.report(stage, done, total)
    })?;
    if shown.stage.is_some() {
        eprintln!();
    }
    println!(
        "checked {} accounts, {} transfers, {} blocks, {} activities (key {})",
        report.accounts,
        report.transfers,
        report.blocks,
        report.activities,
        key.key_id()
    );
    if report.ok() {
        println!(
            "OK: every balance equals its transfers, balances sum to zero, every block verifies, \
             every activity's grams are reproduced under the version it recorded"
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} mismatches:", report.mismatches.len());
        for m in &report.mismatches {
            println!("  - {m}");
        }
        Ok(ExitCode::FAILURE)
    }
}
