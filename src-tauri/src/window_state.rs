//! The main window's size and position between runs, kept in `<data dir>/window-state.json`.
//! Plain numbers in physical pixels (what the window system reports); the desktop adapter reads
//! and applies them.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE: &str = "window-state.json";

/// A window smaller than this was not left so on purpose (or the file is damaged).
const MIN_SIDE: u32 = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geometry {
    pub x: i32,
    pub y: i32,
    /// Inner size: the window's content, without the frame the window manager draws.
    pub width: u32,
    pub height: u32,
    /// Maximized when it was closed; `x`, `y`, `width`, `height` are then the size to return
    /// to when it is un-maximized.
    #[serde(default)]
    pub maximized: bool,
}

/// A monitor's area in the same physical pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum WindowStateError {
    #[error("could not save the window's size and position in {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// The saved geometry, if there is a usable one. A missing file is the first run; a damaged
/// one is logged and ignored (the window opens at its default size, and the next save
/// replaces the file).
pub fn load(data_dir: &Path) -> Option<Geometry> {
    let path = path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!("the window's saved size is not readable ({error}); using the default");
            return None;
        }
    };
    match serde_json::from_slice::<Geometry>(&bytes) {
        Ok(geometry) if geometry.width >= MIN_SIDE && geometry.height >= MIN_SIDE => Some(geometry),
        Ok(geometry) => {
            tracing::warn!("ignoring a saved window size that is too small: {geometry:?}");
            None
        }
        Err(error) => {
            tracing::warn!(
                "{} is damaged ({error}); the window opens at its default size",
                path.display()
            );
            None
        }
    }
}

/// Writes the geometry through a temporary file and a rename, so a crash or a full disk
/// leaves the previous file whole.
pub fn save(data_dir: &Path, geometry: &Geometry) -> Result<(), WindowStateError> {
    let path = path(data_dir);
    let temp = data_dir.join(format!(".{FILE}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(data_dir)?;
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&serde_json::to_vec_pretty(geometry).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        WindowStateError::Write {
            path: path.clone(),
            source,
        }
    })
}

/// Whether a window at `geometry` would show on one of `monitors` (at least a 48 px square of
/// it, so it can be grabbed and moved). A window saved on a monitor that is gone is not placed
/// there: it keeps its size and the window system picks the position.
pub fn visible_on(geometry: &Geometry, monitors: &[Area]) -> bool {
    const GRAB: i64 = 48;
    monitors.iter().any(|m| {
        let left = i64::from(geometry.x).max(i64::from(m.x));
        let top = i64::from(geometry.y).max(i64::from(m.y));
        let right = (i64::from(geometry.x) + i64::from(geometry.width))
            .min(i64::from(m.x) + i64::from(m.width));
        let bottom = (i64::from(geometry.y) + i64::from(geometry.height))
            .min(i64::from(m.y) + i64::from(m.height));
        right - left >= GRAB && bottom - top >= GRAB
    })
}

/// The saved size, shrunk to fit the largest monitor (a window bigger than every screen cannot
/// be handled).
pub fn fit_size(geometry: &Geometry, monitors: &[Area]) -> (u32, u32) {
    let widest = monitors.iter().map(|m| m.width).max();
    let tallest = monitors.iter().map(|m| m.height).max();
    (
        widest.map_or(geometry.width, |w| geometry.width.min(w)),
        tallest.map_or(geometry.height, |h| geometry.height.min(h)),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SCREEN: Area = Area {
        x: 0,
        y: 0,
        width: 1920,
        height: 1080,
    };

    fn at(x: i32, y: i32, width: u32, height: u32) -> Geometry {
        Geometry {
            x,
            y,
            width,
            height,
            maximized: false,
        }
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let geometry = Geometry {
            maximized: true,
            ..at(40, 60, 900, 700)
        };
        save(dir.path(), &geometry).unwrap();
        assert_eq!(load(dir.path()), Some(geometry));
        // Only the file itself is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE)]);
    }

    #[test]
    fn missing_damaged_or_tiny_files_give_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None);
        std::fs::write(path(dir.path()), b"{\"x\": 1, \"y\"").unwrap();
        assert_eq!(load(dir.path()), None);
        std::fs::write(
            path(dir.path()),
            serde_json::to_vec(&at(0, 0, 10, 10)).unwrap(),
        )
        .unwrap();
        assert_eq!(load(dir.path()), None);
    }

    #[test]
    fn save_into_a_missing_folder_creates_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("new");
        save(&data, &at(1, 2, 800, 600)).unwrap();
        assert_eq!(load(&data), Some(at(1, 2, 800, 600)));
    }

    #[test]
    fn save_reports_the_path_when_it_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, b"not a folder").unwrap();
        let error = save(&blocked, &at(0, 0, 800, 600)).unwrap_err();
        assert!(error.to_string().contains("window-state.json"), "{error}");
    }

    #[test]
    fn visible_only_when_a_grabbable_part_is_on_a_monitor() {
        assert!(visible_on(&at(100, 100, 800, 600), &[SCREEN]));
        // Mostly off the right edge, but 60 px still show.
        assert!(visible_on(&at(1860, 100, 800, 600), &[SCREEN]));
        // On a second monitor that is gone now.
        assert!(!visible_on(&at(2000, 100, 800, 600), &[SCREEN]));
        assert!(!visible_on(&at(-900, 100, 800, 600), &[SCREEN]));
        let right = Area { x: 1920, ..SCREEN };
        assert!(visible_on(&at(2000, 100, 800, 600), &[SCREEN, right]));
        assert!(!visible_on(&at(0, 0, 800, 600), &[]));
    }

    #[test]
    fn size_shrinks_to_the_largest_monitor() {
        assert_eq!(fit_size(&at(0, 0, 800, 600), &[SCREEN]), (800, 600));
        assert_eq!(fit_size(&at(0, 0, 3000, 2000), &[SCREEN]), (1920, 1080));
        assert_eq!(fit_size(&at(0, 0, 3000, 2000), &[]), (3000, 2000));
    }
}
