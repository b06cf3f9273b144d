//! MCP tools as the agent uses them: the specs the model sees (`SERVER__tool`, with the
//! server's JSON schema), the route from a model name back to its server, and one call.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResponse, JsonObject, Tool};
use serde_json::Value;

use super::connect::Connection;
use super::content::{self, McpOutput};
use super::error_text::root_cause;
use super::names;
use crate::provider::ToolSpec;

/// A ready server's tools, with what a call needs to know about the server.
#[derive(Clone, Debug)]
pub struct ReadyServer {
    pub name: String,
    pub tools: Arc<Vec<Tool>>,
    pub trusted: bool,
    pub timeout: Duration,
}

/// Where a model-facing tool name leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The server's name in `mcp.json`.
    pub server: String,
    /// The server's name for the tool.
    pub tool: String,
    /// Its tools run without asking.
    pub trusted: bool,
    pub timeout: Duration,
}

/// The MCP tools of one turn.
#[derive(Clone, Debug, Default)]
pub struct TurnTools {
    pub specs: Vec<ToolSpec>,
    pub routes: HashMap<String, Route>,
}

/// Model names of every (server, tool) pair, unique across servers.
#[derive(Clone, Debug, Default)]
pub struct ModelNames(HashMap<(String, String), String>);

impl ModelNames {
    pub fn get(&self, server: &str, tool: &str) -> String {
        self.0
            .get(&(server.to_string(), tool.to_string()))
            .cloned()
            .unwrap_or_else(|| names::qualified(server, tool))
    }
}

/// Names for every tool of `servers`, in server order: `SERVER__tool`, or a hashed variant
/// when sanitizing made two names equal. Tools whose name still clashes are left out.
pub fn model_names(servers: &[ReadyServer]) -> ModelNames {
    let mut taken = HashSet::new();
    let mut out = HashMap::new();
    for server in servers {
        for tool in server.tools.iter() {
            let candidates = [
                names::qualified(&server.name, &tool.name),
                names::disambiguated(&server.name, &tool.name),
            ];
            match candidates.into_iter().find(|name| !taken.contains(name)) {
                Some(name) => {
                    taken.insert(name.clone());
                    out.insert((server.name.clone(), tool.name.to_string()), name);
                }
                None => tracing::warn!(
                    server = %server.name,
                    "the tool {:?} is left out: its name clashes with another one",
                    tool.name
                ),
            }
        }
    }
    ModelNames(out)
}

/// The specs and routes for a turn.
pub fn assemble(servers: &[ReadyServer]) -> TurnTools {
    let names = model_names(servers);
    let mut turn = TurnTools::default();
    for server in servers {
        for tool in server.tools.iter() {
            let key = (server.name.clone(), tool.name.to_string());
            let Some(name) = names.0.get(&key) else {
                continue;
            };
            turn.specs.push(ToolSpec {
                name: name.clone(),
                description: tool
                    .description
                    .as_deref()
                    .or(tool.title.as_deref())
                    .unwrap_or_default()
                    .to_string(),
                parameters: parameters(tool),
            });
            turn.routes.insert(
                name.clone(),
                Route {
                    server: server.name.clone(),
                    tool: tool.name.to_string(),
                    trusted: server.trusted,
                    timeout: server.timeout,
                },
            );
        }
    }
    turn
}

/// The tool's input schema, as an object schema both providers take (some servers leave out
/// `type` or `properties`).
fn parameters(tool: &Tool) -> Value {
    let mut schema = (*tool.input_schema).clone();
    schema
        .entry("type")
        .or_insert_with(|| Value::String("object".into()));
    if schema.get("type").and_then(Value::as_str) == Some("object") {
        schema
            .entry("properties")
            .or_insert_with(|| Value::Object(Default::default()));
    }
    Value::Object(schema)
}

/// The model's arguments as a JSON object (empty text counts as no arguments).
pub fn parse_arguments(arguments: &str) -> Result<Option<JsonObject>, String> {
    if arguments.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(object)) => Ok(Some(object)),
        Ok(_) => Err(
            "the arguments must be a JSON object matching the tool's schema; resend \
                      the call with an object"
                .to_string(),
        ),
        Err(error) => Err(format!(
            "the arguments are not valid JSON ({error}); resend the call with valid JSON"
        )),
    }
}

/// One `tools/call`, bounded by the route's timeout. Dropping the future (a Stop) or running
/// out of time sends `notifications/cancelled` at once (rmcp does it when the request is
/// abandoned) and nobody waits for the server's answer.
pub async fn call(
    connection: &Connection,
    route: &Route,
    arguments: Option<JsonObject>,
) -> McpOutput {
    let mut params = CallToolRequestParams::new(route.tool.clone());
    params.arguments = arguments;
    let answer = tokio::time::timeout(route.timeout, connection.peer.call_tool_once(params)).await;
    match answer {
        Ok(Ok(CallToolResponse::Complete(result))) => content::convert(result),
        // Non-exhaustive: input requests, background tasks, and whatever comes later.
        Ok(Ok(_)) => McpOutput::error(format!(
            "the MCP server {:?} answered {} with a request for more input or a background \
                 task, which Talaria does not support",
            route.server, route.tool
        )),
        Ok(Err(error)) => {
            let cause = root_cause(&error);
            let lost = matches!(
                error,
                rmcp::ServiceError::TransportClosed | rmcp::ServiceError::TransportSend(_)
            ) || connection.peer.is_transport_closed();
            if !lost {
                return McpOutput::error(format!(
                    "the MCP server {:?} could not run {}: {cause}",
                    route.server, route.tool
                ));
            }
            // The session is gone: end it, so the server shows as failed (and is restarted
            // once) instead of failing every call while it looks ready.
            connection.end_session();
            let mut text = format!(
                "the MCP server {:?} stopped or could not be reached during the call to {} \
                 ({cause})",
                route.server, route.tool
            );
            let stderr = connection.stderr().await;
            if !stderr.is_empty() {
                text.push_str("; its last output:\n");
                text.push_str(&stderr.join("\n"));
            }
            McpOutput::error(text)
        }
        Err(_elapsed) => McpOutput::error(format!(
            "timeout: {} of the MCP server {:?} did not answer within {} s (its tool_timeout_s), \
             so it was cancelled",
            route.tool,
            route.server,
            route.timeout.as_secs()
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tool(name: &str, schema: Value) -> Tool {
        let Value::Object(schema) = schema else {
            panic!()
        };
        Tool::new(name.to_string(), format!("does {name}"), Arc::new(schema))
    }

    fn server(name: &str, tools: Vec<Tool>) -> ReadyServer {
        ReadyServer {
            name: name.into(),
            tools: Arc::new(tools),
            trusted: false,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn names_and_routes() {
        let servers = [
            server(
                "test",
                vec![
                    tool("echo", serde_json::json!({"type": "object"})),
                    tool("a.b", serde_json::json!({})),
                ],
            ),
            server(
                "other",
                vec![tool(
                    "a_b",
                    serde_json::json!({"type": "object", "properties": {"x": {"type": "string"}}}),
                )],
            ),
            server("te.st", vec![tool("echo", serde_json::json!({}))]),
        ];
        let turn = assemble(&servers);
        let names: Vec<&str> = turn.specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 4);
        assert!(names.contains(&"test__echo"));
        assert!(names.contains(&"test__a_b"));
        assert!(names.contains(&"other__a_b"));
        // "te.st" sanitizes to "te_st": no clash with "test".
        assert!(names.contains(&"te_st__echo"));
        let route = &turn.routes["test__a_b"];
        assert_eq!(
            (route.server.as_str(), route.tool.as_str()),
            ("test", "a.b")
        );
        let echo = turn.specs.iter().find(|s| s.name == "test__echo").unwrap();
        assert_eq!(
            echo.parameters,
            serde_json::json!({"type": "object", "properties": {}})
        );
        assert_eq!(echo.description, "does echo");
    }

    #[test]
    fn clashing_names_are_told_apart() {
        let servers = [server(
            "s",
            vec![
                tool("a.b", serde_json::json!({})),
                tool("a_b", serde_json::json!({})),
            ],
        )];
        let turn = assemble(&servers);
        assert_eq!(turn.specs.len(), 2);
        assert_ne!(turn.specs[0].name, turn.specs[1].name);
        assert_eq!(turn.routes.len(), 2);
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_arguments("").unwrap(), None);
        assert!(parse_arguments("{\"a\": 1}").unwrap().is_some());
        assert!(parse_arguments("[1]").unwrap_err().contains("JSON object"));
        assert!(parse_arguments("{").unwrap_err().contains("not valid JSON"));
    }
}
