//! The MCP server the tests drive: a real stdio server on rmcp's `server` feature, with tools
//! that behave the ways servers do in the wild.
//!
//! Tools: `echo {message}`, `slow {seconds}` (sleeps, stops when the request is cancelled),
//! `ignore_cancel {seconds}` (keeps sleeping after a cancel), `crash` (exits in the middle of
//! the call), `image` (a PNG image block), `env` (the environment it was started with).
//!
//! Flags: `--log FILE` appends one JSON object per event (`started`, `call`, `cancelled`,
//! `slow_cancelled`, `ignored_cancel`, `finished`); `--startup-delay-ms N` waits before
//! answering anything (a server slow to start); `--exit-at-start` writes to stderr and exits 2.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelledNotificationParam,
    ContentBlock, ErrorData, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{RoleServer, ServerHandler, ServiceExt as _};
use serde_json::{Value, json};

/// A 2×2 red PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg==";

#[derive(Clone)]
struct TestServer {
    log: Option<Arc<PathBuf>>,
}

impl TestServer {
    fn log(&self, event: &str, mut fields: Value) {
        let Some(path) = &self.log else { return };
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        fields["event"] = json!(event);
        fields["at_ms"] = json!(ms);
        fields["pid"] = json!(std::process::id());
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.as_ref())
        {
            // One write per line: the tool's task and the cancel notification log at the same
            // moment, and `writeln!` would interleave their pieces into two unreadable lines.
            let _ = file.write_all(format!("{fields}\n").as_bytes());
        }
    }
}

fn schema(properties: Value, required: &[&str]) -> Arc<serde_json::Map<String, Value>> {
    let value = json!({"type": "object", "properties": properties, "required": required});
    Arc::new(value.as_object().cloned().unwrap_or_default())
}

fn tools() -> Vec<Tool> {
    let seconds = json!({"seconds": {"type": "number", "description": "How long to sleep."}});
    vec![
        Tool::new(
            "echo",
            "Returns the message it is given.",
            schema(json!({"message": {"type": "string"}}), &["message"]),
        ),
        Tool::new(
            "slow",
            "Sleeps for the given seconds; stops early when the call is cancelled.",
            schema(seconds.clone(), &["seconds"]),
        ),
        Tool::new(
            "ignore_cancel",
            "Sleeps for the given seconds and ignores cancellation.",
            schema(seconds, &["seconds"]),
        ),
        Tool::new(
            "crash",
            "Exits the server in the middle of the call.",
            schema(json!({}), &[]),
        ),
        Tool::new(
            "image",
            "Returns a small PNG image.",
            schema(json!({}), &[]),
        ),
        Tool::new(
            "env",
            "Returns the environment variables the server was started with.",
            schema(json!({}), &[]),
        ),
    ]
}

fn seconds(params: &CallToolRequestParams) -> Duration {
    let secs = params
        .arguments
        .as_ref()
        .and_then(|a| a.get("seconds"))
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs.clamp(0.0, 600.0))
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        params: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let request = context.id.to_string();
        self.log(
            "call",
            json!({"tool": params.name, "request": request, "arguments": params.arguments}),
        );
        let result = match params.name.as_ref() {
            "echo" => {
                let message = params
                    .arguments
                    .as_ref()
                    .and_then(|a| a.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                CallToolResult::success(vec![ContentBlock::text(message)])
            }
            "slow" => {
                let wait = seconds(&params);
                match context
                    .ct
                    .run_until_cancelled(tokio::time::sleep(wait))
                    .await
                {
                    Some(()) => CallToolResult::success(vec![ContentBlock::text(format!(
                        "slept {} s",
                        wait.as_secs_f64()
                    ))]),
                    None => {
                        self.log("slow_cancelled", json!({"request": request}));
                        CallToolResult::error(vec![ContentBlock::text("cancelled")])
                    }
                }
            }
            "ignore_cancel" => {
                tokio::time::sleep(seconds(&params)).await;
                if context.ct.is_cancelled() {
                    self.log("ignored_cancel", json!({"request": request}));
                }
                CallToolResult::success(vec![ContentBlock::text("done, whatever you said")])
            }
            "crash" => {
                eprintln!("mcp_test_server: crashing on purpose in the middle of a call");
                std::process::exit(3);
            }
            "image" => CallToolResult::success(vec![
                ContentBlock::text("a 2×2 red square"),
                ContentBlock::image(PNG, "image/png"),
            ]),
            "env" => {
                let env: serde_json::Map<String, Value> = std::env::vars()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                CallToolResult::success(vec![ContentBlock::text(Value::Object(env).to_string())])
            }
            other => CallToolResult::error(vec![ContentBlock::text(format!("no tool {other}"))]),
        };
        self.log("finished", json!({"tool": params.name, "request": request}));
        Ok(CallToolResponse::Complete(result))
    }

    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        _context: NotificationContext<RoleServer>,
    ) {
        let request = notification.request_id.map(|id| id.to_string());
        self.log(
            "cancelled",
            json!({"request": request, "reason": notification.reason}),
        );
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut log = None;
    let mut delay = Duration::ZERO;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--log" => log = args.next().map(|p| Arc::new(PathBuf::from(p))),
            "--startup-delay-ms" => {
                let ms = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                delay = Duration::from_millis(ms);
            }
            "--exit-at-start" => {
                eprintln!("mcp_test_server: refusing to start (--exit-at-start)");
                std::process::exit(2);
            }
            other => {
                eprintln!("mcp_test_server: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let server = TestServer { log };
    server.log("started", json!({}));
    eprintln!("mcp_test_server: started");
    tokio::time::sleep(delay).await;
    let running = match server.serve(rmcp::transport::stdio()).await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("mcp_test_server: handshake failed: {error}");
            std::process::exit(1);
        }
    };
    let _ = running.waiting().await;
}
