// Chat state: one Conversation per session on screen or still running. Events from the turn's
// Channel are reduced here; components only read. Streaming text is appended to one item's
// string field, so a token re-renders that item alone, never the history.

import * as api from "./api";
import type { CommandError, Event, MessagePage, SessionDetail, StoredMessage, TodoItem, ToolImage } from "./api";

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
}

let keySeq = 0;
const nextKey = () => `k${++keySeq}`;

export class UserItem {
  readonly kind = "user";
  readonly key = nextKey();
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

export class AssistantItem {
  readonly kind = "assistant";
  readonly key = nextKey();
  text = $state("");
  reasoning = $state("");
  /** Cut short by a cancel or an error. */
  partial = $state(false);
  /** Still receiving tokens. */
  streaming = $state(false);
}

export class ToolItem {
  readonly kind = "tool";
  readonly key = nextKey();
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
      case "turn_started":
        if (this.status !== "stopping") this.status = "running";
        break;
      case "token":
        this.#assistant().text += event.text;
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
        });
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
      const started = await api.startTurn(this.sessionId, text, (event) => this.apply(event));
      this.#setSession(started.session_id, started.path);
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

  async answerApproval(id: string, approved: boolean): Promise<void> {
    this.approvals = this.approvals.filter((a) => a.id !== id);
    if (this.sessionId === null) return;
    try {
      await api.respondApproval(this.sessionId, id, approved);
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
    this.todos = detail.todos ?? [];
    this.skippedLines = detail.skipped_lines ?? 0;
    this.past = true;
    this.status = "idle";
    this.#tools.clear();
    this.#open = null;
    this.items = historyItems(detail.messages, this.#tools);
    this.firstIndex = detail.first_index ?? 0;
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
      const items = historyItems(page.messages, new Map());
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
  }
}

function parseArgs(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Turns stored messages into chat items; tool results attach to their call's card. */
export function historyItems(messages: StoredMessage[], tools: Map<string, ToolItem>): Item[] {
  const items: Item[] = [];
  for (const message of messages) {
    if (message.role === "user") {
      items.push(new UserItem(message.content));
    } else if (message.role === "assistant") {
      const reasoning = (message.thinking ?? []).map((t) => t.text).join("\n\n");
      if (message.content || reasoning || message.partial) {
        const item = new AssistantItem();
        item.text = message.content;
        item.reasoning = reasoning;
        item.partial = message.partial ?? false;
        items.push(item);
      }
      for (const call of message.tool_calls ?? []) {
        const tool = new ToolItem(call.id, call.name, parseArgs(call.arguments));
        tool.state = "unanswered";
        tools.set(call.id, tool);
        items.push(tool);
      }
    } else if (message.role === "tool") {
      const id = message.tool_call_id ?? "";
      let tool = tools.get(id);
      if (!tool) {
        tool = new ToolItem(id, message.name ?? "tool", null);
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
