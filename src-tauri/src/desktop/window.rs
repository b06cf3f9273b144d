//! The main window: built from tauri.conf.json with its web storage inside the data dir,
//! opened where it was left (crate::window_state), and brought to the front when Talaria is
//! launched again.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tauri::{AppHandle, Manager, PhysicalPosition, PhysicalSize, WebviewWindow, WindowEvent};

use super::state::lock;
use crate::window_state::{self, Area, Geometry};

pub const MAIN: &str = "main";

/// Where the main window is now, as last reported by the window system; saved on the way out.
pub struct Placement {
    data_dir: PathBuf,
    now: Mutex<Option<Geometry>>,
}

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("tauri.conf.json has no window labelled {MAIN:?}")]
    NotConfigured,
    #[error(transparent)]
    Tauri(#[from] tauri::Error),
}

/// Builds the main window hidden, moves it where it was, then shows it (so it does not jump).
pub fn open_main(app: &AppHandle, data_dir: &Path) -> Result<(), WindowError> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|window| window.label == MAIN)
        .ok_or(WindowError::NotConfigured)?
        .clone();
    let window = tauri::WebviewWindowBuilder::from_config(app, &config)?
        // WebKit's storage and cache would otherwise go to the default data folder even when
        // TALARIA_DATA_DIR points elsewhere.
        .data_directory(data_dir.join("webview"))
        .visible(false)
        .build()?;
    let saved = window_state::load(data_dir);
    if let Some(saved) = saved {
        place(&window, &saved);
    }
    app.manage(Placement {
        data_dir: data_dir.to_path_buf(),
        now: Mutex::new(saved),
    });
    window.show()?;
    // Without a window manager (or with focus-stealing prevention) this may be refused: fine.
    let _ = window.set_focus();
    Ok(())
}

fn place(window: &WebviewWindow, saved: &Geometry) {
    let monitors: Vec<Area> = window
        .available_monitors()
        .unwrap_or_default()
        .iter()
        .map(|m| Area {
            x: m.position().x,
            y: m.position().y,
            width: m.size().width,
            height: m.size().height,
        })
        .collect();
    let (width, height) = window_state::fit_size(saved, &monitors);
    let _ = window.set_size(PhysicalSize::new(width, height));
    if window_state::visible_on(saved, &monitors) {
        let _ = window.set_position(PhysicalPosition::new(saved.x, saved.y));
    }
    if saved.maximized {
        let _ = window.maximize();
    }
}

/// Follows moves and resizes of the main window. A maximized or minimized window keeps the
/// normal size and position it had, so un-maximizing after a restart goes back to them.
pub fn track(window: &tauri::Window, event: &WindowEvent) {
    if window.label() != MAIN {
        return;
    }
    let Some(placement) = window.try_state::<Placement>() else {
        return;
    };
    if matches!(event, WindowEvent::Moved(_) | WindowEvent::Resized(_)) {
        // Never ask the window while holding the lock: the asking may wait for the main thread.
        let last = *lock(&placement.now);
        let measured = measure(window, last);
        *lock(&placement.now) = measured;
    }
}

/// The window's geometry as the window system has it now, keeping the last normal size and
/// position while it is maximized or minimized.
fn measure(window: &tauri::Window, last: Option<Geometry>) -> Option<Geometry> {
    if window.is_minimized().unwrap_or(false) {
        return last;
    }
    let maximized = window.is_maximized().unwrap_or(false);
    if maximized {
        return last.map(|g| Geometry {
            maximized: true,
            ..g
        });
    }
    let (Ok(position), Ok(size)) = (window.outer_position(), window.inner_size()) else {
        return last;
    };
    Some(Geometry {
        x: position.x,
        y: position.y,
        width: size.width,
        height: size.height,
        maximized: false,
    })
}

/// Saves where the main window is. `measure_now` (only on the main thread, with the window
/// still open) asks the window; otherwise the place last reported is saved: on the way out, from
/// a signal, or with the display gone, asking could wait forever.
pub fn save_placement(app: &AppHandle, measure_now: bool) {
    let Some(placement) = app.try_state::<Placement>() else {
        return;
    };
    let mut geometry = *lock(&placement.now);
    if measure_now && let Some(window) = app.get_webview_window(MAIN) {
        geometry = measure(&window.as_ref().window(), geometry);
        *lock(&placement.now) = geometry;
    }
    if let Some(geometry) = geometry
        && let Err(error) = window_state::save(&placement.data_dir, &geometry)
    {
        tracing::warn!("{error}");
    }
}

/// A second launch of Talaria: show the open window, in front, with the keyboard focus.
pub fn bring_to_front(app: &AppHandle) {
    let Some(window) = app.get_webview_window(MAIN) else {
        return;
    };
    let _ = window.unminimize();
    let _ = window.show();
    let gtk_window = window.clone();
    // tao's set_focus does nothing while it still thinks the window is minimized, and asks
    // with no timestamp, which window managers that prevent focus stealing refuse; GTK's
    // present with the X server's time raises, un-minimizes and focuses in one go.
    let presented = window.run_on_main_thread(move || present(&gtk_window));
    if presented.is_err() {
        let _ = window.set_focus();
    }
}

#[cfg(target_os = "linux")]
fn present(window: &WebviewWindow) {
    use gtk::prelude::{Cast, GtkWindowExt, WidgetExt};
    let Ok(gtk_window) = window.gtk_window() else {
        return;
    };
    let time = gtk_window
        .window()
        .and_then(|gdk_window| gdk_window.downcast::<gdkx11::X11Window>().ok())
        .map(|x11| gdkx11::functions::x11_get_server_time(&x11));
    match time {
        Some(time) => gtk_window.present_with_time(time),
        None => gtk_window.present(),
    }
}

#[cfg(not(target_os = "linux"))]
fn present(window: &WebviewWindow) {
    let _ = window.set_focus();
}
