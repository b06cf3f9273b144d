import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { flushSync, mount, tick, unmount } from "svelte";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import ChatPane from "../components/ChatPane.svelte";
import type { Event } from "./api";
import { Conversation, summarizeArgs, ToolItem, type AssistantItem } from "./chat.svelte";

interface Internals {
  runCallback: (id: number, data: unknown) => void;
}

/** Answers invokes like the Rust adapter and pushes events through the real Channel. */
class FakeBackend {
  calls: { cmd: string; args: Record<string, unknown> }[] = [];
  channelId: number | null = null;
  index = 0;
  startError: { kind: string; message: string } | null = null;

  install() {
    mockIPC((cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      this.calls.push({ cmd, args });
      switch (cmd) {
        case "start_turn": {
          if (this.startError) throw this.startError;
          this.channelId = (args.onEvent as { id: number }).id;
          this.index = 0;
          return { session_id: "s-1", path: "/data/sessions/s-1.jsonl" };
        }
        case "cancel_turn":
        case "respond_approval":
          return null;
        default:
          throw { kind: "unknown", message: `no mock for ${cmd}` };
      }
    });
  }

  /** Sends one event the way the Rust side does: `{ index, message }` to the channel's callback. */
  emit(event: Event) {
    if (this.channelId === null) throw new Error("no channel yet");
    const internals = (window as unknown as { __TAURI_INTERNALS__: Internals }).__TAURI_INTERNALS__;
    internals.runCallback(this.channelId, { index: this.index++, message: event });
  }

  called(cmd: string) {
    return this.calls.filter((c) => c.cmd === cmd);
  }
}

let backend: FakeBackend;

beforeEach(() => {
  backend = new FakeBackend();
  backend.install();
});

afterEach(() => {
  clearMocks();
});

describe("Conversation reducer", () => {
  it("streams a turn over the Channel and ends done", async () => {
    const conv = new Conversation();
    await conv.send("hello");
    expect(conv.status).toBe("running");
    const start = backend.called("start_turn")[0];
    expect(start.args.sessionId).toBeNull();
    expect(start.args.prompt).toBe("hello");
    expect(conv.sessionId).toBe("s-1");

    backend.emit({ type: "session", id: "s-1", path: "/p" });
    backend.emit({ type: "turn_started", turn: 1 });
    backend.emit({ type: "reasoning", text: "let me think" });
    backend.emit({ type: "token", text: "Hel" });
    backend.emit({ type: "token", text: "lo!" });
    expect(conv.items.map((i) => i.kind)).toEqual(["user", "assistant"]);
    const reply = conv.items[1] as AssistantItem;
    expect(reply.text).toBe("Hello!");
    expect(reply.reasoning).toBe("let me think");
    expect(reply.streaming).toBe(true);

    backend.emit({ type: "done", usage: { input_tokens: 1, output_tokens: 2 } });
    expect(conv.status).toBe("done");
    expect(reply.streaming).toBe(false);
    expect(reply.partial).toBe(false);
  });

  it("goes running → stopping → stopped and cancels the right session", async () => {
    const conv = new Conversation();
    await conv.send("long job");
    backend.emit({ type: "session", id: "s-1", path: "/p" });
    backend.emit({ type: "token", text: "partial" });
    expect(conv.status).toBe("running");

    const stopping = conv.stop();
    expect(conv.status).toBe("stopping");
    await stopping;
    expect(backend.called("cancel_turn")).toEqual([{ cmd: "cancel_turn", args: { sessionId: "s-1" } }]);
    expect(conv.status).toBe("stopping");

    backend.emit({ type: "cancelled" });
    expect(conv.status).toBe("stopped");
    expect((conv.items[1] as AssistantItem).partial).toBe(true);
  });

  it("cancels as soon as the session id is known when Stop comes first", async () => {
    const conv = new Conversation();
    const sending = conv.send("quick");
    void conv.stop();
    expect(conv.status).toBe("stopping");
    await sending;
    await Promise.resolve();
    expect(backend.called("cancel_turn")).toHaveLength(1);
  });

  it("builds tool cards, todo items, retry notices and approvals", async () => {
    const conv = new Conversation();
    await conv.send("do things");
    backend.emit({ type: "token", text: "I'll look." });
    backend.emit({ type: "tool_call", id: "c1", name: "read_file", arguments: { path: "src/main.rs" } });
    backend.emit({ type: "tool_call", id: "c2", name: "terminal", arguments: { command: "ls -la" } });
    backend.emit({ type: "tool_result", id: "c1", name: "read_file", content: "fn main() {}", is_error: false });
    backend.emit({ type: "tool_result", id: "c2", name: "terminal", content: "denied", is_error: true });
    backend.emit({
      type: "todo",
      todos: [
        { id: "1", content: "Read the code", status: "completed" },
        { id: "2", content: "Fix the bug", status: "in_progress" },
      ],
    });
    backend.emit({ type: "retry", attempt: 2, max_attempts: 3, delay_ms: 2000, reason: "HTTP 429" });
    backend.emit({ type: "approval_request", id: "a1", tool_call_id: "c3", command: "rm -rf build", reason: "deletes files" });
    backend.emit({ type: "token", text: "Done." });

    const kinds = conv.items.map((i) => i.kind);
    expect(kinds).toEqual(["user", "assistant", "tool", "tool", "notice", "assistant"]);
    const [read, term] = conv.items.filter((i): i is ToolItem => i instanceof ToolItem);
    expect([read.state, read.result]).toEqual(["ok", "fn main() {}"]);
    expect([term.state, term.result]).toEqual(["error", "denied"]);
    expect(conv.todos).toHaveLength(2);
    expect(conv.items[4]).toMatchObject({ tone: "retry", text: "retrying in 2s (attempt 2/3): HTTP 429", active: false });
    expect(conv.approvals).toHaveLength(1);

    await conv.answerApproval("a1", "deny");
    expect(backend.called("respond_approval")[0].args).toEqual({ sessionId: "s-1", id: "a1", approved: false, decision: "deny" });
    expect(conv.approvals).toHaveLength(0);
  });

  it("shows an error banner with what to do", async () => {
    const conv = new Conversation();
    await conv.send("hi");
    backend.emit({ type: "error", kind: "stall", message: "no data for 120 s" });
    expect(conv.status).toBe("error");
    expect(conv.banner?.message).toBe("no data for 120 s");
    expect(conv.banner?.hint).toMatch(/stall timeout/);
  });

  it("reports a rejected start_turn in the banner", async () => {
    backend.startError = { kind: "config", message: "no model is set: choose one in Settings" };
    const conv = new Conversation();
    await conv.send("hi");
    expect(conv.status).toBe("error");
    expect(conv.banner?.message).toBe("no model is set: choose one in Settings");
  });

  it("loads a stored session and continues it with the same id", async () => {
    const conv = new Conversation();
    conv.load({
      id: "old",
      title: "Old chat",
      created: "2025-01-01T00:00:00Z",
      first_index: 0,
      total_messages: 4,
      skipped_lines: 0,
      todos: [],
      messages: [
        { role: "user", content: "list files" },
        { role: "assistant", content: "", tool_calls: [{ id: "t1", name: "terminal", arguments: '{"command":"ls"}' }] },
        { role: "tool", content: "a.txt", tool_call_id: "t1", name: "terminal" },
        { role: "assistant", content: "There is a.txt", partial: true },
      ],
    });
    expect(conv.past).toBe(true);
    expect(conv.items.map((i) => i.kind)).toEqual(["user", "tool", "assistant"]);
    expect(conv.items[1]).toMatchObject({ state: "ok", result: "a.txt" });
    await conv.send("and again");
    expect(conv.past).toBe(false);
    expect(backend.called("start_turn")[0].args.sessionId).toBe("old");
  });

  it("summarizes tool arguments on one line", () => {
    expect(summarizeArgs("terminal", { command: "echo a\n  echo b" })).toBe("echo a echo b");
    expect(summarizeArgs("todo", { todos: [{}, {}], merge: true })).toBe("2 items (merge)");
    expect(summarizeArgs("search_files", { pattern: "fn main", path: "src" })).toBe("fn main in src");
    expect(summarizeArgs("x", "not json")).toBe("not json");
  });
});

describe("ChatPane", () => {
  let target: HTMLElement;
  let app: ReturnType<typeof mount> | null = null;

  beforeEach(() => {
    target = document.createElement("div");
    document.body.appendChild(target);
  });

  afterEach(() => {
    if (app) void unmount(app);
    app = null;
    target.remove();
  });

  const q = (id: string) => target.querySelector<HTMLElement>(`[data-testid="${id}"]`);
  const all = (id: string) => Array.from(target.querySelectorAll<HTMLElement>(`[data-testid="${id}"]`));

  it("drives the hooks the end-to-end tests use", async () => {
    const conv = new Conversation();
    app = mount(ChatPane, { target, props: { conv, status: null, oncontinue: () => {} } });
    flushSync();
    expect(q("turn-status")?.textContent).toBe("idle");

    const input = q("prompt-input") as HTMLTextAreaElement;
    const send = q("send-button") as HTMLButtonElement;
    const stop = q("stop-button") as HTMLButtonElement;
    expect(send.disabled).toBe(true);
    expect(stop.disabled).toBe(true);

    input.value = "write a poem";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    flushSync();
    expect(send.disabled).toBe(false);

    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    await tick();
    await Promise.resolve();
    flushSync();
    expect(backend.called("start_turn")[0].args.prompt).toBe("write a poem");
    expect(q("user-message")?.textContent).toBe("write a poem");
    expect(q("turn-status")?.textContent).toBe("running");
    expect(send.disabled).toBe(true);
    expect(stop.disabled).toBe(false);

    backend.emit({ type: "token", text: "Roses " });
    backend.emit({ type: "token", text: "are **red**" });
    backend.emit({ type: "tool_call", id: "c1", name: "write_file", arguments: { path: "poem.txt", content: "…" } });
    backend.emit({ type: "todo", todos: [{ id: "1", content: "Write it", status: "in_progress" }] });
    flushSync();
    expect(q("assistant-message")?.textContent).toContain("Roses are red");
    expect(q("assistant-message")?.querySelector("strong")?.textContent).toBe("red");
    expect(all("tool-card")).toHaveLength(1);
    expect(q("tool-card")?.textContent).toContain("write_file");
    expect(q("tool-card")?.textContent).toContain("poem.txt");
    expect(q("tool-card")?.dataset.state).toBe("running");
    expect(all("todo-item").map((e) => e.querySelector(".content")?.textContent)).toEqual(["Write it"]);
    expect(q("todo-item")?.dataset.status).toBe("in_progress");

    backend.emit({ type: "tool_result", id: "c1", name: "write_file", content: "wrote 1 line", is_error: false });
    flushSync();
    expect(q("tool-card")?.dataset.state).toBe("ok");

    stop.click();
    flushSync();
    expect(q("turn-status")?.textContent).toBe("stopping");
    expect(stop.disabled).toBe(true);
    await Promise.resolve();
    backend.emit({ type: "cancelled" });
    flushSync();
    expect(q("turn-status")?.textContent).toBe("stopped");
    expect(send.disabled).toBe(true); // empty prompt
  });

  it("shows and dismisses the error banner, and the approval dialog", async () => {
    const conv = new Conversation();
    app = mount(ChatPane, { target, props: { conv, status: null, oncontinue: () => {} } });
    await conv.send("go");
    backend.emit({ type: "approval_request", id: "a1", tool_call_id: "c1", command: "rm -rf /tmp/x", reason: "deletes files" });
    flushSync();
    expect(q("approval-dialog")?.textContent).toContain("rm -rf /tmp/x");
    (q("approve-button") as HTMLButtonElement).click();
    flushSync();
    expect(q("approval-dialog")).toBeNull();
    await Promise.resolve();
    expect(backend.called("respond_approval")[0].args).toMatchObject({ id: "a1", approved: true });

    backend.emit({ type: "error", kind: "network", message: "connection refused (127.0.0.1:9)" });
    flushSync();
    expect(q("turn-status")?.textContent).toBe("error");
    const banner = q("error-banner");
    expect(banner?.textContent).toContain("connection refused (127.0.0.1:9)");
    expect(banner?.textContent).toContain("Check that the server is running");
    (banner?.querySelector("button") as HTMLButtonElement).click();
    flushSync();
    expect(q("error-banner")).toBeNull();
  });

  it("shows continue-button for a past session", () => {
    const conv = new Conversation();
    conv.load({ id: "old", title: "Old", created: "", first_index: 0, total_messages: 1, skipped_lines: 0, todos: [], messages: [{ role: "user", content: "hi" }] });
    let continued = false;
    app = mount(ChatPane, { target, props: { conv, status: null, oncontinue: () => (continued = true) } });
    flushSync();
    expect(q("prompt-input")).toBeNull();
    (q("continue-button") as HTMLButtonElement).click();
    expect(continued).toBe(true);
  });

  it("focuses the prompt on start and after a turn; Escape stops", async () => {
    const conv = new Conversation();
    app = mount(ChatPane, { target, props: { conv, status: null, oncontinue: () => {} } });
    flushSync();
    const input = q("prompt-input") as HTMLTextAreaElement;
    expect(document.activeElement).toBe(input);

    await conv.send("first");
    flushSync();
    (q("stop-button") as HTMLButtonElement).focus();
    backend.emit({ type: "token", text: "ok" });
    backend.emit({ type: "done" });
    flushSync();
    expect(document.activeElement).toBe(input);

    // Typing in another field (the session search) is not interrupted when a turn ends.
    const other = document.createElement("input");
    document.body.appendChild(other);
    await conv.send("second");
    flushSync();
    other.focus();
    backend.emit({ type: "done" });
    flushSync();
    expect(document.activeElement).toBe(other);
    other.remove();

    await conv.send("third");
    flushSync();
    window.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    flushSync();
    expect(q("turn-status")?.textContent).toBe("stopping");
    await Promise.resolve();
    expect(backend.called("cancel_turn")).toHaveLength(1);
  });

  it("traps focus in the approval dialog; Escape denies without stopping the turn", async () => {
    const conv = new Conversation();
    app = mount(ChatPane, { target, props: { conv, status: null, oncontinue: () => {} } });
    flushSync();
    const input = q("prompt-input") as HTMLTextAreaElement;
    await conv.send("go");
    flushSync();
    input.focus();
    backend.emit({ type: "approval_request", id: "a1", tool_call_id: "c1", command: "rm -rf x", reason: "deletes" });
    flushSync();
    const deny = q("deny-button") as HTMLButtonElement;
    const approve = q("approve-button") as HTMLButtonElement;
    expect(document.activeElement).toBe(deny);
    const key = (k: string, shiftKey = false) =>
      (document.activeElement as HTMLElement).dispatchEvent(new KeyboardEvent("keydown", { key: k, shiftKey, bubbles: true, cancelable: true }));
    key("Tab");
    expect(document.activeElement).toBe(approve);
    key("Tab");
    expect(document.activeElement).toBe(deny);
    key("Tab", true);
    expect(document.activeElement).toBe(approve);
    // Focus that escapes to the page behind comes back.
    input.focus();
    expect(document.activeElement).toBe(deny);

    key("Escape");
    flushSync();
    expect(q("approval-dialog")).toBeNull();
    await Promise.resolve();
    expect(backend.called("respond_approval")[0].args).toMatchObject({ id: "a1", approved: false });
    expect(backend.called("cancel_turn")).toHaveLength(0);
    expect(q("turn-status")?.textContent).toBe("running");
    expect(document.activeElement).toBe(input);
  });

  it("keeps up with a long stream without re-rendering the history", () => {
    const conv = new Conversation();
    for (let i = 0; i < 300; i++) {
      conv.apply({ type: "token", text: `message ${i}` });
      conv.apply({ type: "tool_call", id: `c${i}`, name: "read_file", arguments: { path: `f${i}` } });
    }
    app = mount(ChatPane, { target, props: { conv, status: null, oncontinue: () => {} } });
    flushSync();
    const first = q("assistant-message");
    const started = performance.now();
    for (let i = 0; i < 2000; i++) {
      conv.apply({ type: "token", text: "x " });
      flushSync();
    }
    const elapsed = performance.now() - started;
    console.log(`2000 tokens over a 600-item history: ${elapsed.toFixed(0)} ms`);
    expect(q("assistant-message")).toBe(first); // same DOM node: history was not rebuilt
    expect(all("tool-card")).toHaveLength(60); // the last 120 items; the rest behind "Show earlier"
    expect(q("show-earlier")?.textContent).toContain("480 more");
    expect(elapsed).toBeLessThan(20_000);
  });
});
