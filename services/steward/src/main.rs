//! `steward`: the all-in-one server (`steward up`), migrations, and a CLI for people.

mod cli;
mod cmd;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    cmd::run(args).await
}
