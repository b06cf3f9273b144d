import { emit } from "@tauri-apps/api/event";
import { mockIPC } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import App from "./App.svelte";
import type { AppStatus, Settings, SettingsView } from "./lib/api";
import { longSession, openPaged, pageBefore } from "./perf/fixtures";
import { Mounted, testSettings, testSettingsView, testStatus, until } from "./testing";

const settings = testSettings();

const baseStatus = testStatus({ configured: false, model_ready: false, model: "" });

describe("App", () => {
  let view: Mounted;
  let status: AppStatus;
  let saved: Settings[];
  let savedKeys: (string | null)[];
  let env: SettingsView["env"];
  let workdirs: { path: unknown; create: unknown }[];
  let sessions: { id: string; title: string }[];
  let calls: { cmd: string; args: Record<string, unknown> }[];
  /** The stored session `open_session` and `session_messages` answer from (800 messages). */
  const stored = { ...longSession(200, 1000, 10), id: "x1", title: "Written elsewhere" };

  beforeEach(() => {
    view = new Mounted();
    saved = [];
    savedKeys = [];
    env = [];
    workdirs = [];
    sessions = [];
    calls = [];
    status = { ...baseStatus };
    mockIPC(
      (cmd, payload) => {
        const args = (payload ?? {}) as Record<string, unknown>;
        calls.push({ cmd, args });
        switch (cmd) {
          case "open_session":
            return openPaged(stored, args.tail as number | null | undefined);
          case "session_messages":
            return pageBefore(stored, args.before as number, args.limit as number);
          case "start_turn":
            return { session_id: args.sessionId, path: "/data/x1.jsonl", workdir: "/home/u/proj" };
          case "app_status":
            return status;
          case "get_settings":
            return testSettingsView(settings, env);
          case "save_settings": {
            const s = args.settings as Settings;
            if (!s.model) throw { kind: "config", message: "no model is set: choose one in Settings", field: "model" };
            saved.push(s);
            savedKeys.push(args.apiKey as string | null);
            status = { ...status, configured: true, model_ready: true, model: s.model, base_url: s.base_url };
            return testSettingsView(s, env);
          }
          case "choose_workdir": {
            workdirs.push({ path: args.path, create: args.create });
            if (args.path === "/home/u") {
              throw { kind: "config", message: "/home/u cannot be the working folder: it is your home folder", field: "workdir" };
            }
            status = { ...status, workdir_ready: true, workdir: "/home/u/Talaria", configured: status.model_ready };
            return "/home/u/Talaria";
          }
          case "list_models":
            if ((args.settings as Settings).base_url.includes(":9/")) {
              throw { kind: "network", message: "cannot connect to http://127.0.0.1:9/v1", field: "base_url" };
            }
            return [{ id: "qwen3:8b" }, { id: "llama3.2", name: "Llama 3.2" }];
          case "detect_local_servers":
            return [{ name: "Ollama", base_url: "http://127.0.0.1:11434/v1", models: ["qwen3:8b"] }];
          case "list_sessions":
            return sessions.map((s) => ({
              ...s,
              path: `/data/${s.id}.jsonl`,
              created: new Date().toISOString(),
              updated: new Date().toISOString(),
              status: "done",
              message_count: 2,
            }));
          case "search_sessions":
            return [{ id: "a", title: "Found", snippet: "the [needle] here", highlights: [[5, 11]], score: 1 }];
          default:
            throw { kind: "unknown", message: `no mock for ${cmd}` };
        }
      },
      { shouldMockEvents: true },
    );
  });

  afterEach(() => view.destroy());

  const q = (sel: string) => view.q(sel);

  it("offers a detected local server on first run and saves it", async () => {
    view.mount(App);
    await until(() => q('[data-testid="use-local-server"]') !== null);
    const offer = q('[data-testid="use-local-server"]') as HTMLButtonElement;
    expect(offer.textContent).toContain("Use Ollama at http://127.0.0.1:11434/v1");
    expect(offer.textContent).toContain("model qwen3:8b");
    expect(q('[data-testid="error-banner"]')).toBeNull();
    offer.click();
    await until(() => q('[data-testid="welcome-card"]') === null);
    expect(saved[0]).toMatchObject({ provider: "openai", base_url: "http://127.0.0.1:11434/v1", model: "qwen3:8b" });
    expect(q('[data-testid="prompt-input"]')).not.toBeNull();
  });

  it("shows backend validation errors inline in Settings", async () => {
    view.mount(App);
    await until(() => q('[data-testid="settings-button"]') !== null);
    q('[data-testid="settings-button"]')?.click();
    await until(() => q('[data-testid="settings-save-button"]') !== null);
    for (const name of ["provider", "base_url", "model", "api_key", "timeout_s", "stall_timeout_s", "max_iterations", "workdir"]) {
      expect(q(`[name="${name}"]`), name).not.toBeNull();
    }
    expect((q('[name="api_key"]') as HTMLInputElement).type).toBe("password");
    q('[data-testid="settings-save-button"]')?.click();
    await until(() => (q('[role="alert"]')?.textContent ?? "").includes("no model is set"));
    // The error sits under the field it names.
    expect(q('[name="model"]')?.parentElement?.querySelector('[role="alert"]')?.textContent).toContain("no model is set");
  });

  it("tests the connection and offers the provider's models", async () => {
    view.mount(App);
    await until(() => q('[data-testid="settings-button"]') !== null);
    q('[data-testid="settings-button"]')?.click();
    await until(() => q('[data-testid="test-connection"]') !== null);
    const base = q('[name="base_url"]') as HTMLInputElement;
    base.value = "http://127.0.0.1:9/v1";
    base.dispatchEvent(new Event("input", { bubbles: true }));
    (q('[data-testid="test-connection"]') as HTMLButtonElement).click();
    await until(() => (q('[data-testid="test-connection-result"]')?.textContent ?? "").includes("cannot connect"));
    base.value = "http://127.0.0.1:11434/v1";
    base.dispatchEvent(new Event("input", { bubbles: true }));
    (q('[data-testid="test-connection"]') as HTMLButtonElement).click();
    await until(() => view.target.querySelectorAll('[data-testid="model-choice"]').length === 2);
    expect(q('[data-testid="test-connection-result"]')?.textContent).toContain("2 models");
    const choices = view.target.querySelectorAll<HTMLButtonElement>('[data-testid="model-choice"]');
    expect(choices[1].textContent).toBe("Llama 3.2");
    choices[1].click();
    await until(() => (q('[name="model"]') as HTMLInputElement).value === "llama3.2");
    const asked = calls.filter((c) => c.cmd === "list_models");
    expect((asked[1].args.settings as Settings).base_url).toBe("http://127.0.0.1:11434/v1");
    expect((asked[1].args.settings as Settings).api_key).toBeUndefined();
  });

  it("shows environment overrides read-only and never sends them back", async () => {
    env = [
      { field: "model", var: "TALARIA_MODEL", value: "env-model" },
      { field: "api_key", var: "OPENAI_API_KEY", value: "sk-…1234" },
    ];
    settings.model = "saved-model";
    view.mount(App);
    await until(() => q('[data-testid="settings-button"]') !== null);
    q('[data-testid="settings-button"]')?.click();
    await until(() => q('[data-testid="settings-save-button"]') !== null);
    const model = q('[name="model"]') as HTMLInputElement;
    expect(model.readOnly).toBe(true);
    expect(model.value).toBe("env-model");
    expect(model.parentElement?.textContent).toContain("TALARIA_MODEL");
    const key = q('[name="api_key"]') as HTMLInputElement;
    expect(key.readOnly).toBe(true);
    expect(key.parentElement?.textContent).toContain("OPENAI_API_KEY");
    (q('[name="base_url"]') as HTMLInputElement).value = "http://127.0.0.1:9/v1";
    q('[name="base_url"]')?.dispatchEvent(new Event("input", { bubbles: true }));
    // Saving sends the saved model and no key, whatever the environment holds.
    q('[data-testid="settings-save-button"]')?.click();
    await until(() => saved.length === 1);
    settings.model = "";
    expect(saved[0].model).toBe("saved-model");
    expect(saved[0].base_url).toBe("http://127.0.0.1:9/v1");
    expect(saved[0].api_key).toBeUndefined();
    expect(savedKeys[0]).toBeNull();
  });

  it("asks for a working folder on first run and refuses the home folder", async () => {
    status = { ...status, workdir_ready: false, workdir: "", model_ready: true, model: "m" };
    view.mount(App);
    await until(() => q('[data-testid="create-workdir"]') !== null);
    const input = q('[data-testid="workdir-input"]') as HTMLInputElement;
    input.value = "/home/u";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    await until(() => !(q('[data-testid="use-workdir"]') as HTMLButtonElement).disabled);
    q('[data-testid="use-workdir"]')?.click();
    await until(() => (q('[data-testid="workdir-error"]')?.textContent ?? "").includes("home folder"));
    q('[data-testid="create-workdir"]')?.click();
    await until(() => q('[data-testid="welcome-card"]') === null);
    expect(workdirs).toEqual([
      { path: "/home/u", create: false },
      { path: null, create: true },
    ]);
    await until(() => (q('[data-testid="chat-folder"]')?.textContent ?? "").includes("~/Talaria"));
  });

  it("refreshes the session list on sessions-changed and renders search hits with marks", async () => {
    status = { ...status, configured: true, model_ready: true, model: "m" };
    view.mount(App);
    await until(() => q('[data-testid="prompt-input"]') !== null);
    expect(view.target.querySelectorAll('[data-testid="session-item"]')).toHaveLength(0);
    sessions = [{ id: "x1", title: "Written elsewhere" }];
    await emit("sessions-changed", { ids: ["x1"] });
    await until(() => view.target.querySelectorAll('[data-testid="session-item"]').length === 1);
    expect(q('[data-testid="session-item"]')?.textContent).toContain("Written elsewhere");

    const search = q('[data-testid="session-search"]') as HTMLInputElement;
    search.value = "needle";
    search.dispatchEvent(new Event("input", { bubbles: true }));
    await until(() => q('[data-testid="session-item"] mark') !== null);
    expect(q('[data-testid="session-item"] mark')?.textContent).toBe("needle");
  });

  it("continues a session opened a page at a time, and still fetches its earlier pages", async () => {
    status = { ...status, configured: true, model_ready: true, model: "m" };
    sessions = [{ id: "x1", title: "Written elsewhere" }];
    view.mount(App);
    await until(() => q('[data-testid="session-item"]') !== null);
    q('[data-testid="session-item"]')?.click();
    await until(() => q('[data-testid="continue-button"]') !== null);
    expect(calls.find((c) => c.cmd === "open_session")?.args).toMatchObject({ id: "x1", tail: 400 });
    expect(q('[data-testid="show-earlier"]')?.textContent).toContain("(680 more)"); // 280 hidden + 400 not fetched

    q('[data-testid="continue-button"]')?.click();
    await until(() => q('[data-testid="prompt-input"]') !== null);
    const input = q('[data-testid="prompt-input"]') as HTMLTextAreaElement;
    input.value = "and one more thing";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    await until(() => !(q('[data-testid="send-button"]') as HTMLButtonElement).disabled);
    q('[data-testid="send-button"]')?.click();
    await until(() => calls.some((c) => c.cmd === "start_turn"));
    expect(calls.find((c) => c.cmd === "start_turn")?.args).toMatchObject({ sessionId: "x1", prompt: "and one more thing" });
    const users = () => Array.from(view.target.querySelectorAll('[data-testid="user-message"]')).map((u) => u.textContent);
    await until(() => users().at(-1) === "and one more thing");

    for (let i = 0; i < 10 && !users().includes("question 0: what is in file 0?"); i++) {
      const before = q('[data-testid="show-earlier"]')?.textContent;
      (q('[data-testid="show-earlier"]') as HTMLButtonElement).click();
      await until(() => q('[data-testid="show-earlier"]')?.textContent !== before && !(q('[data-testid="show-earlier"]') as HTMLButtonElement | null)?.disabled);
    }
    expect(users()[0]).toBe("question 0: what is in file 0?");
    expect(users().at(-1)).toBe("and one more thing");
    expect(calls.filter((c) => c.cmd === "session_messages").map((c) => c.args.before)).toEqual([400]);
  }, 20_000); // 800 messages in jsdom: slow when the machine is busy
});
