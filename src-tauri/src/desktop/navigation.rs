//! The window only ever shows the app itself: any navigation away from it (a link in a reply,
//! a form, a script setting `location`) is refused. Web links open in the system browser
//! instead, through the opener plugin, for the schemes its capability allows.

use tauri::plugin::{Builder, TauriPlugin};
use tauri::{Runtime, Url};

/// Whether `url` is the app's own page: its custom protocol (`tauri://localhost` on Linux and
/// macOS, `http(s)://tauri.localhost` on Windows), or the Vite dev server in a dev build.
fn is_app(url: &Url) -> bool {
    let host = url.host_str().unwrap_or("");
    match url.scheme() {
        "tauri" => host == "localhost",
        "http" | "https" if host == "tauri.localhost" => true,
        "http" => {
            cfg!(dev) && matches!(host, "localhost" | "127.0.0.1") && url.port() == Some(5173)
        }
        _ => false,
    }
}

pub fn guard<R: Runtime>() -> TauriPlugin<R> {
    Builder::new("navigation-guard")
        .on_navigation(|_webview, url| {
            let allowed = is_app(url);
            if !allowed {
                tracing::warn!("refused a navigation of the window to {url}");
            }
            allowed
        })
        .build()
}
