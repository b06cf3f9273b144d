// The session browser and forks in the app (jsdom, the backend mocked at the IPC layer):
// the row menu and its keyboard use, rename / pin / archive / export / delete with Undo, the
// archived filter, forks under their parents, search hits opening at their message, edit and
// regenerate as forks, Up editing the last message, the fork link, and the Storage settings.

import { emit } from "@tauri-apps/api/event";
import { mockIPC } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import App from "./App.svelte";
import type { SessionDetail, SessionSummary, StoredMessage } from "./lib/api";
import { exportName } from "./lib/sessionList.svelte";
import { arrangeForks, formatBytes, highlightRuns } from "./lib/sessions";
import { Mounted, testSettings, testSettingsView, testStatus, until as settle } from "./testing";

interface Internals {
  runCallback: (id: number, data: unknown) => void;
}

/** The browser tests do more per step: a longer wait. */
const until = (check: () => boolean) => settle(check, 4000);

function summary(id: string, title: string, extra: Partial<SessionSummary> = {}): SessionSummary {
  return {
    id,
    title,
    path: `/data/sessions/${id}.jsonl`,
    created: new Date().toISOString(),
    updated: new Date().toISOString(),
    status: "done",
    message_count: 4,
    pinned: false,
    archived: false,
    forked_from: null,
    ...extra,
  };
}

const conversation: StoredMessage[] = [
  { role: "user", content: "first question" },
  { role: "assistant", content: "first answer" },
  { role: "user", content: "second question" },
  { role: "assistant", content: "second answer" },
];

describe("session list helpers", () => {
  it("puts forks under their parents, and orphans at the top", () => {
    const rows = arrangeForks([
      summary("c", "fork of a", { forked_from: { id: "a", message_index: 2 } }),
      summary("b", "plain"),
      summary("a", "parent"),
      summary("d", "fork of c", { forked_from: { id: "c", message_index: 0 } }),
      summary("e", "fork of a gone one", { forked_from: { id: "zz", message_index: 0 } }),
    ]);
    expect(rows.map((r) => `${r.session.id}${r.depth}`)).toEqual(["b0", "a0", "c1", "d2", "e0"]);
  });

  it("splits snippets by character ranges, never by brackets in the text", () => {
    expect(highlightRuns("a [b] café x", [[6, 10]])).toEqual([
      { mark: false, text: "a [b] " },
      { mark: true, text: "café" },
      { mark: false, text: " x" },
    ]);
    // Ranges count code points: an emoji before the match does not shift it.
    expect(highlightRuns("🙂 zebra", [[2, 7]])).toEqual([
      { mark: false, text: "🙂 " },
      { mark: true, text: "zebra" },
    ]);
    expect(highlightRuns("plain", [[9, 12], [3, 1]])).toEqual([{ mark: false, text: "plain" }]);
  });

  it("formats sizes and export names", () => {
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(25_200_000)).toBe("25.2 MB");
    expect(exportName('a/b: "c"?', "markdown")).toBe("a b c.md");
    expect(exportName("", "json")).toBe("session.json");
  });
});

describe("session browser", () => {
  let view: Mounted;
  let rows: SessionSummary[];
  let trash: SessionSummary[];
  let calls: { cmd: string; args: Record<string, unknown> }[];
  let channel: number | null;
  let savePath: string | null;

  const detail = (id: string): SessionDetail => {
    const row = rows.find((r) => r.id === id) ?? summary(id, id);
    return {
      id,
      title: row.title,
      created: row.created,
      status: "done",
      messages: conversation,
      first_index: 0,
      total_messages: conversation.length,
      todos: [],
      skipped_lines: 0,
      pinned: row.pinned,
      archived: row.archived,
      forked_from: row.forked_from ? { ...row.forked_from, title: "parent", exists: true } : null,
    };
  };

  beforeEach(() => {
    view = new Mounted();
    rows = [summary("a", "Alpha session"), summary("b", "Beta session")];
    trash = [];
    calls = [];
    channel = null;
    savePath = "/home/me/alpha.md";
    mockIPC(
      (cmd, payload) => {
        const args = (payload ?? {}) as Record<string, unknown>;
        calls.push({ cmd, args });
        const row = rows.find((r) => r.id === args.id);
        switch (cmd) {
          case "app_status":
            return testStatus({ workdir: "/home/me/proj", home: "/home/me" });
          case "index_health":
            return { mode: "live" };
          case "list_sessions": {
            const archived = args.filter === "archived";
            const listed = rows.filter((r) => Boolean(r.archived) === archived);
            listed.sort((x, y) => Number(Boolean(y.pinned)) - Number(Boolean(x.pinned)));
            return listed.slice(args.offset as number, (args.offset as number) + (args.limit as number));
          }
          case "rename_session":
            if (row) row.title = args.title as string;
            return null;
          case "pin_session":
            if (row) row.pinned = args.pinned as boolean;
            return null;
          case "archive_session":
            if (row) row.archived = args.archived as boolean;
            return null;
          case "delete_session":
            if (row) {
              rows = rows.filter((r) => r !== row);
              trash.push(row);
            }
            return { id: args.id, undo_ms: 10_000 };
          case "restore_session": {
            const back = trash.find((r) => r.id === args.id);
            if (back) rows.push(back);
            trash = trash.filter((r) => r !== back);
            return null;
          }
          case "plugin:dialog|save":
            return savePath;
          case "export_session":
            return null;
          case "search_sessions":
            return [{ id: "a", title: "Alpha session", snippet: "the second answer", highlights: [[4, 10]], score: 1, message_index: 3 }];
          case "open_session":
            return detail(args.id as string);
          case "fork_session": {
            const fork = summary("f1", "first question", { forked_from: { id: args.id as string, message_index: args.messageIndex as number } });
            rows.unshift(fork);
            return { session_id: "f1", path: fork.path };
          }
          case "start_turn":
            channel = (args.onEvent as { id: number }).id;
            return { session_id: args.sessionId ?? "new", path: "/data/x.jsonl" };
          case "storage_stats":
            return {
              stats: {
                sessions: 12,
                plain_logs: 10,
                plain_bytes: 2_000_000,
                compressed_logs: 2,
                compressed_bytes: 1_000_000,
                compressed_text_bytes: 8_000_000,
                index_bytes: 3_000_000,
                trash_logs: 1,
                trash_bytes: 1000,
              },
              settings: { compress_after_days: 7 },
              compacting: false,
            };
          case "compact_sessions":
            return new Promise((resolve) => {
              const id = (args.onProgress as { id: number }).id;
              const internals = (window as unknown as { __TAURI_INTERNALS__: Internals }).__TAURI_INTERNALS__;
              internals.runCallback(id, { index: 0, message: { done: 1, total: 3, bytes_before: 100, bytes_after: 10 } });
              setTimeout(
                () =>
                  resolve({
                    compressed: ["a"],
                    skipped: [],
                    failed: [],
                    cancelled: true,
                    progress: { done: 1, total: 3, bytes_before: 100, bytes_after: 10 },
                  }),
                150,
              );
            });
          case "cancel_compaction":
            return null;
          case "save_history_settings":
            return args.settings;
          case "get_settings":
            return testSettingsView(testSettings({ model: "m", writable_dirs: [] }));
          default:
            throw { kind: "unknown", message: `no mock for ${cmd}` };
        }
      },
      { shouldMockEvents: true },
    );
  });

  afterEach(() => view.destroy());

  const q = (sel: string) => view.q(sel);
  const qq = (sel: string) => Array.from(document.querySelectorAll<HTMLElement>(sel));
  const byId = (id: string) => document.querySelector<HTMLElement>(`[data-testid="${id}"]`);
  const titles = () => qq('[data-testid="session-item"] .title').map((t) => t.textContent);
  const called = (cmd: string) => calls.filter((c) => c.cmd === cmd);

  async function start() {
    view.mount(App);
    await until(() => titles().length === 2);
  }

  async function openMenu(index = 0) {
    qq('[data-testid="session-menu"]')[index].click();
    await until(() => byId("session-rename") !== null);
  }

  it("reaches every action from the keyboard, and Escape gives the focus back", async () => {
    await start();
    const button = qq('[data-testid="session-menu"]')[0];
    expect(button.getAttribute("aria-haspopup")).toBe("menu");
    button.focus();
    button.click();
    await until(() => document.activeElement === byId("session-rename"));
    expect(byId("session-rename")?.getAttribute("role")).toBe("menuitem");
    const key = (k: string) => document.activeElement?.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true }));
    key("ArrowDown");
    expect(document.activeElement).toBe(byId("session-pin"));
    key("ArrowDown");
    key("ArrowDown");
    expect(document.activeElement).toBe(byId("session-export"));
    key("End");
    expect(document.activeElement).toBe(byId("session-delete"));
    key("ArrowDown");
    expect(document.activeElement, "wraps around").toBe(byId("session-rename"));
    key("Escape");
    await until(() => byId("session-rename") === null);
    expect(document.activeElement).toBe(button);
    // The context-menu key on a row opens its menu too.
    qq('[data-testid="session-item"]')[1].dispatchEvent(new KeyboardEvent("keydown", { key: "ContextMenu", bubbles: true }));
    await until(() => byId("session-rename") !== null);
  });

  it("renames in place through an input named title", async () => {
    await start();
    qq('[data-testid="session-item"]')[0].click();
    await until(() => q('[data-testid="continue-button"]') !== null);
    await openMenu();
    byId("session-rename")?.click();
    await until(() => q('input[name="title"]') !== null);
    const input = q('input[name="title"]') as HTMLInputElement;
    expect(input.value).toBe("Alpha session");
    input.value = "Quarterly report";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    await until(() => titles().includes("Quarterly report"));
    expect(called("rename_session")[0].args).toMatchObject({ id: "a", title: "Quarterly report" });
    expect(q(".pane header .title")?.textContent).toBe("Quarterly report");
    // Escape leaves the title as it was.
    await openMenu();
    byId("session-rename")?.click();
    await until(() => q('input[name="title"]') !== null);
    q('input[name="title"]')?.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    await until(() => q('input[name="title"]') === null);
    expect(called("rename_session")).toHaveLength(1);
  });

  it("pins to the top, archives out of the list and back through the filter", async () => {
    await start();
    await openMenu(1);
    expect(byId("session-pin")?.textContent).toContain("Pin to top");
    byId("session-pin")?.click();
    await until(() => titles()[0] === "Beta session");
    expect(q('[data-testid="session-item"]')?.dataset.pinned).toBe("true");

    await openMenu(1);
    byId("session-archive")?.click();
    await until(() => titles().length === 1);
    expect(titles()).toEqual(["Beta session"]);
    byId("filter-archived")?.click();
    await until(() => titles()[0] === "Alpha session");
    expect(called("list_sessions").at(-1)?.args).toMatchObject({ filter: "archived" });
    await openMenu(0);
    expect(byId("session-archive")?.textContent).toContain("Move out of archive");
    byId("session-archive")?.click();
    await until(() => titles().length === 0);
    byId("filter-active")?.click();
    await until(() => titles().length === 2);
  });

  it("deletes with Undo for a while, then it is gone", async () => {
    await start();
    // Open it first: deleting it takes it off the screen too.
    qq('[data-testid="session-item"]')[0].click();
    await until(() => q('[data-testid="continue-button"]') !== null);
    await openMenu();
    byId("session-delete")?.click();
    await until(() => byId("undo-button") !== null);
    expect(titles()).toEqual(["Beta session"]);
    expect(q('[data-testid="continue-button"]')).toBeNull();
    expect(qq('[data-testid="user-message"]')).toHaveLength(0);
    byId("undo-button")?.click();
    await until(() => titles().length === 2);
    expect(called("restore_session")[0].args).toMatchObject({ id: "a" });
    expect(byId("undo-button")).toBeNull();
  });

  it("exports through the save dialog, in the format chosen", async () => {
    await start();
    await openMenu();
    byId("session-export")?.click();
    await until(() => byId("session-export-markdown") !== null && document.activeElement === byId("session-export-markdown"));
    byId("session-export-markdown")?.click();
    await until(() => called("export_session").length === 1);
    expect(called("plugin:dialog|save")[0].args).toMatchObject({ options: { defaultPath: "Alpha session.md" } });
    expect(called("export_session")[0].args).toMatchObject({ id: "a", format: "markdown", path: "/home/me/alpha.md" });
    await until(() => (view.target.textContent ?? "").includes("Exported to /home/me/alpha.md"));
    // Cancelling the dialog writes nothing.
    savePath = null;
    await openMenu();
    byId("session-export")?.click();
    await until(() => byId("session-export-json") !== null);
    byId("session-export-json")?.click();
    await until(() => called("plugin:dialog|save").length === 2);
    expect(called("export_session")).toHaveLength(1);
  });

  it("shows forks under their parent and opens a search hit at its message", async () => {
    rows.push(summary("f0", "A branch", { forked_from: { id: "a", message_index: 2 } }));
    await start().catch(() => undefined);
    await until(() => titles().length === 3);
    expect(titles()).toEqual(["Alpha session", "A branch", "Beta session"]);
    expect(qq('[data-testid="session-item"]')[1].dataset.forkOf).toBe("a");

    const search = q('[data-testid="session-search"]') as HTMLInputElement;
    search.value = "second";
    search.dispatchEvent(new Event("input", { bubbles: true }));
    await until(() => q('[data-testid="session-item"] mark')?.textContent === "second");
    q('[data-testid="session-item"]')?.click();
    await until(() => called("open_session").length === 1);
    expect(called("open_session")[0].args).toMatchObject({ id: "a", tail: null, around: 3 });
  });

  it("edits a message into a fork, regenerates the last reply, and Up edits the last message", async () => {
    await start();
    qq('[data-testid="session-item"]')[0].click();
    await until(() => q('[data-testid="continue-button"]') !== null);
    const edits = qq('[data-testid="message-edit"]');
    expect(edits).toHaveLength(2);
    expect(q('[data-testid="regenerate-button"]')).not.toBeNull();

    edits[0].click();
    await until(() => q('textarea[aria-label="Edit message"]') !== null);
    const box = q('textarea[aria-label="Edit message"]') as HTMLTextAreaElement;
    box.value = "first question, reworded";
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    await until(() => called("start_turn").length === 1);
    expect(called("fork_session")[0].args).toMatchObject({ id: "a", messageIndex: 0 });
    expect(called("start_turn")[0].args).toMatchObject({ sessionId: "f1", prompt: "first question, reworded" });
    await until(() => q('[data-testid="fork-link"]') !== null);
    expect(q('[data-testid="fork-link"]')?.textContent).toContain("parent");

    // The turn ends; the last message's number came with it, so Up in the empty box edits it.
    const internals = (window as unknown as { __TAURI_INTERNALS__: Internals }).__TAURI_INTERNALS__;
    let n = 0;
    const send = (message: unknown) => internals.runCallback(channel as number, { index: n++, message });
    send({ type: "turn_started", turn: 3, message_index: 4 });
    send({ type: "token", text: "a new answer" });
    send({ type: "done" });
    await until(() => q('[data-testid="turn-status"]')?.textContent === "done");
    const input = q('[data-testid="prompt-input"]') as HTMLTextAreaElement;
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowUp", bubbles: true }));
    await until(() => (q('textarea[aria-label="Edit message"]') as HTMLTextAreaElement | null)?.value === "first question, reworded");
    q('textarea[aria-label="Edit message"]')?.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    await until(() => q('textarea[aria-label="Edit message"]') === null);

    // Regenerate: a fork at the last question, asked again (shown once the ended turn settled).
    await until(() => q('[data-testid="regenerate-button"]') !== null);
    q('[data-testid="regenerate-button"]')?.click();
    await until(() => called("start_turn").length === 2);
    expect(called("fork_session")[1].args).toMatchObject({ id: "f1", messageIndex: 4 });
    expect(called("start_turn")[1].args).toMatchObject({ prompt: "first question, reworded" });

    // The fork link opens the original at the message it was cut at.
    q('[data-testid="fork-link"]')?.click();
    await until(() => called("open_session").some((c) => c.args.around !== null && c.args.around !== undefined));
    expect(called("open_session").at(-1)?.args).toMatchObject({ around: 4 });
  });

  it("shows storage figures and compresses with progress and cancel", async () => {
    await start();
    byId("settings-button")?.click();
    await until(() => byId("storage-sessions") !== null);
    expect(byId("storage-sessions")?.textContent).toBe("12");
    expect(view.target.textContent).toContain("8.0×");
    byId("compress-button")?.click();
    await until(() => (byId("compress-progress")?.textContent ?? "").includes("1 of 3 sessions"));
    byId("compress-cancel")?.click();
    await until(() => called("cancel_compaction").length === 1);
    await until(() => byId("compress-button") !== null);
    expect(view.target.textContent).toContain("Stopped: 1 compressed");
    const days = q('input[name="compress_after_days"]') as HTMLInputElement;
    days.value = "14";
    days.dispatchEvent(new Event("input", { bubbles: true }));
    days.form?.requestSubmit();
    await until(() => called("save_history_settings").length === 1);
    expect(called("save_history_settings")[0].args).toMatchObject({ settings: { compress_after_days: 14 } });
  });

  it("says when the list only polls", async () => {
    await start();
    await emit("index-health", { mode: "polling", reason: "no inotify watches left", every_ms: 3000 });
    await until(() => byId("index-health") !== null);
    expect(byId("index-health")?.textContent).toContain("every 3 s");
  });
});
