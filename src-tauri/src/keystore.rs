//! Where the API key is kept: the system keyring (the Secret Service on Linux: GNOME Keyring,
//! KWallet) when one answers, else the settings file (private to the user, mode 0600). One key
//! per provider, so switching providers keeps both.

use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;

/// The keyring's service name for Talaria's entries.
const SERVICE: &str = "app.talaria.desktop";
/// A keyring that does not answer within this long counts as missing: a locked or hung
/// Secret Service must not freeze the app.
const TIMEOUT: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStorage {
    /// The system keyring.
    Keyring,
    /// The settings file (0600).
    File,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the system keyring did not answer within {} s", TIMEOUT.as_secs())]
    Timeout,
    #[error("the system keyring refused: {0}")]
    Keyring(String),
}

/// Runs a keyring call on its own thread, so a Secret Service that hangs (a locked keyring
/// waiting for a prompt nobody sees) costs at most `TIMEOUT`.
fn with_timeout<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, keyring::Error> + Send + 'static,
) -> Result<T, KeyError> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("talaria-keyring".into())
        .spawn(move || {
            let _ = tx.send(call());
        });
    if let Err(error) = spawned {
        return Err(KeyError::Keyring(error.to_string()));
    }
    match rx.recv_timeout(TIMEOUT) {
        Ok(result) => result.map_err(|e| KeyError::Keyring(e.to_string())),
        Err(_) => Err(KeyError::Timeout),
    }
}

/// The keyring entry of `provider`.
fn entry(provider: &str) -> Result<keyring::Entry, keyring::Error> {
    keyring::Entry::new(SERVICE, &format!("api-key:{provider}"))
}

/// Which storage is in use here: the keyring when it answers a lookup.
pub fn probe() -> KeyStorage {
    let answered = with_timeout(|| match entry("probe")?.get_password() {
        Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(error) => Err(error),
    });
    match answered {
        Ok(()) => KeyStorage::Keyring,
        Err(error) => {
            tracing::info!("API keys are kept in the settings file: {error}");
            KeyStorage::File
        }
    }
}

/// The key saved for `provider`, if any.
pub fn load(provider: &str) -> Result<Option<String>, KeyError> {
    let provider = provider.to_string();
    with_timeout(move || match entry(&provider)?.get_password() {
        Ok(key) => Ok(Some(key)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(error) => Err(error),
    })
}

pub fn save(provider: &str, key: &str) -> Result<(), KeyError> {
    let (provider, key) = (provider.to_string(), key.to_string());
    with_timeout(move || entry(&provider)?.set_password(&key))
}

pub fn delete(provider: &str) -> Result<(), KeyError> {
    let provider = provider.to_string();
    with_timeout(move || match entry(&provider)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(error) => Err(error),
    })
}
