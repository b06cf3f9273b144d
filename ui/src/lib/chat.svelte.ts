// Chat state: one Conversation per session on screen or still running. Events from the turn's
// Channel are reduced here; components only read. Streaming text is appended to one item's
// string field, so a token re-renders that item alone, never the history.

import * as api from "./api";
import { requestFrame } from "./frame";
import type {
  AskKind,
  CommandError,
  Decision,
  Event,
  MessagePage,
  SessionDetail,
  StoredMessage,
  TodoItem,
  ToolImage,
  Usage,
} from "./api";

/** Messages asked of the backend at a time for a past session: opening a huge log transfers only its end. */
export const HISTORY_PAGE = 400;

export type TurnStatus = "idle" | "running" | "stopping" | "stopped" | "done" | "error";

export type ToolState = "running" | "ok" | "error" | "unanswered";

export interface Banner {
  title: string;
  message: string;
  hint: string;
}

export interface Approval {
  id: string;
  tool_call_id: string;
  command: string;
  reason: string;
  kind: AskKind;
  tool: string;
  choices: Decision[];
}

let keySeq = 0;
const nextKey = () => `k${++keySeq}`;

export class UserItem {
  readonly kind = "user";
  readonly key = nextKey();
  readonly text: string;
  /** Its number in the session's messages (0 is the first): known once the turn started. Editing it forks there. */
  index = $state<number | null>(null);
  constructor(text: string, index: number | null = null) {
    this.text = text;
    this.index = index;
  }
}

export class AssistantItem {
  readonly kind = "assistant";
  readonly key = nextKey();
  /** The message it shows (loaded from history), to open a session at a search hit. */
  index: number | null = null;
  reasoning = $state("");
  /** Cut short by a cancel or an error. */
  partial = $state(false);
  /** Still receiving tokens. */
  streaming = $state(false);

  // The text as the pieces that streamed in, joined only when the whole is read: a renderer
  // takes what it has not seen yet (`since`), so a long reply is never copied whole per token
  // or per frame. `#version` makes readers reactive.
  #version = $state(0);
  #pieces: string[] = [];
  #length = 0;

  /** The whole text. */
  get text(): string {
    void this.#version;
    if (this.#pieces.length > 1) this.#pieces = [this.#pieces.join("")];
    return this.#pieces[0] ?? "";
  }

  set text(value: string) {
    this.#pieces = value ? [value] : [];
    this.#length = value.length;
    this.#version++;
  }

  /** Characters so far. */
  get length(): number {
    void this.#version;
    return this.#length;
  }

  append(piece: string): void {
    if (!piece) return;
    this.#pieces.push(piece);
    this.#length += piece.length;
    this.#version++;
  }

  /** The text after its first `from` characters. */
  since(from: number): string {
    void this.#version;
    let start = this.#length;
    let i = this.#pieces.length;
    while (i > 0 && start > from) {
      i--;
      start -= this.#pieces[i].length;
    }
    const tail = this.#pieces.slice(i);
    // Many small pieces are kept as one from here on, so a later call walks fewer.
    if (tail.length > 64) this.#pieces.splice(i, tail.length, tail.join(""));
    return (tail.length === 1 ? tail[0] : tail.join("")).slice(Math.max(0, from - start));
  }
}

export class ToolItem {
  readonly kind = "tool";
  readonly key = nextKey();
  /** The message of its call (loaded from history). */
  index: number | null = null;
  readonly id: string;
  readonly name: string;
  readonly args: unknown;
  state = $state<ToolState>("running");
  result = $state<string | null>(null);
  /** The MCP server behind the tool (MCP tools only). */
  server = $state<string | null>(null);
  images = $state<ToolImage[]>([]);
  constructor(id: string, name: string, args: unknown, server: string | null = null) {
    this.id = id;
    this.name = name;
    this.args = args;
    this.server = server;
  }
}

export class NoticeItem {
  readonly kind = "notice";
  readonly key = nextKey();
  readonly tone: "retry" | "warning" | "info";
  readonly text: string;
  /** A retry notice spins until the retried request answers. */
  active = $state(false);
  constructor(tone: "retry" | "warning" | "info", text: string) {
    this.tone = tone;
    this.text = text;
  }
}

export type Item = UserItem | AssistantItem | ToolItem | NoticeItem;

/** Items built from a page of earlier messages, and where that page starts. */
export interface EarlierPage {
  items: Item[];
  firstIndex: number;
}

/** What to do about each failure kind, shown under the backend's message. */
export function hintFor(kind: string): string {
  switch (kind) {
    case "auth":
      return "Check the API key in Settings (or set TALARIA_API_KEY), then send again.";
    case "http":
      return "The provider refused the request. Check the model name and base URL in Settings, then send again.";
    case "network":
      return "Could not reach the provider. Check that the server is running and the base URL in Settings is right.";
    case "timeout":
      return "The reply took longer than the total timeout. Send again, or raise “timeout” in Settings.";
    case "stall":
      return "The provider stopped sending data. Send again, or raise “stall timeout” in Settings.";
    case "protocol":
      return "The provider sent a reply Talaria could not read. Send again; if it repeats, try another model or server.";
    case "max_iterations":
      return "The agent reached its step limit. Send “continue” to go on, or raise “max iterations” in Settings.";
    case "io":
      return "A file could not be read or written. Check free disk space and the permissions of the data folder.";
    case "config":
      return "Open Settings and fix the value named above.";
    case "busy":
      return "Another Talaria window or a `talaria exec` is writing this session. Wait for it to finish, or start a new session.";
    case "not_found":
      return "The session is no longer in the sessions folder; it may have been deleted or moved.";
    case "corrupt":
      return "The session log is damaged beyond reading. Other sessions are not affected.";
    case "index":
      return "The search index could not be used. Close Talaria, delete index.sqlite in the data folder, and start again: it is rebuilt from the logs.";
    case "watch":
      return "Talaria cannot follow the sessions folder; the list is refreshed every few seconds instead.";
    default:
      return "";
  }
}

const TITLES: Record<string, string> = {
  auth: "The provider rejected the API key",
  http: "The provider returned an error",
  network: "Network problem",
  timeout: "The reply timed out",
  stall: "The reply stalled",
  protocol: "Unexpected reply from the provider",
  max_iterations: "Step limit reached",
  io: "File error",
  config: "Settings need attention",
  busy: "The session is busy",
  not_found: "Session not found",
  ambiguous: "Several sessions match",
  corrupt: "The session log is damaged",
  index: "The search index failed",
  watch: "Live updates are off",
};

export function bannerFor(kind: string, message: string): Banner {
  // Backend messages usually say what to do already; add ours only when this one does not.
  const advises = /settings|TALARIA_|--[a-z]|try again|send again/i.test(message);
  return { title: TITLES[kind] ?? "Something went wrong", message, hint: advises ? "" : hintFor(kind) };
}

export function retryText(attempt: number, maxAttempts: number, delayMs: number): string {
  const seconds = Math.max(0, Math.round(delayMs / 100) / 10);
  return `retrying in ${seconds}s (attempt ${attempt}/${maxAttempts})`;
}

/** One session as the chat pane shows it. */
export class Conversation {
  sessionId = $state<string | null>(null);
  path = $state<string | null>(null);
  title = $state("");
  items = $state<Item[]>([]);
  todos = $state<TodoItem[]>([]);
  status = $state<TurnStatus>("idle");
  banner = $state<Banner | null>(null);
  approvals = $state<Approval[]>([]);
  /** Loaded from history and not yet continued: the composer is replaced by a Continue bar. */
  past = $state(false);
  skippedLines = $state(0);
  /** Index in the whole conversation of the oldest loaded message: earlier ones are fetched on demand. */
  firstIndex = $state(0);
  /** An earlier page is being fetched. */
  loadingEarlier = $state(false);
  /** The folder the session works in; for a new session, the one chosen for it (null: settings'). */
  workdir = $state<string | null>(null);
  /** Index just past the newest loaded message, and how many the session has: opened at a search hit, later ones are fetched on demand. */
  lastIndex = $state(0);
  total = $state(0);
  loadingLater = $state(false);
  /** The message to bring into view once shown (a search hit). */
  focusIndex = $state<number | null>(null);
  /** The stored session's status when opened from history (`interrupted` says its last turn never ended). */
  storedStatus = $state<string | null>(null);
  /** Set for a fork: the session it came from. */
  forkedFrom = $state<{ id: string; title: string; message_index: number; exists: boolean } | null>(null);
  /** The user message whose editor should open (Up in an empty box edits the last one). */
  editing = $state<string | null>(null);
  /** Tokens of the last finished turn, and of the whole session, as the provider reported them. */
  turnUsage = $state<Usage | null>(null);
  sessionUsage = $state<Usage | null>(null);
  /**
   * False from a turn's end until two frames later. What shows only between turns (edit and
   * regenerate buttons, the token counts) waits for it, so the end of a long reply is drawn over
   * three frames (status and composer, then the reply's last blocks, then these) rather than
   * one long one.
   */
  settled = $state(true);

  #open: AssistantItem | null = null;
  #tools = new Map<string, ToolItem>();
  #cancelWhenKnown = false;
  #retrying: NoticeItem | null = null;

  get busy(): boolean {
    return this.status === "running" || this.status === "stopping";
  }

  /** Reduces one backend event. Exhaustive: a new Event variant fails to compile here. */
  apply(event: Event): void {
    if (this.#retrying && event.type !== "retry") {
      this.#retrying.active = false;
      this.#retrying = null;
    }
    switch (event.type) {
      case "session":
        this.#setSession(event.id, event.path);
        break;
      case "turn_started": {
        if (this.status !== "stopping") this.status = "running";
        const user = this.#lastUser();
        if (user && user.index === null && event.message_index !== undefined) user.index = event.message_index;
        break;
      }
      case "token":
        this.#assistant().append(event.text);
        break;
      case "reasoning":
        this.#assistant().reasoning += event.text;
        break;
      case "tool_call": {
        this.#closeAssistant(false);
        const item = new ToolItem(event.id, event.name, event.arguments, event.server ?? null);
        this.#tools.set(event.id, item);
        this.items.push(item);
        break;
      }
      case "tool_result": {
        let item = this.#tools.get(event.id);
        if (!item) {
          item = new ToolItem(event.id, event.name, null);
          this.#tools.set(event.id, item);
          this.items.push(item);
        }
        item.result = event.content;
        item.state = event.is_error ? "error" : "ok";
        if (event.server) item.server = event.server;
        item.images = event.images ?? [];
        break;
      }
      case "todo":
        this.todos = event.todos;
        break;
      case "approval_request":
        this.approvals.push({
          id: event.id,
          tool_call_id: event.tool_call_id,
          command: event.command,
          reason: event.reason,
          kind: event.kind ?? "command",
          tool: event.tool ?? "terminal",
          choices: event.choices ?? ["once", "deny"],
        });
        break;
      case "notice":
        this.items.push(new NoticeItem("info", event.message));
        break;
      case "retry": {
        this.#closeAssistant(false);
        if (this.#retrying) this.#retrying.active = false;
        const notice = new NoticeItem(
          "retry",
          `${retryText(event.attempt, event.max_attempts, event.delay_ms)}: ${event.reason}`,
        );
        notice.active = true;
        this.items.push(notice);
        this.#retrying = notice;
        break;
      }
      case "storage_error":
        this.items.push(
          new NoticeItem(
            "warning",
            `The session log could not be written (${event.message}). The chat goes on in memory and Talaria keeps retrying; check free space and permissions of ${event.path}.`,
          ),
        );
        break;
      case "done":
        this.#finish("done", false);
        if (event.usage) {
          this.turnUsage = event.usage;
          this.sessionUsage = addUsage(this.sessionUsage, event.usage);
        }
        break;
      case "error":
        this.#finish("error", true);
        this.banner = bannerFor(event.kind, event.message);
        break;
      case "cancelled":
        this.#finish("stopped", true);
        break;
      default: {
        const unhandled: never = event;
        console.warn("talaria: unknown event", unhandled);
      }
    }
  }

  /** Sends a prompt. Returns once the backend accepted the turn; events arrive afterwards. */
  async send(prompt: string): Promise<void> {
    const text = prompt.trim();
    if (!text || this.busy) return;
    this.past = false;
    this.banner = null;
    this.#cancelWhenKnown = false;
    this.#closeAssistant(false);
    this.items.push(new UserItem(text));
    if (!this.title) this.title = text.split("\n")[0].slice(0, 80);
    this.status = "running";
    try {
      const folder = this.sessionId === null ? this.workdir : null;
      const started = await api.startTurn(this.sessionId, text, (event) => this.apply(event), folder);
      this.#setSession(started.session_id, started.path);
      this.workdir = started.workdir;
    } catch (error) {
      this.fail(error as CommandError);
      this.status = "error";
    }
  }

  /** Stop pressed: `stopping` at once, `stopped` when the `cancelled` event arrives. */
  async stop(): Promise<void> {
    if (this.status !== "running") return;
    this.status = "stopping";
    if (this.sessionId === null) {
      this.#cancelWhenKnown = true;
      return;
    }
    await this.#cancel(this.sessionId);
  }

  async answerApproval(id: string, decision: Decision): Promise<void> {
    this.approvals = this.approvals.filter((a) => a.id !== id);
    if (this.sessionId === null) return;
    try {
      await api.respondApproval(this.sessionId, id, decision);
    } catch (error) {
      this.fail(error as CommandError);
    }
  }

  fail(error: CommandError): void {
    this.banner = bannerFor(error.kind, error.message);
  }

  /** Fills the conversation from a stored session log. */
  load(detail: SessionDetail): void {
    this.sessionId = detail.id;
    this.title = detail.title;
    this.workdir = detail.workdir ?? null;
    this.todos = detail.todos ?? [];
    this.skippedLines = detail.skipped_lines ?? 0;
    this.turnUsage = detail.last_turn_usage ?? null;
    this.sessionUsage = detail.usage ?? null;
    this.past = true;
    this.status = "idle";
    this.#tools.clear();
    this.#open = null;
    this.firstIndex = detail.first_index ?? 0;
    this.items = historyItems(detail.messages, this.#tools, this.firstIndex);
    this.total = detail.total_messages ?? this.firstIndex + detail.messages.length;
    this.lastIndex = this.firstIndex + detail.messages.length;
    this.forkedFrom = detail.forked_from ?? null;
    this.storedStatus = detail.status ?? null;
  }

  /** The newest user message on screen. */
  #lastUser(): UserItem | null {
    for (let i = this.items.length - 1; i >= 0; i--) {
      const item = this.items[i];
      if (item.kind === "user") return item;
    }
    return null;
  }

  /** The user message whose reply "Regenerate" would redo: the last one, if its number is known. */
  get lastUser(): UserItem | null {
    const user = this.#lastUser();
    return user && user.index !== null ? user : null;
  }

  /** More messages after the loaded ones (opened at a search hit). */
  get hasLater(): boolean {
    return this.lastIndex < this.total;
  }

  /** Fetches and shows the page after the newest loaded message. */
  async fetchLater(limit = HISTORY_PAGE): Promise<void> {
    const id = this.sessionId;
    if (id === null || !this.hasLater || this.loadingLater) return;
    this.loadingLater = true;
    try {
      const page: MessagePage = await api.laterMessages(id, this.lastIndex, limit);
      if (this.sessionId !== id) return;
      // A page may reach back to keep tool results with their call: skip what is shown.
      const skip = Math.max(0, this.lastIndex - page.first_index);
      const fresh = page.messages.slice(skip);
      this.items = this.items.concat(historyItems(fresh, this.#tools, this.lastIndex));
      this.lastIndex += fresh.length;
      this.total = page.total_messages;
      if (fresh.length === 0) this.lastIndex = this.total;
    } catch (error) {
      this.fail(error as CommandError);
    } finally {
      this.loadingLater = false;
    }
  }

  /**
   * Fetches the page of messages before the oldest loaded one and builds its items, without
   * adding them: the caller prepends them with `prepend` in the same step as it moves its window.
   * Null when there is nothing earlier, a fetch is already running, or it failed (banner shown).
   */
  async fetchEarlier(limit = HISTORY_PAGE): Promise<EarlierPage | null> {
    const id = this.sessionId;
    if (id === null || this.firstIndex <= 0 || this.loadingEarlier) return null;
    this.loadingEarlier = true;
    try {
      const page: MessagePage = await api.sessionMessages(id, this.firstIndex, limit);
      if (this.sessionId !== id) return null;
      // Pages never start with a tool result, so the page's own calls are all its results need.
      const items = historyItems(page.messages, new Map(), page.first_index);
      // A page that does not reach further back (should not happen) must not make the button loop.
      const firstIndex = page.first_index < this.firstIndex ? page.first_index : 0;
      return { items, firstIndex };
    } catch (error) {
      this.fail(error as CommandError);
      return null;
    } finally {
      this.loadingEarlier = false;
    }
  }

  /** Puts a fetched earlier page above what is loaded. */
  prepend(page: EarlierPage): void {
    this.items = page.items.concat(this.items);
    this.firstIndex = page.firstIndex;
  }

  #setSession(id: string, path: string): void {
    this.sessionId = id;
    this.path = path;
    if (this.#cancelWhenKnown) {
      this.#cancelWhenKnown = false;
      void this.#cancel(id);
    }
  }

  async #cancel(id: string): Promise<void> {
    try {
      await api.cancelTurn(id);
    } catch (error) {
      this.fail(error as CommandError);
    }
  }

  #assistant(): AssistantItem {
    if (this.#open) return this.#open;
    const item = new AssistantItem();
    item.streaming = true;
    this.items.push(item);
    this.#open = item;
    return item;
  }

  #closeAssistant(partial: boolean): void {
    if (!this.#open) return;
    this.#open.streaming = false;
    if (partial) this.#open.partial = true;
    this.#open = null;
  }

  #finish(status: TurnStatus, partial: boolean): void {
    this.#closeAssistant(partial);
    this.approvals = [];
    this.#cancelWhenKnown = false;
    this.status = status;
    this.settled = false;
    requestFrame(() => requestFrame(() => (this.settled = true)));
  }
}

/** `total` plus `more`; cache reads stay unknown only while both are. */
export function addUsage(total: Usage | null, more: Usage): Usage {
  if (!total) return { ...more };
  const cached =
    total.cache_read_tokens == null && more.cache_read_tokens == null
      ? undefined
      : (total.cache_read_tokens ?? 0) + (more.cache_read_tokens ?? 0);
  return {
    input_tokens: total.input_tokens + more.input_tokens,
    output_tokens: total.output_tokens + more.output_tokens,
    ...(cached === undefined ? {} : { cache_read_tokens: cached }),
  };
}

/** A token count for the header: 950, 12.3k, 1.2M. */
export function tokenCount(n: number): string {
  if (n < 1000) return String(n);
  if (n < 999_500) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0).replace(/\.0$/, "")}k`;
  return `${(n / 1_000_000).toFixed(1).replace(/\.0$/, "")}M`;
}

function parseArgs(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Turns stored messages into chat items; tool results attach to their call's card. `firstIndex`
 * is the number of `messages[0]` in the session: items remember the message they show.
 */
export function historyItems(messages: StoredMessage[], tools: Map<string, ToolItem>, firstIndex = 0): Item[] {
  const items: Item[] = [];
  for (const [i, message] of messages.entries()) {
    const index = firstIndex + i;
    if (message.role === "user") {
      items.push(new UserItem(message.content, index));
    } else if (message.role === "assistant") {
      const reasoning = (message.thinking ?? []).map((t) => t.text).join("\n\n");
      if (message.content || reasoning || message.partial) {
        const item = new AssistantItem();
        item.text = message.content;
        item.reasoning = reasoning;
        item.partial = message.partial ?? false;
        item.index = index;
        items.push(item);
      }
      for (const call of message.tool_calls ?? []) {
        const tool = new ToolItem(call.id, call.name, parseArgs(call.arguments));
        tool.state = "unanswered";
        tool.index = index;
        tools.set(call.id, tool);
        items.push(tool);
      }
    } else if (message.role === "tool") {
      const id = message.tool_call_id ?? "";
      let tool = tools.get(id);
      if (!tool) {
        tool = new ToolItem(id, message.name ?? "tool", null);
        tool.index = index;
        tools.set(id, tool);
        items.push(tool);
      }
      tool.result = message.content;
      tool.state = message.is_error ? "error" : "ok";
      if (message.mcp) {
        tool.server = message.mcp.server;
        tool.images = message.mcp.images ?? [];
      }
    }
  }
  return items;
}

/** The tool's own name: an MCP tool's model name without its `SERVER__` prefix. */
export function toolLabel(name: string, server: string | null): string {
  if (server === null) return name;
  const at = name.indexOf("__");
  return at > 0 ? name.slice(at + 2) : name;
}

/** A one-line description of a tool call's arguments for the card header. */
export function summarizeArgs(name: string, args: unknown): string {
  if (args === null || args === undefined) return "";
  if (typeof args === "string") return oneLine(args);
  if (typeof args !== "object") return oneLine(String(args));
  const a = args as Record<string, unknown>;
  if (name === "todo") {
    const todos = Array.isArray(a.todos) ? a.todos.length : null;
    if (todos === null) return "read the list";
    return `${todos} item${todos === 1 ? "" : "s"}${a.merge ? " (merge)" : ""}`;
  }
  for (const key of ["command", "pattern", "path", "query", "url"]) {
    const value = a[key];
    if (typeof value === "string") {
      const extra = key === "pattern" && typeof a.path === "string" ? ` in ${a.path}` : "";
      return oneLine(value + extra);
    }
  }
  return oneLine(JSON.stringify(args));
}

function oneLine(text: string): string {
  // Only the start shows: do not flatten a 100 KB argument to cut it at 120 characters.
  const flat = text.slice(0, 400).replace(/\s+/g, " ").trim();
  return flat.length > 120 ? `${flat.slice(0, 119)}…` : flat;
}
