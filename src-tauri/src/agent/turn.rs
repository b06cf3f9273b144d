//! One turn of the loop. Every await is raced against the turn's token; on cancel the
//! `Cancelled` event goes out first and the bookkeeping (partial text, synthetic tool results,
//! log records) follows without any wait, since the recorder API is a channel send.

use chrono::Utc;

use super::approval::{ApprovalBroker, ApprovalPolicy, Decision, Verdict, verdict};
use super::batcher::TokenBatcher;
use super::{Agent, TurnOutcome};
use crate::cancel::{CancellationToken, Cancelled, OrCancel};
use crate::event::{ErrorKind, Event, EventSink, Usage};
use crate::history::{Record, TurnError, TurnStatus};
use crate::mcp::Route;
use crate::message::{McpResult, Message, ToolCall, ToolImage};
use crate::provider::{Completion, ModelError, ModelRequest, StreamDelta};
use crate::repair::{is_empty_assistant, repair_history};
use crate::safety::{ApprovalLevel, AskKind};
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
        let message_index = self.messages.len() as u64 - 1;
        events.emit(Event::TurnStarted {
            turn,
            message_index,
        });
        self.notice_missing_sandbox(&events, approvals);

        let mut usage: Option<Usage> = None;
        let stop = self.run_loop(&events, approvals, &cancel, &mut usage).await;
        self.finish(turn, stop, usage, &events)
    }

    /// Once per conversation: what the user should know about this setup (no sandbox, the
    /// data folder inside the working folder).
    fn notice_missing_sandbox(&mut self, events: &TokenBatcher<'_>, approvals: &ApprovalPolicy) {
        if self.sandbox_noticed {
            return;
        }
        self.sandbox_noticed = true;
        for message in self.safety.notices(&self.workdir, &self.options.data_dir) {
            events.emit(Event::Notice { message });
        }
        let Err(reason) = &self.safety.sandbox else {
            return;
        };
        if self.options.no_sandbox {
            return;
        }
        let consequence = match approvals {
            ApprovalPolicy::Ask(_) => {
                "every command that is not known to be read-only asks first, whatever the approval level"
            }
            ApprovalPolicy::DenyAll => {
                "commands that are not known to be read-only are refused; pass --approve-all to run them without a sandbox"
            }
            ApprovalPolicy::ApproveAll => "commands run without a sandbox, as --approve-all asks",
        };
        events.emit(Event::Notice {
            message: format!("No sandbox for terminal commands: {reason}. So {consequence}."),
        });
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
                max_tokens: self.settings.max_tokens,
                // Thinking is Anthropic's; the OpenAI-compatible request has no such field.
                thinking_budget: self.settings.thinking_budget,
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
                ToolOutput::error(format!(
                    "the tool {:?} is not available now: its MCP server is switched off, failed, \
                     or is no longer configured; use the tools you were given",
                    call.name
                )),
                Vec::new(),
            ));
        }
        let output = self
            .run_builtin_tool(call, events, approvals, cancel)
            .await?;
        Some((output, Vec::new()))
    }

    /// A built-in tool after its safety check: asks when the check says so, runs it (in the
    /// sandbox for commands), and offers to run it outside when the sandbox stopped it.
    async fn run_builtin_tool(
        &mut self,
        call: &ToolCall,
        events: &TokenBatcher<'_>,
        approvals: &ApprovalPolicy,
        cancel: &CancellationToken,
    ) -> Option<ToolOutput> {
        let mut allow_secret = false;
        if let Some(concern) = self.safety.concern(call, &self.workdir) {
            let granted = concern
                .grant_key
                .as_ref()
                .is_some_and(|key| self.grants.contains(key));
            match verdict(&concern, approvals, &self.safety, granted) {
                Verdict::Run => {}
                Verdict::Refuse(message) => return Some(ToolOutput::error(message)),
                Verdict::Ask => {
                    let ApprovalPolicy::Ask(broker) = approvals else {
                        return Some(ToolOutput::error(concern.reason));
                    };
                    let choices = Decision::choices(concern.kind, concern.grant_key.is_some());
                    let question = Question {
                        command: command_text(call),
                        kind: concern.kind,
                        reason: concern.reason.clone(),
                        choices,
                    };
                    match ask(broker, call, question, events, cancel).await? {
                        Decision::Deny => {
                            return Some(ToolOutput::error(format!(
                                "denied by the user ({}); do not retry this call, ask the user or choose another way",
                                concern.reason
                            )));
                        }
                        Decision::Session => {
                            if let Some(key) = concern.grant_key.clone() {
                                self.grants.insert(key);
                            }
                        }
                        Decision::Once => {}
                    }
                }
            }
            allow_secret = concern.secret;
        }
        let output = self.invoke(call, cancel, allow_secret, false).await;
        if !output.sandbox_denied {
            return Some(output);
        }
        self.escalate(call, output, events, approvals, cancel).await
    }

    /// A sandboxed command failed because the sandbox stopped it: the user may let it run again
    /// outside the sandbox (desktop), or is told how (exec).
    async fn escalate(
        &mut self,
        call: &ToolCall,
        mut output: ToolOutput,
        events: &TokenBatcher<'_>,
        approvals: &ApprovalPolicy,
        cancel: &CancellationToken,
    ) -> Option<ToolOutput> {
        let note = match approvals {
            ApprovalPolicy::Ask(broker) if self.safety.level != ApprovalLevel::Never => {
                let question = Question {
                    command: command_text(call),
                    kind: AskKind::Escalate,
                    reason: format!(
                        "the sandbox stopped it: it may only write inside the working folder and temp folders. {}",
                        denied_line(&output.content)
                    ),
                    choices: Decision::choices(AskKind::Escalate, false),
                };
                match ask(broker, call, question, events, cancel).await? {
                    Decision::Once | Decision::Session => {
                        let mut again = self.invoke(call, cancel, false, true).await;
                        again.content = format!(
                            "[the sandbox stopped the first run; the user allowed running it again outside the sandbox]\n{}",
                            again.content
                        );
                        return Some(again);
                    }
                    Decision::Deny => {
                        "[the sandbox stopped this command, and the user chose not to run it outside the sandbox]"
                    }
                }
            }
            ApprovalPolicy::Ask(_) => {
                "[the sandbox stopped this command: it may only write inside the working folder and temp folders. The user can add writable folders in Settings → Safety]"
            }
            ApprovalPolicy::ApproveAll | ApprovalPolicy::DenyAll => {
                "[the sandbox stopped this command: it may only write inside the working folder and temp folders; the user can rerun talaria exec with --no-sandbox to allow it]"
            }
        };
        output.content.push('\n');
        output.content.push_str(note);
        Some(output)
    }

    /// Runs the tool itself. Tools watch the token and return promptly after a cancel (a file
    /// write that had begun committing returns what it did), so this await is not raced.
    async fn invoke(
        &mut self,
        call: &ToolCall,
        cancel: &CancellationToken,
        allow_secret: bool,
        unsandboxed: bool,
    ) -> ToolOutput {
        let ctx = ToolContext {
            allow_secret,
            unsandboxed,
            ..ToolContext::new(&self.workdir, &mut self.todos, cancel, &self.safety)
        };
        crate::tools::run(call, ctx).await
    }

    /// An MCP tool: the first call to an untrusted server in a session asks (unless the user
    /// chose never to be asked), then the call goes to the server. A cancel drops the call,
    /// which tells the server.
    async fn run_mcp_tool(
        &mut self,
        call: &ToolCall,
        route: &Route,
        events: &TokenBatcher<'_>,
        approvals: &ApprovalPolicy,
        cancel: &CancellationToken,
    ) -> Option<(ToolOutput, Vec<ToolImage>)> {
        let refused = |text: String| Some((ToolOutput::error(text), Vec::new()));
        let allowed = route.trusted || self.mcp_approved.contains(&route.server);
        if !allowed {
            match approvals {
                ApprovalPolicy::ApproveAll => {}
                ApprovalPolicy::DenyAll => {
                    return refused(format!(
                        "refused: the tools of the MCP server {:?} need approval; run with \
                         --approve-all, or set \"trusted\": true for it in mcp.json",
                        route.server
                    ));
                }
                ApprovalPolicy::Ask(_) if self.safety.level == ApprovalLevel::Never => {}
                ApprovalPolicy::Ask(broker) => {
                    let question = Question {
                        command: format!("{} → {} {}", route.server, route.tool, call.arguments),
                        kind: AskKind::Mcp,
                        reason: format!(
                            "a tool of the MCP server {:?}, not used yet in this session; the \
                             server runs with your user's rights",
                            route.server
                        ),
                        choices: Decision::choices(AskKind::Mcp, true),
                    };
                    match ask(broker, call, question, events, cancel).await? {
                        Decision::Deny => {
                            return refused(format!(
                                "denied by the user: the tools of the MCP server {:?} may not run \
                                 now; do without them or ask the user",
                                route.server
                            ));
                        }
                        Decision::Session => {
                            self.mcp_approved.insert(route.server.clone());
                        }
                        Decision::Once => {}
                    }
                }
            }
        }
        let mcp = self.mcp.clone()?;
        let output = mcp
            .call(route, &call.arguments)
            .or_cancel(cancel)
            .await
            .ok()?;
        let mut result = if output.is_error {
            ToolOutput::error(output.content)
        } else {
            ToolOutput::ok(output.content)
        };
        // A server's output is redacted like a built-in tool's: it may echo the key.
        self.safety.redactor.redact_in_place(&mut result.content);
        Some((result, output.images))
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

/// What the dialog asks.
struct Question {
    /// What the call does, as the user reads it.
    command: String,
    kind: AskKind,
    reason: String,
    choices: Vec<Decision>,
}

/// What a built-in call does, for the dialog: its `command`, else the tool and its `path`,
/// else the tool and its raw arguments.
fn command_text(call: &ToolCall) -> String {
    let arguments = call.arguments_value();
    let text = |key: &str| arguments.get(key).and_then(|c| c.as_str());
    match (text("command"), text("path")) {
        (Some(command), _) => command.to_string(),
        (None, Some(path)) => format!("{} {path}", call.name),
        (None, None) => format!("{} {}", call.name, call.arguments),
    }
}

/// Asks the user through the broker. None when the turn was cancelled while waiting.
async fn ask(
    broker: &ApprovalBroker,
    call: &ToolCall,
    question: Question,
    events: &TokenBatcher<'_>,
    cancel: &CancellationToken,
) -> Option<Decision> {
    let id = uuid::Uuid::now_v7().to_string();
    let answer = broker.register(&id);
    events.emit(Event::ApprovalRequest {
        id: id.clone(),
        tool_call_id: call.id.clone(),
        command: question.command,
        reason: question.reason,
        kind: question.kind,
        tool: call.name.clone(),
        choices: question.choices,
    });
    match answer.or_cancel(cancel).await {
        Ok(Ok(decision)) => Some(decision),
        // The broker dropped the request: nobody can answer, so it is a no.
        Ok(Err(_)) => Some(Decision::Deny),
        Err(Cancelled) => {
            broker.withdraw(&id);
            None
        }
    }
}

/// The line of the output that shows what the sandbox refused.
fn denied_line(output: &str) -> String {
    output
        .lines()
        .find(|line| crate::safety::sandbox::looks_denied(line))
        .map(|line| format!("It said: {}", line.trim()))
        .unwrap_or_default()
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
    if let Some(more) = more {
        Usage::accumulate(total, &more);
    }
}
