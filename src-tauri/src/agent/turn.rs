//! One turn of the loop. Every await is raced against the turn's token; on cancel the
//! `Cancelled` event goes out first and the bookkeeping (partial text, synthetic tool results,
//! log records) follows without any wait, since the recorder API is a channel send.

use chrono::Utc;

use super::approval::{ApprovalBroker, ApprovalPolicy};
use super::batcher::TokenBatcher;
use super::{Agent, MAX_TOKENS, TurnOutcome};
use crate::cancel::{CancellationToken, Cancelled, OrCancel};
use crate::event::{ErrorKind, Event, EventSink, Usage};
use crate::history::{Record, TurnError, TurnStatus};
use crate::mcp::Route;
use crate::message::{McpResult, Message, ToolCall, ToolImage};
use crate::provider::{Completion, ModelError, ModelRequest, StreamDelta};
use crate::repair::{is_empty_assistant, repair_history};
use crate::tools::{ToolContext, ToolOutput};

/// Why the loop stopped, before the outcome is announced and recorded.
enum Stop {
    Done,
    Cancelled {
        partial: Option<Message>,
    },
    Failed {
        kind: ErrorKind,
        message: String,
        partial: Option<Message>,
    },
}

impl Agent {
    /// One turn: user message -> model -> tools -> ... until a final answer, max iterations, an
    /// error or a cancel. Emits `TurnStarted`, `Token` (batched), `Reasoning`, `ToolCall`,
    /// `ToolResult`, `Todo`, `ApprovalRequest`, `Retry`, then exactly one of `Done` / `Error` /
    /// `Cancelled`.
    pub async fn run_turn(
        &mut self,
        prompt: String,
        sink: &dyn EventSink,
        approvals: &ApprovalPolicy,
        cancel: CancellationToken,
    ) -> TurnOutcome {
        let events = TokenBatcher::new(sink);
        self.turns += 1;
        let turn = self.turns;
        self.record(Record::TurnStart {
            ts: Utc::now(),
            turn,
        });
        let user = Message::user(prompt);
        self.messages.push(user.clone());
        if let Some(recorder) = &self.recorder {
            // Written at once: a sent message is never lost.
            recorder.append_now(Record::Message {
                ts: Utc::now(),
                message: user,
            });
        }
        events.emit(Event::TurnStarted { turn });

        let mut usage: Option<Usage> = None;
        let stop = self.run_loop(&events, approvals, &cancel, &mut usage).await;
        self.finish(turn, stop, usage, &events)
    }

    async fn run_loop(
        &mut self,
        events: &TokenBatcher<'_>,
        approvals: &ApprovalPolicy,
        cancel: &CancellationToken,
        usage: &mut Option<Usage>,
    ) -> Stop {
        if self.prepare_tools(cancel).await.is_err() {
            return Stop::Cancelled { partial: None };
        }
        let max = self.settings.max_iterations.max(1);
        for _ in 0..max {
            if cancel.is_cancelled() {
                return Stop::Cancelled { partial: None };
            }
            let (result, streamed) = self.call_model(events, cancel).await;
            let completion = match result {
                Some(Ok(completion)) => completion,
                Some(Err(ModelError::Cancelled { partial })) => {
                    return Stop::Cancelled {
                        partial: partial_message(partial, streamed),
                    };
                }
                Some(Err(ModelError::Failed {
                    kind,
                    message,
                    partial,
                })) => {
                    if cancel.is_cancelled() {
                        // Whatever failed, it failed because we hung up.
                        return Stop::Cancelled {
                            partial: partial_message(partial, streamed),
                        };
                    }
                    return Stop::Failed {
                        kind,
                        message,
                        partial: partial_message(partial, streamed),
                    };
                }
                // The model layer did not return at once after cancel(): dropped, keep the text.
                None => {
                    return Stop::Cancelled {
                        partial: partial_message(None, streamed),
                    };
                }
            };
            add_usage(usage, completion.usage);
            let calls = match &completion.message {
                Message::Assistant { tool_calls, .. } => tool_calls.clone(),
                Message::User { .. } | Message::Tool { .. } => Vec::new(),
            };
            if !is_empty_assistant(&completion.message) {
                // An empty reply would become an empty text block that Anthropic rejects.
                self.push_recorded(completion.message);
            }
            if calls.is_empty() {
                return Stop::Done;
            }
            for call in &calls {
                events.emit(Event::ToolCall {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments_value(),
                    server: self.server_of(&call.name),
                });
            }
            for call in &calls {
                if cancel.is_cancelled() {
                    return Stop::Cancelled { partial: None };
                }
                let Some((output, images)) = self.run_tool(call, events, approvals, cancel).await
                else {
                    return Stop::Cancelled { partial: None };
                };
                let server = self.server_of(&call.name);
                events.emit(Event::ToolResult {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    content: output.content.clone(),
                    is_error: output.is_error,
                    server: server.clone(),
                    images: images.clone(),
                });
                if output.todos_changed {
                    let todos = self.todos.items().to_vec();
                    events.emit(Event::Todo {
                        todos: todos.clone(),
                    });
                    self.record(Record::Todo {
                        ts: Utc::now(),
                        tool_call_id: call.id.clone(),
                        todos,
                    });
                }
                self.push_recorded(Message::Tool {
                    tool_call_id: call.id.clone(),
                    name: call.name.clone(),
                    content: output.content,
                    is_error: output.is_error,
                    mcp: server.map(|server| Box::new(McpResult { server, images })),
                });
                if cancel.is_cancelled() {
                    return Stop::Cancelled { partial: None };
                }
            }
        }
        Stop::Failed {
            kind: ErrorKind::MaxIterations,
            message: format!(
                "stopped after {max} model calls without a final answer; raise the limit with \
                 --max-iterations (or the max_iterations setting), or ask for a smaller step"
            ),
            partial: None,
        }
    }

    /// One model call. Returns None when the call had to be dropped after a cancel, plus the
    /// text streamed during the call (the partial reply if the model layer kept none).
    async fn call_model(
        &self,
        events: &TokenBatcher<'_>,
        cancel: &CancellationToken,
    ) -> (Option<Result<Completion, ModelError>>, String) {
        let mut streamed = String::new();
        let result = {
            let mut on_delta = |delta: StreamDelta| match delta {
                StreamDelta::Text(text) => {
                    streamed.push_str(&text);
                    events.push(&text);
                }
                StreamDelta::Reasoning(text) => events.emit(Event::Reasoning { text }),
                StreamDelta::Retry {
                    attempt,
                    max_attempts,
                    delay_ms,
                    reason,
                } => events.emit(Event::Retry {
                    attempt,
                    max_attempts,
                    delay_ms,
                    reason,
                }),
            };
            let request = ModelRequest {
                model: &self.settings.model,
                system: &self.system,
                messages: &self.messages,
                tools: &self.tools,
                max_tokens: MAX_TOKENS,
            };
            let call = self.client.complete(&request, &mut on_delta, cancel);
            events.drive(call.or_cancel(cancel)).await.ok()
        };
        (result, streamed)
    }

    /// This turn's tools: the built-in ones, and the MCP tools of the servers that are ready
    /// (waiting for servers still starting). Err when the turn was cancelled meanwhile.
    async fn prepare_tools(&mut self, cancel: &CancellationToken) -> Result<(), Cancelled> {
        let mut tools = crate::tools::specs();
        self.mcp_routes.clear();
        if let Some(mcp) = self.mcp.clone() {
            let turn = mcp.turn_tools().or_cancel(cancel).await?;
            tools.extend(turn.specs);
            self.mcp_routes = turn.routes;
        }
        self.tools = tools;
        Ok(())
    }

    /// The MCP server behind a tool name of this turn.
    fn server_of(&self, tool: &str) -> Option<String> {
        self.mcp_routes.get(tool).map(|route| route.server.clone())
    }

    /// Runs one call after the approval check: its output, and the images it returned. None
    /// when the turn was cancelled before the tool produced a result.
    async fn run_tool(
        &mut self,
        call: &ToolCall,
        events: &TokenBatcher<'_>,
        approvals: &ApprovalPolicy,
        cancel: &CancellationToken,
    ) -> Option<(ToolOutput, Vec<ToolImage>)> {
        if let Some(route) = self.mcp_routes.get(&call.name).cloned() {
            return self
                .run_mcp_tool(call, &route, events, approvals, cancel)
                .await;
        }
        if !crate::tools::TOOL_NAMES.contains(&call.name.as_str())
            && call.name.contains(crate::mcp::names::SEPARATOR)
        {
            return Some((
                error_output(format!(
                    "the tool {:?} is not available now: its MCP server is switched off, failed, \
                     or is no longer configured; use the tools you were given",
                    call.name
                )),
                Vec::new(),
            ));
        }
        if let Some(reason) = crate::tools::approval_reason(call) {
            match approvals {
                ApprovalPolicy::ApproveAll => {}
                ApprovalPolicy::DenyAll => {
                    return Some((
                        error_output(format!(
                            "refused: needs approval (run with --approve-all to allow): {reason}"
                        )),
                        Vec::new(),
                    ));
                }
                ApprovalPolicy::Ask(broker) => {
                    let command = command_text(call);
                    match ask(broker, call, command, reason.clone(), events, cancel).await {
                        None => return None,
                        Some(true) => {}
                        Some(false) => {
                            return Some((
                                error_output(format!(
                                    "denied by the user ({reason}); do not retry this command, \
                                     ask the user or choose a safer way"
                                )),
                                Vec::new(),
                            ));
                        }
                    }
                }
            }
        }
        let ctx = ToolContext {
            workdir: &self.workdir,
            todos: &mut self.todos,
            cancel,
        };
        let output = crate::tools::run(call, ctx).or_cancel(cancel).await.ok()?;
        Some((output, Vec::new()))
    }

    /// An MCP tool: the first call to an untrusted server in a session asks for approval,
    /// then the call goes to the server. A cancel drops the call, which tells the server.
    async fn run_mcp_tool(
        &mut self,
        call: &ToolCall,
        route: &Route,
        events: &TokenBatcher<'_>,
        approvals: &ApprovalPolicy,
        cancel: &CancellationToken,
    ) -> Option<(ToolOutput, Vec<ToolImage>)> {
        let refused = |text: String| Some((error_output(text), Vec::new()));
        if !route.trusted && !self.mcp_approved.contains(&route.server) {
            match approvals {
                ApprovalPolicy::ApproveAll => {}
                ApprovalPolicy::DenyAll => {
                    return refused(format!(
                        "refused: the tools of the MCP server {:?} need approval; run with \
                         --approve-all, or set \"trusted\": true for it in mcp.json",
                        route.server
                    ));
                }
                ApprovalPolicy::Ask(broker) => {
                    let command = format!("{} → {} {}", route.server, route.tool, call.arguments);
                    let reason = format!(
                        "first use of the MCP server {:?} in this session; allowing it lets its \
                         tools run for the rest of the session",
                        route.server
                    );
                    match ask(broker, call, command, reason, events, cancel).await {
                        None => return None,
                        Some(true) => {}
                        Some(false) => {
                            return refused(format!(
                                "denied by the user: the tools of the MCP server {:?} may not run \
                                 now; do without them or ask the user",
                                route.server
                            ));
                        }
                    }
                }
            }
            self.mcp_approved.insert(route.server.clone());
        }
        let mcp = self.mcp.clone()?;
        let output = mcp
            .call(route, &call.arguments)
            .or_cancel(cancel)
            .await
            .ok()?;
        Some((
            ToolOutput {
                content: output.content,
                is_error: output.is_error,
                todos_changed: false,
            },
            output.images,
        ))
    }

    fn push_recorded(&mut self, message: Message) {
        self.record(Record::Message {
            ts: Utc::now(),
            message: message.clone(),
        });
        self.messages.push(message);
    }

    /// Announces the outcome, then leaves the conversation valid and the log written.
    fn finish(
        &mut self,
        turn: u64,
        stop: Stop,
        usage: Option<Usage>,
        events: &TokenBatcher<'_>,
    ) -> TurnOutcome {
        match stop {
            Stop::Done => {
                events.emit(Event::Done {
                    usage: usage.clone(),
                });
                if let Some(usage) = usage {
                    self.record(Record::Usage {
                        ts: Utc::now(),
                        usage,
                    });
                }
                self.end_turn(turn, TurnStatus::Done, None);
                TurnOutcome::Done
            }
            Stop::Cancelled { partial } => {
                events.flush();
                if let Some(partial) = &partial {
                    self.messages.push(partial.clone());
                }
                // Results for calls that never finished: in memory now (cheap), so the UI sees
                // every tool card closed before `Cancelled`.
                let synthetic = self.repair_tagged();
                for message in &synthetic {
                    if let Message::Tool {
                        tool_call_id,
                        name,
                        content,
                        is_error,
                        mcp,
                    } = message
                    {
                        events.emit(Event::ToolResult {
                            id: tool_call_id.clone(),
                            name: name.clone(),
                            content: content.clone(),
                            is_error: *is_error,
                            server: mcp.as_ref().map(|mcp| mcp.server.clone()),
                            images: Vec::new(),
                        });
                    }
                }
                events.emit(Event::Cancelled);
                for message in partial.into_iter().chain(synthetic) {
                    self.record(Record::Message {
                        ts: Utc::now(),
                        message,
                    });
                }
                if let Some(usage) = usage {
                    self.record(Record::Usage {
                        ts: Utc::now(),
                        usage,
                    });
                }
                self.end_turn(turn, TurnStatus::Cancelled, None);
                TurnOutcome::Cancelled
            }
            Stop::Failed {
                kind,
                message,
                partial,
            } => {
                events.emit(Event::Error {
                    kind,
                    message: message.clone(),
                });
                if let Some(partial) = partial {
                    self.push_recorded(partial);
                }
                for synthetic in self.repair_tagged() {
                    self.record(Record::Message {
                        ts: Utc::now(),
                        message: synthetic,
                    });
                }
                if let Some(usage) = usage {
                    self.record(Record::Usage {
                        ts: Utc::now(),
                        usage,
                    });
                }
                self.end_turn(
                    turn,
                    TurnStatus::Error,
                    Some(TurnError {
                        kind,
                        message: message.clone(),
                    }),
                );
                TurnOutcome::Failed { kind, message }
            }
        }
    }

    /// `repair_history`, with the synthetic results of MCP calls naming their server.
    fn repair_tagged(&mut self) -> Vec<Message> {
        let mut synthetic = repair_history(&mut self.messages);
        let count = synthetic.len();
        for message in synthetic.iter_mut() {
            if let Message::Tool { name, mcp, .. } = message {
                *mcp = self.mcp_routes.get(name.as_str()).map(|route| {
                    Box::new(McpResult {
                        server: route.server.clone(),
                        images: Vec::new(),
                    })
                });
            }
        }
        // The copies at the end of the history are the ones the next request sends.
        let start = self.messages.len() - count;
        self.messages[start..].clone_from_slice(&synthetic);
        synthetic
    }

    fn end_turn(&self, turn: u64, status: TurnStatus, error: Option<TurnError>) {
        if let Some(recorder) = &self.recorder {
            recorder.append_sync(Record::TurnEnd {
                ts: Utc::now(),
                turn,
                status,
                error,
            });
        }
    }
}

/// What a terminal call runs: its `command`, else the raw arguments.
fn command_text(call: &ToolCall) -> String {
    call.arguments_value()
        .get("command")
        .and_then(|c| c.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| call.arguments.clone())
}

/// Asks the user through the broker. None when the turn was cancelled while waiting.
async fn ask(
    broker: &ApprovalBroker,
    call: &ToolCall,
    command: String,
    reason: String,
    events: &TokenBatcher<'_>,
    cancel: &CancellationToken,
) -> Option<bool> {
    let id = uuid::Uuid::now_v7().to_string();
    let answer = broker.register(&id);
    events.emit(Event::ApprovalRequest {
        id: id.clone(),
        tool_call_id: call.id.clone(),
        command,
        reason,
    });
    match answer.or_cancel(cancel).await {
        Ok(Ok(approved)) => Some(approved),
        // The broker dropped the request: nobody can answer, so it is a no.
        Ok(Err(_)) => Some(false),
        Err(Cancelled) => {
            broker.withdraw(&id);
            None
        }
    }
}

fn error_output(content: String) -> ToolOutput {
    ToolOutput {
        content,
        is_error: true,
        todos_changed: false,
    }
}

/// The partial reply worth keeping: text that streamed (never an empty text block), complete
/// thinking blocks (signed), and no tool calls (they never ran and were never shown).
fn partial_message(partial: Option<Message>, streamed: String) -> Option<Message> {
    let (content, thinking) = match partial {
        Some(Message::Assistant {
            content, thinking, ..
        }) => (content, thinking),
        Some(Message::User { .. } | Message::Tool { .. }) | None => (String::new(), Vec::new()),
    };
    let content = if content.len() >= streamed.len() {
        content
    } else {
        streamed
    };
    if content.trim().is_empty() {
        return None;
    }
    let thinking = thinking
        .into_iter()
        .filter(|t| t.signature.is_some() || t.redacted.is_some())
        .collect();
    Some(Message::Assistant {
        content,
        thinking,
        tool_calls: Vec::new(),
        partial: true,
    })
}

fn add_usage(total: &mut Option<Usage>, more: Option<Usage>) {
    let Some(more) = more else { return };
    match total {
        None => *total = Some(more),
        Some(sum) => {
            sum.input_tokens += more.input_tokens;
            sum.output_tokens += more.output_tokens;
            sum.cache_read_tokens = match (sum.cache_read_tokens, more.cache_read_tokens) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            };
        }
    }
}
