//! First run: find an OpenAI-compatible server already running on this machine
//! (Ollama, LM Studio, llama.cpp server) so a newcomer can start without a key.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The usual local ports of the servers Talaria knows.
pub const CANDIDATES: &[(&str, &str)] = &[
    ("Ollama", "http://127.0.0.1:11434/v1"),
    ("LM Studio", "http://127.0.0.1:1234/v1"),
    ("llama.cpp server", "http://127.0.0.1:8080/v1"),
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalServer {
    pub name: String,
    pub base_url: String,
    pub models: Vec<String>,
}

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

/// Asks each candidate for its model list, all at once, each with a short timeout, so the
/// first-run screen never waits long on ports where nothing listens.
pub async fn detect(candidates: &[(&str, &str)]) -> Vec<LocalServer> {
    let Ok(client) = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_millis(1200))
        .build()
    else {
        return Vec::new();
    };
    let probes = candidates.iter().map(|(name, base)| {
        let client = client.clone();
        async move {
            let response = client.get(format!("{base}/models")).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let list: ModelList = response.json().await.ok()?;
            Some(LocalServer {
                name: (*name).to_string(),
                base_url: (*base).to_string(),
                models: list.data.into_iter().map(|m| m.id).collect(),
            })
        }
    });
    futures_util::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect()
}
