import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { flushSync, mount, unmount } from "svelte";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import App from "./App.svelte";
import { SHORTCUTS, shortcutFor } from "./lib/shortcuts";

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
          return {
            configured: true,
            model_ready: true,
            workdir_ready: true,
            workdir: "/home/u/proj",
            home: "/home/u",
            data_dir: "/data",
            provider: "openai",
            model: "m",
            base_url: "",
            env_overrides: [],
            approval_level: "ask",
            sandbox: { available: true },
            key_storage: "file",
          };
        case "list_sessions":
          return [];
        case "get_settings":
          return {
            saved: {
              provider: "openai",
              base_url: "",
              model: "m",
              connect_timeout_s: 30,
              timeout_s: 300,
              stall_timeout_s: 120,
              max_iterations: 90,
              max_attempts: 3,
              max_tokens: 8192,
              thinking_budget: 0,
              workdir: "/home/u/proj",
              approval_level: "ask",
              writable_dirs: [],
              terminal_env: [],
            },
            env: [],
            key: { storage: "file", saved: null },
            sandbox: { available: true },
            data_dir: "/data",
            suggested_workdir: "/home/u/Talaria",
          };
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
