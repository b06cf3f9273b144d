//! Quitting cleanly whichever way it comes: the window closed, Ctrl+Q, SIGTERM, SIGINT,
//! SIGHUP, or the display connection lost (logging out ends it). Each way stops the running
//! turns (they record how they ended), writes the session logs and the window's place, and
//! only then lets the process end.

use std::time::Duration;

use tauri::{AppHandle, Manager};

use super::state::AppState;
use super::window;
use crate::history;

/// How long quitting waits for the session logs to reach the disk.
const FLUSH: Duration = Duration::from_secs(3);
/// How long quitting waits for cancelled turns to record how they ended.
const STOP: Duration = Duration::from_secs(1);

/// Stops every turn, writes every log and the window's place. Blocks (up to about 4 s); safe
/// to call more than once, from any thread. `measure_window` asks the window where it is: only
/// on the main thread with the window and display alive (a close request).
pub fn wind_down(app: &AppHandle, measure_window: bool) {
    let state = app.state::<AppState>();
    state.stop_all(STOP);
    state.stop_mcp();
    history::flush_all_blocking(FLUSH);
    window::save_placement(app, measure_window);
}

/// Ctrl+Q in the window. The exit runs `wind_down` (RunEvent::Exit) before the process ends.
#[tauri::command]
pub fn quit_app(app: AppHandle) {
    app.exit(0);
}

/// SIGHUP (the terminal or the session ended), SIGINT, SIGTERM: wind down, then exit with
/// 128 + the signal's number, as a shell would report it.
pub async fn on_signals(app: AppHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hangup), Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot watch SIGHUP/SIGINT/SIGTERM: those would end Talaria unsaved");
        return;
    };
    let mut next = async || {
        tokio::select! {
            _ = hangup.recv() => libc::SIGHUP,
            _ = interrupt.recv() => libc::SIGINT,
            _ = terminate.recv() => libc::SIGTERM,
        }
    };
    let number = next().await;
    tracing::info!("quitting on signal {number}");
    let stopping = app.clone();
    let _ = tokio::task::spawn_blocking(move || wind_down(&stopping, false)).await;
    app.exit(128 + number);
    // A second signal means now, in case the window's event loop cannot get to the exit.
    let again = next().await;
    std::process::exit(128 + again);
}

/// When the X display goes away (the session ends), GTK's handler ends the process on the
/// spot (`_exit(1)`), losing what the logs had not written yet. This handler winds down
/// first, then exits the same way. Wayland has no such hook: there SIGTERM and SIGHUP from
/// the session manager are what save the logs.
#[cfg(target_os = "linux")]
pub fn on_display_loss(app: &AppHandle) {
    display::watch(app);
}

#[cfg(not(target_os = "linux"))]
pub fn on_display_loss(_app: &AppHandle) {}

#[cfg(target_os = "linux")]
mod display {
    use std::os::raw::c_int;
    use std::sync::OnceLock;

    use tauri::AppHandle;
    use x11_dl::xlib;

    static APP: OnceLock<AppHandle> = OnceLock::new();

    /// Must run after GTK opened the display (in `setup`), so this handler replaces GTK's.
    pub fn watch(app: &AppHandle) {
        // No libX11 means no X display to lose.
        let Ok(xlib) = xlib::Xlib::open() else {
            return;
        };
        if APP.set(app.clone()).is_err() {
            return;
        }
        // SAFETY: setting the process-wide I/O error handler to a function that never returns,
        // as Xlib requires; it is called on the thread that was using the display. libX11 stays
        // loaded: GTK links it, and x11-dl never unloads what it opened.
        unsafe {
            (xlib.XSetIOErrorHandler)(Some(lost));
        }
    }

    unsafe extern "C" fn lost(_display: *mut xlib::Display) -> c_int {
        // Winding down is bounded (about 4 s), but this runs on the main thread, which nothing
        // may wait for now: whatever happens, the process ends soon after.
        let _ = std::thread::Builder::new().spawn(|| {
            std::thread::sleep(super::STOP + super::FLUSH + std::time::Duration::from_secs(2));
            // SAFETY: ends the process, as below.
            unsafe { libc::_exit(1) }
        });
        let _ = std::panic::catch_unwind(|| {
            if let Some(app) = APP.get() {
                tracing::warn!("the display connection is gone (the session ended); saving");
                super::wind_down(app, false);
            }
        });
        // SAFETY: ends the process without running atexit handlers or destructors, which
        // would touch the dead display; the logs are written by now.
        unsafe { libc::_exit(1) }
    }
}
