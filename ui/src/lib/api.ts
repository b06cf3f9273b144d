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
  | { type: "turn_started"; turn: number; message_index?: number }
  | { type: "token"; text: string }
  | { type: "reasoning"; text: string }
  | { type: "tool_call"; id: string; name: string; arguments: unknown; server?: string }
  | {
      type: "tool_result";
      id: string;
      name: string;
      content: string;
      is_error: boolean;
      /** The MCP server that ran the tool (MCP tools only). */
      server?: string;
      images?: ToolImage[];
    }
  | { type: "todo"; todos: TodoItem[] }
  | {
      type: "approval_request";
      id: string;
      tool_call_id: string;
      command: string;
      reason: string;
      kind?: AskKind;
      tool?: string;
      choices?: Decision[];
    }
  | { type: "notice"; message: string }
  | { type: "retry"; attempt: number; max_attempts: number; delay_ms: number; reason: string }
  | { type: "storage_error"; kind: ErrorKind; message: string; path: string }
  | { type: "done"; usage?: Usage }
  | { type: "error"; kind: ErrorKind; message: string }
  | { type: "cancelled" };

/** What an approval dialog is about. */
export type AskKind = "command" | "secret" | "escalate" | "mcp";

/** The user's answer to an approval request. */
export type Decision = "once" | "session" | "deny";
/** An image a tool returned (base64). */
export interface ToolImage {
  mime_type: string;
  data: string;
}

export type ProviderKind = "openai" | "anthropic";

/** How much the app asks before a command runs (the sandbox stays on at every level). */
export type ApprovalLevel = "ask" | "risky" | "never";

export interface Settings {
  provider: ProviderKind;
  base_url: string;
  model: string;
  /** Never filled in by the backend: the key is stored apart (see SettingsView.key). */
  api_key?: string;
  connect_timeout_s: number;
  timeout_s: number;
  stall_timeout_s: number;
  max_iterations: number;
  max_attempts: number;
  /** Longest reply in tokens. */
  max_tokens: number;
  /** Anthropic extended thinking budget in tokens; 0 is off. */
  thinking_budget: number;
  workdir: string;
  approval_level: ApprovalLevel;
  writable_dirs: string[];
  terminal_env: string[];
}

/** A setting the environment decides for this run (shown read-only, never saved). */
export interface EnvOverride {
  field: string;
  var: string;
  /** The value; for the API key only a masked form. */
  value: string;
}

export type KeyStorage = "keyring" | "file";

export interface SandboxInfo {
  available: boolean;
  reason?: string | null;
}

/** What the Settings form shows: saved values and environment values apart. */
export interface SettingsView {
  saved: Settings;
  env: EnvOverride[];
  key: { storage: KeyStorage; saved?: string | null };
  sandbox: SandboxInfo;
  data_dir: string;
  suggested_workdir: string;
}

export interface AppStatus {
  configured: boolean;
  model_ready: boolean;
  workdir_ready: boolean;
  workdir: string;
  workdir_problem?: string | null;
  /** The user's home folder (paths under it are shown as ~/…). */
  home: string;
  data_dir: string;
  provider: string;
  model: string;
  base_url: string;
  env_overrides: string[];
  approval_level: ApprovalLevel;
  sandbox: SandboxInfo;
  key_storage: KeyStorage;
  /** Set when the saved settings could not be read; says what to do. */
  settings_warning?: string | null;
  /** Set when mcp.json could not be read; says what happened and what to do. */
  mcp_warning?: string | null;
}

export interface LocalServer {
  name: string;
  base_url: string;
  models: string[];
}

export type SessionStatus = "running" | "done" | "cancelled" | "error" | "interrupted";

/** Where a fork came from: the session and the message it was cut at. */
export interface ForkOrigin {
  id: string;
  message_index: number;
}

export interface SessionSummary {
  id: string;
  path: string;
  title: string;
  created: string;
  updated: string;
  status: SessionStatus | string;
  message_count: number;
  pinned?: boolean;
  archived?: boolean;
  forked_from?: ForkOrigin | null;
  compressed?: boolean;
}

export interface SearchHit {
  id: string;
  title: string;
  /** Plain text around the best match. */
  snippet: string;
  /** The matched words: [start, end) in characters (code points) of `snippet`. */
  highlights?: [number, number][];
  score: number;
  /** The message the snippet comes from: opening the hit shows it. */
  message_index?: number;
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
  /** MCP tool results: the server that ran the tool and the images it returned. */
  mcp?: { server: string; images?: ToolImage[] };
}

export interface SessionDetail {
  id: string;
  title: string;
  created: string;
  status?: SessionStatus | string;
  /** The folder the session works in. */
  workdir?: string;
  /** The newest messages (all of them unless `tail` was asked for). */
  messages: StoredMessage[];
  /** Index of `messages[0]` in the whole conversation; earlier ones come from `sessionMessages`. */
  first_index: number;
  total_messages: number;
  todos: TodoItem[];
  skipped_lines: number;
  pinned?: boolean;
  archived?: boolean;
  /** Set for a fork: the session it came from (its title, whether it still exists). */
  forked_from?: (ForkOrigin & { title: string; exists: boolean }) | null;
  /** Tokens of the whole session and of its last turn, where the provider reported them. */
  usage?: Usage | null;
  last_turn_usage?: Usage | null;
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
  workdir: string;
}

/** Every command error has this shape; `field` names the setting it is about, if any. */
export interface CommandError {
  kind: string;
  message: string;
  field?: string;
}

/** Turns whatever a rejected invoke gave us into a CommandError. */
export function toCommandError(error: unknown): CommandError {
  if (error && typeof error === "object" && "message" in error) {
    const e = error as { kind?: unknown; message?: unknown; field?: unknown };
    return {
      kind: typeof e.kind === "string" ? e.kind : "unknown",
      message: String(e.message),
      ...(typeof e.field === "string" ? { field: e.field } : {}),
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

/** Starts a turn; `workdir` picks the folder of a new session (null: the one in settings). */
export function startTurn(
  sessionId: string | null,
  prompt: string,
  onEvent: (event: Event) => void,
  workdir: string | null = null,
): Promise<StartedTurn> {
  const channel = new Channel<Event>();
  channel.onmessage = onEvent;
  return call<StartedTurn>("start_turn", { sessionId, prompt, onEvent: channel, workdir });
}

export const cancelTurn = (sessionId: string) => call<void>("cancel_turn", { sessionId });

export const respondApproval = (sessionId: string, id: string, decision: Decision) =>
  call<void>("respond_approval", { sessionId, id, approved: decision !== "deny", decision });

export const appStatus = () => call<AppStatus>("app_status");

export const getSettings = () => call<SettingsView>("get_settings");

/** Saves what the user typed. `apiKey`: undefined keeps the stored key, "" removes it. */
export const saveSettings = (settings: Settings, apiKey?: string) =>
  call<SettingsView>("save_settings", { settings, apiKey: apiKey ?? null });

/** Sets the working folder for new sessions: `path`, or (with `create`) a fresh ~/Talaria. */
export const chooseWorkdir = (path: string | null, create: boolean) =>
  call<string>("choose_workdir", { path, create });

/** Checks a folder for a new session without saving it; resolves to the folder's real path. */
export const checkWorkdir = (path: string) => call<string>("check_workdir", { path });

export const detectLocalServers = () => call<LocalServer[]>("detect_local_servers");

/** A model the provider offers (`name` where the server gives a display name). */
export interface ModelInfo {
  id: string;
  name?: string;
}

/** Test connection: the models the provider lists, asked with the form's values. */
export const listModels = (settings: Settings, apiKey: string | null) =>
  call<ModelInfo[]>("list_models", { settings, apiKey });

/** Which sessions the list shows: the active ones (pinned first), or the archived ones. */
export type ListFilter = "active" | "archived";

export const listSessions = (limit: number, offset: number, filter: ListFilter = "active") =>
  call<SessionSummary[]>("list_sessions", { limit, offset, filter });

export const searchSessions = (query: string, limit: number) =>
  call<SearchHit[]>("search_sessions", { query, limit });

/**
 * Opens a past session; with `tail`, only its newest `tail` messages (a few more so tool results keep their call);
 * with `around`, the messages around that one (a search hit), later ones then come from `laterMessages`.
 */
export const openSession = (id: string, tail: number | null = null, around: number | null = null) =>
  call<SessionDetail>("open_session", { id, tail, around });

/** Up to `limit` messages from index `from` on. */
export const laterMessages = (id: string, from: number, limit: number) =>
  call<MessagePage>("later_messages", { id, from, limit });

export const renameSession = (id: string, title: string) => call<void>("rename_session", { id, title });

export const pinSession = (id: string, pinned: boolean) => call<void>("pin_session", { id, pinned });

export const archiveSession = (id: string, archived: boolean) => call<void>("archive_session", { id, archived });

/** Moves the session to the trash; `undo_ms` is how long Undo is offered. */
export const deleteSession = (id: string) => call<{ id: string; undo_ms: number }>("delete_session", { id });

export const restoreSession = (id: string) => call<void>("restore_session", { id });

export type ExportFormat = "markdown" | "json";

/** Writes the session to `path` (from the save dialog). */
export const exportSession = (id: string, format: ExportFormat, path: string) =>
  call<void>("export_session", { id, format, path });

/** A new session holding the history before user message `messageIndex` of session `id`. */
export const forkSession = (id: string, messageIndex: number) =>
  call<StartedTurn>("fork_session", { id, messageIndex });

export interface StorageStats {
  sessions: number;
  plain_logs: number;
  plain_bytes: number;
  compressed_logs: number;
  compressed_bytes: number;
  compressed_text_bytes: number;
  index_bytes: number;
  trash_logs: number;
  trash_bytes: number;
}

export interface HistorySettings {
  /** Finished sessions idle for more than this many days are compressed; 0: never on their own. */
  compress_after_days: number;
}

export interface Storage {
  stats: StorageStats;
  settings: HistorySettings;
  compacting: boolean;
}

export interface CompactProgress {
  done: number;
  total: number;
  bytes_before: number;
  bytes_after: number;
}

export interface CompactReport {
  compressed: string[];
  skipped: [string, string][];
  failed: [string, string][];
  cancelled: boolean;
  progress: CompactProgress;
}

export const storageStats = () => call<Storage>("storage_stats");

/** Compresses every finished session now; progress arrives on `onProgress`. */
export function compactSessions(onProgress: (progress: CompactProgress) => void): Promise<CompactReport> {
  const channel = new Channel<CompactProgress>();
  channel.onmessage = onProgress;
  return call<CompactReport>("compact_sessions", { onProgress: channel });
}

export const cancelCompaction = () => call<void>("cancel_compaction");

export const saveHistorySettings = (settings: HistorySettings) =>
  call<HistorySettings>("save_history_settings", { settings });

/** How the session list follows the sessions folder. */
export type IndexHealth = { mode: "live" } | { mode: "polling"; reason: string; every_ms: number };

export const indexHealth = () => call<IndexHealth | null>("index_health");

export function onIndexHealth(handler: (health: IndexHealth) => void): Promise<UnlistenFn> {
  return listen<IndexHealth>("index-health", (event) => handler(event.payload));
}

/** Up to `limit` messages before index `before` (a few more so the page does not start with a tool result). */
export const sessionMessages = (id: string, before: number, limit: number) =>
  call<MessagePage>("session_messages", { id, before, limit });

/** One entry of mcp.json, as written (the shape of Claude Desktop's `mcpServers`). */
export interface McpServerEntry {
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  url?: string;
  headers?: Record<string, string>;
  type?: string;
  enabled?: boolean;
  trusted?: boolean;
  startup_timeout_s?: number;
  tool_timeout_s?: number;
}

export type McpState = "disabled" | "starting" | "ready" | "failed" | "stopped";

export interface McpToolView {
  name: string;
  /** The name the model sees (`SERVER__tool`). */
  model_name: string;
  description: string;
}

export interface McpServerView {
  name: string;
  /** Null when the entry cannot be read (see `error`). */
  entry: McpServerEntry | null;
  transport: "stdio" | "http" | "";
  /** The command line or the URL. */
  summary: string;
  enabled: boolean;
  trusted: boolean;
  state: McpState;
  error: string | null;
  stderr: string[];
  /** Seconds until the automatic restart, while one is planned. */
  restart_in_s: number | null;
  tools: McpToolView[];
}

export interface McpOverview {
  path: string | null;
  warning: string | null;
  servers: McpServerView[];
}

export const mcpServers = () => call<McpOverview>("mcp_servers");

export const mcpSetEnabled = (name: string, enabled: boolean) =>
  call<McpOverview>("mcp_set_enabled", { name, enabled });

export const mcpSetTrusted = (name: string, trusted: boolean) =>
  call<McpOverview>("mcp_set_trusted", { name, trusted });

export const mcpRestart = (name: string) => call<McpOverview>("mcp_restart", { name });

/** Adds a server (`original` null) or replaces `original`, which may be renamed to `name`. */
export const mcpSaveServer = (original: string | null, name: string, entry: McpServerEntry) =>
  call<McpOverview>("mcp_save_server", { original, name, entry });

export const mcpRemoveServer = (name: string) => call<McpOverview>("mcp_remove_server", { name });

/** The backend emits `mcp-changed` whenever a server starts, fails, stops or changes its tools. */
export function onMcpChanged(handler: () => void): Promise<UnlistenFn> {
  return listen("mcp-changed", () => handler());
}

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
