//! `vault-auth-kubernetes`: parse the command line and run; all the work is in the library.

use std::process::ExitCode;

use vault_auth_kubernetes::{app, cli::Cli};

#[tokio::main]
async fn main() -> ExitCode {
    app::main(Cli::parse_args()).await
}
