//! Logging setup: `tracing` with an env-filter, as text or JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;
use crate::error::{Error, Result};

/// Installs the global subscriber. `level` is a level name or tracing directives
/// (e.g. `info,vault_auth_kubernetes=debug`). Logs go to stderr.
pub fn init(level: &str, format: LogFormat) -> Result<()> {
    let filter = EnvFilter::try_new(level).map_err(|e| Error::InvalidSetting {
        setting: "--log-level (env VAK_LOG_LEVEL)".to_string(),
        message: format!("{level:?}: {e}"),
    })?;
    // Colour only for a person at a terminal, not in CI logs or log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| Error::InvalidSetting {
        setting: "logging".to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_log_level_names_the_flag() {
        // Fails before any subscriber is installed, so it cannot disturb other tests.
        let err = init("info,[unclosed", LogFormat::Text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--log-level (env VAK_LOG_LEVEL)"), "{err}");
    }
}
