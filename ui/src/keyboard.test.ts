import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { flushSync, mount, unmount } from "svelte";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import App from "./App.svelte";
import { SHORTCUTS, shortcutFor } from "./lib/shortcuts";
import { testSettings, testSettingsView, testStatus } from "./testing";

const key = (k: string, mods: Partial<KeyboardEventInit> = {}) =>
  new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true, ...mods });

describe("shortcutFor", () => {
  it("maps Ctrl (or Cmd) with K, N, comma and slash", () => {
    expect(shortcutFor(key("k", { ctrlKey: true }))).toBe("search");
    expect(shortcutFor(key("K", { metaKey: true }))).toBe("search");
    expect(shortcutFor(key("n", { ctrlKey: true }))).toBe("new-session");
    expect(shortcutFor(key(",", { ctrlKey: true }))).toBe("settings");
    expect(shortcutFor(key("/", { ctrlKey: true }))).toBe("shortcuts");
    // Ctrl+? is Ctrl+Shift+/ on many layouts.
    expect(shortcutFor(key("?", { ctrlKey: true, shiftKey: true }))).toBe("shortcuts");
  });

  it("ignores plain keys, Alt, Shift combinations and IME composition", () => {
    expect(shortcutFor(key("k"))).toBeNull();
    expect(shortcutFor(key("k", { ctrlKey: true, altKey: true }))).toBeNull();
    expect(shortcutFor(key("N", { ctrlKey: true, shiftKey: true }))).toBeNull();
    expect(shortcutFor(key("k", { ctrlKey: true, isComposing: true }))).toBeNull();
    expect(shortcutFor(key("Escape"))).toBeNull();
  });

  it("lists every shortcut on the sheet, Esc included", () => {
    expect(SHORTCUTS.map((s) => s.keys.join("+"))).toEqual(["Ctrl+K", "Ctrl+N", "Ctrl+,", "Esc", "Ctrl+/", "Ctrl+Q"]);
  });
});

describe("the app's shortcuts", () => {
  let target: HTMLElement;
  let app: ReturnType<typeof mount> | null = null;

  beforeEach(() => {
    target = document.createElement("div");
    document.body.appendChild(target);
    mockIPC((cmd) => {
      switch (cmd) {
        case "app_status":
          return testStatus();
        case "list_sessions":
          return [];
        case "get_settings":
          return testSettingsView(testSettings({ model: "m", workdir: "/home/u/proj" }));
        default:
          return null;
      }
    });
    app = mount(App, { target });
    flushSync();
  });

  afterEach(() => {
    if (app) void unmount(app);
    app = null;
    target.remove();
    clearMocks();
  });

  const press = (k: string, mods: Partial<KeyboardEventInit> = { ctrlKey: true }) => {
    const event = key(k, mods);
    (document.activeElement ?? document.body).dispatchEvent(event);
    flushSync();
    return event;
  };
  const q = (id: string) => target.querySelector<HTMLElement>(`[data-testid="${id}"]`);

  it("Ctrl+K focuses the session search", () => {
    const event = press("k");
    expect(event.defaultPrevented).toBe(true);
    expect(document.activeElement).toBe(q("session-search"));
  });

  it("Ctrl+, opens the settings and Ctrl+N goes back to a new session", async () => {
    press(",");
    await new Promise((r) => setTimeout(r, 0));
    flushSync();
    expect(target.querySelector("main .settings")).not.toBeNull();
    press("n");
    expect(target.querySelector("main .settings")).toBeNull();
    expect(q("prompt-input")).not.toBeNull();
  });

  it("Ctrl+/ opens the shortcuts sheet and closes it again", () => {
    press("/");
    const sheet = document.querySelector('[data-testid="shortcuts-sheet"]');
    expect(sheet?.textContent).toContain("Search sessions");
    expect(sheet?.textContent).toContain("Stop the running reply");
    press("/");
    expect(document.querySelector('[data-testid="shortcuts-sheet"]')).toBeNull();
  });
});
