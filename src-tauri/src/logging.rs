//! Diagnostics go to stderr through `tracing`. `TALARIA_LOG` sets the filter
//! (for example `TALARIA_LOG=talaria=debug`); the default is quiet enough for a terminal.

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber once; `default` is the filter when `TALARIA_LOG` is unset.
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_env("TALARIA_LOG")
        // rmcp logs MCP transport failures at error level; Talaria reports them itself (the
        // server shows as failed, the call's result says why), so they stay quiet here.
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,rmcp=off,talaria={default}")));
    // A second init (tests, or the CLI after the desktop) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
