//! One window per data folder: a second launch with the same data folder hands over to the
//! open window; a launch with another `TALARIA_DATA_DIR` (a test, a second profile) is a
//! separate app.

use std::path::Path;

/// The D-Bus name (without the `.SingleInstance` the plugin appends) that the app of
/// `data_dir` owns while it runs: the app identifier plus a stable hash of the folder.
pub fn bus_id(identifier: &str, data_dir: &Path) -> String {
    let folder = std::fs::canonicalize(data_dir)
        .or_else(|_| std::path::absolute(data_dir))
        .unwrap_or_else(|_| data_dir.to_path_buf());
    // A D-Bus name element must not start with a digit, hence the `d`.
    format!(
        "{identifier}.d{:016x}",
        fnv1a(folder.as_os_str().as_encoded_bytes())
    )
}

/// FNV-1a, 64 bits: the same on every build and every run (std's hasher makes no such promise).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn same_folder_same_id_other_folder_other_id() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        let id = bus_id("app.talaria.desktop", one.path());
        assert_eq!(id, bus_id("app.talaria.desktop", one.path()));
        // The same folder spelled another way.
        assert_eq!(id, bus_id("app.talaria.desktop", &one.path().join(".")));
        assert_ne!(id, bus_id("app.talaria.desktop", two.path()));
    }

    #[test]
    fn id_is_a_valid_bus_name() {
        let id = bus_id("app.talaria.desktop", Path::new("/no/such/folder"));
        assert!(id.starts_with("app.talaria.desktop.d"), "{id}");
        assert!(id.len() < 255);
        for element in id.split('.') {
            assert!(!element.is_empty());
            assert!(!element.starts_with(|c: char| c.is_ascii_digit()), "{id}");
            assert!(
                element
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            );
        }
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
