// No console window on Windows release builds; the CLI still prints when run from a terminal.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if talaria::cli::is_cli_invocation(&args) {
        std::process::exit(talaria::cli::main(args));
    }
    talaria::desktop::run();
}
