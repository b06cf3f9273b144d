// Every call into the Rust backend goes through this module. The types mirror the Rust ones
// (src-tauri/src/event.rs, config.rs, todo.rs, message.rs and the desktop adapter's replies).

import { Channel, invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export type ErrorKind =
  | "auth"
  | "http"
  | "network"
  | "timeout"
  | "stall"
  | "protocol"
  | "max_iterations"
  | "io"
  | "config";

export type TodoStatus = "pending" | "in_progress" | "completed" | "cancelled";

export interface TodoItem {
  id: string;
  content: string;
  status: TodoStatus;
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens?: number;
}

/** What arrives on the turn's Channel: Rust `Event`, serde tag "type", snake_case. */
export type Event =
  | { type: "session"; id: string; path: string }
  | { type: "turn_started"; turn: number }
  | { type: "token"; text: string }
  | { type: "reasoning"; text: string }
  | { type: "tool_call"; id: string; name: string; arguments: unknown }
  | { type: "tool_result"; id: string; name: string; content: string; is_error: boolean }
  | { type: "todo"; todos: TodoItem[] }
  | { type: "approval_request"; id: string; tool_call_id: string; command: string; reason: string }
  | { type: "retry"; attempt: number; max_attempts: number; delay_ms: number; reason: string }
  | { type: "storage_error"; kind: ErrorKind; message: string; path: string }
  | { type: "done"; usage?: Usage }
  | { type: "error"; kind: ErrorKind; message: string }
  | { type: "cancelled" };

export type ProviderKind = "openai" | "anthropic";

export interface Settings {
  provider: ProviderKind;
  base_url: string;
  model: string;
  api_key?: string;
  connect_timeout_s: number;
  timeout_s: number;
  stall_timeout_s: number;
  max_iterations: number;
  max_attempts: number;
  workdir: string;
}

export interface AppStatus {
  configured: boolean;
  data_dir: string;
  provider: string;
  model: string;
  base_url: string;
  env_overrides: string[];
  /** Set when the saved settings could not be read; says what to do. */
  settings_warning?: string | null;
}

export interface LocalServer {
  name: string;
  base_url: string;
  models: string[];
}

export type SessionStatus = "running" | "done" | "cancelled" | "error";

export interface SessionSummary {
  id: string;
  path: string;
  title: string;
  created: string;
  updated: string;
  status: SessionStatus | string;
  message_count: number;
}

export interface SearchHit {
  id: string;
  title: string;
  snippet: string;
  score: number;
}

export interface StoredToolCall {
  id: string;
  name: string;
  /** The raw JSON text the model produced. */
  arguments: string;
}

export interface StoredMessage {
  role: "user" | "assistant" | "tool" | string;
  content: string;
  tool_calls?: StoredToolCall[];
  tool_call_id?: string;
  name?: string;
  partial?: boolean;
  is_error?: boolean;
  thinking?: { text: string }[];
}

export interface SessionDetail {
  id: string;
  title: string;
  created: string;
  status?: SessionStatus | string;
  /** The newest messages (all of them unless `tail` was asked for). */
  messages: StoredMessage[];
  /** Index of `messages[0]` in the whole conversation; earlier ones come from `sessionMessages`. */
  first_index: number;
  total_messages: number;
  todos: TodoItem[];
  skipped_lines: number;
}

/** A page of earlier messages; it never starts with a tool result, so its tool calls pair up within it. */
export interface MessagePage {
  messages: StoredMessage[];
  first_index: number;
  total_messages: number;
}

export interface StartedTurn {
  session_id: string;
  path: string;
}

/** Every command error has this shape. */
export interface CommandError {
  kind: string;
  message: string;
}

/** Turns whatever a rejected invoke gave us into a CommandError. */
export function toCommandError(error: unknown): CommandError {
  if (error && typeof error === "object" && "message" in error) {
    const e = error as { kind?: unknown; message?: unknown };
    return {
      kind: typeof e.kind === "string" ? e.kind : "unknown",
      message: String(e.message),
    };
  }
  return { kind: "unknown", message: typeof error === "string" ? error : String(error) };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (error) {
    throw toCommandError(error);
  }
}

export function startTurn(
  sessionId: string | null,
  prompt: string,
  onEvent: (event: Event) => void,
): Promise<StartedTurn> {
  const channel = new Channel<Event>();
  channel.onmessage = onEvent;
  return call<StartedTurn>("start_turn", { sessionId, prompt, onEvent: channel });
}

export const cancelTurn = (sessionId: string) => call<void>("cancel_turn", { sessionId });

export const respondApproval = (sessionId: string, id: string, approved: boolean) =>
  call<void>("respond_approval", { sessionId, id, approved });

export const appStatus = () => call<AppStatus>("app_status");

export const getSettings = () => call<Settings>("get_settings");

export const saveSettings = (settings: Settings) => call<Settings>("save_settings", { settings });

export const detectLocalServers = () => call<LocalServer[]>("detect_local_servers");

export const listSessions = (limit: number, offset: number) =>
  call<SessionSummary[]>("list_sessions", { limit, offset });

export const searchSessions = (query: string, limit: number) =>
  call<SearchHit[]>("search_sessions", { query, limit });

/** Opens a past session; with `tail`, only its newest `tail` messages (a few more so tool results keep their call). */
export const openSession = (id: string, tail: number | null = null) =>
  call<SessionDetail>("open_session", { id, tail });

/** Up to `limit` messages before index `before` (a few more so the page does not start with a tool result). */
export const sessionMessages = (id: string, before: number, limit: number) =>
  call<MessagePage>("session_messages", { id, before, limit });

/** The backend emits `sessions-changed` when a session log appears or changes on disk. */
export interface IndexProgress {
  done: number;
  total: number;
}

/** Progress of the background index catch-up at start-up (a rebuild after an upgrade or loss). */
export function onIndexProgress(handler: (progress: IndexProgress) => void): Promise<UnlistenFn> {
  return listen<IndexProgress>("index-progress", (event) => handler(event.payload));
}

export function onSessionsChanged(handler: (ids: string[]) => void): Promise<UnlistenFn> {
  return listen<{ ids?: string[] }>("sessions-changed", (event) => {
    handler(event.payload?.ids ?? []);
  });
}

/** The About box: this build's version and the folder that holds everything Talaria keeps. */
export interface About {
  version: string;
  data_dir: string;
  /** TALARIA_DATA_DIR chose the folder. */
  data_dir_from_env: boolean;
}

export const about = () => call<About>("about");

/** Opens the data folder in the desktop's file manager. */
export const openDataFolder = () => call<void>("open_data_folder");

/** Quits the app the clean way: running turns stop and every log is written first. */
export const quitApp = () => call<void>("quit_app");
