//! Listing the provider's models (`GET /v1/models`), for Settings' Test connection.

use talaria::cancel::CancellationToken;
use talaria::config::{ProviderKind, Settings};
use talaria::event::ErrorKind;
use talaria::provider::{ModelClient, ModelError, ModelInfo};

use crate::providers::{BOTH, settings};
use crate::standin::StandIn;

async fn list(settings: &Settings) -> Result<Vec<ModelInfo>, ModelError> {
    let client = ModelClient::new(settings).unwrap_or_else(|e| panic!("client: {e}"));
    client.list_models(&CancellationToken::new()).await
}

#[tokio::test]
async fn lists_the_models_of_both_providers() {
    for kind in BOTH {
        let server = StandIn::start().await;
        let settings = settings(&server, kind);
        server.require_api_key(&settings.api_key);
        let models = list(&settings)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
        match kind {
            ProviderKind::Openai => assert_eq!(ids, ["standin-model", "standin-large"]),
            ProviderKind::Anthropic => {
                assert_eq!(ids, ["claude-standin", "claude-standin-mini"]);
                assert_eq!(models[0].name.as_deref(), Some("Claude Stand-in"));
            }
        }
        let request = &server.requests()[0];
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", "/v1/models")
        );
        if kind == ProviderKind::Anthropic {
            assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
        }
    }
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_error_that_never_shows_the_key() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.require_api_key("sk-the-right-one");
        let settings = settings(&server, kind);
        match list(&settings).await {
            Err(ModelError::Failed {
                kind: k, message, ..
            }) => {
                assert_eq!(k, ErrorKind::Auth, "{kind:?}: {message}");
                assert!(message.contains("API key"), "{kind:?}: {message}");
                assert!(!message.contains(&settings.api_key), "{kind:?}: {message}");
            }
            other => panic!("{kind:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn no_server_is_a_network_error_that_names_the_host() {
    for kind in BOTH {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        let settings = Settings {
            provider: kind,
            base_url: match kind {
                ProviderKind::Openai => format!("http://127.0.0.1:{port}/v1"),
                ProviderKind::Anthropic => format!("http://127.0.0.1:{port}"),
            },
            model: "m".into(),
            connect_timeout_s: 5,
            ..Settings::default()
        };
        match list(&settings).await {
            Err(ModelError::Failed {
                kind: k, message, ..
            }) => {
                assert_eq!(k, ErrorKind::Network, "{kind:?}: {message}");
                assert!(
                    message.contains(&format!("127.0.0.1:{port}")),
                    "{kind:?}: {message}"
                );
            }
            other => panic!("{kind:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_server_without_a_model_list_says_so() {
    // The stand-in has no model list under /v1/v1 (an OpenAI base URL that already ends in /v1
    // given twice): a 404 whose hint is about the base URL.
    let server = StandIn::start().await;
    let mut settings = settings(&server, ProviderKind::Openai);
    settings.base_url = format!("{}/v1", server.openai_base());
    match list(&settings).await {
        Err(ModelError::Failed { kind, message, .. }) => {
            assert_eq!(kind, ErrorKind::Http, "{message}");
            assert!(message.contains("404"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
