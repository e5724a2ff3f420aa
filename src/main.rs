use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tanhui::cli::Cli::parse();
    match tanhui::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
