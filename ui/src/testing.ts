// What the component tests share: waiting for the UI to settle, and a component mounted in a
// fresh element with the IPC mocks cleared after it.

import { clearMocks } from "@tauri-apps/api/mocks";
import { type Component, flushSync, mount, unmount } from "svelte";
import type { AppStatus, Settings, SettingsView } from "./lib/api";

/** Saved settings as a fresh install has them, with `overrides`. */
export function testSettings(overrides: Partial<Settings> = {}): Settings {
  return {
    provider: "openai",
    base_url: "",
    model: "",
    connect_timeout_s: 30,
    timeout_s: 300,
    stall_timeout_s: 120,
    max_iterations: 90,
    max_attempts: 3,
    max_tokens: 8192,
    thinking_budget: 0,
    workdir: "",
    approval_level: "ask",
    writable_dirs: ["~/.cargo"],
    terminal_env: [],
    ...overrides,
  };
}

/** What `get_settings` answers for `saved`, with the environment's `env` overrides. */
export function testSettingsView(saved: Settings, env: SettingsView["env"] = []): SettingsView {
  return {
    saved,
    env,
    key: { storage: "file", saved: null },
    sandbox: { available: true },
    data_dir: "/data",
    suggested_workdir: "/home/u/Talaria",
  };
}

/** What `app_status` answers for a set-up app (a model and a folder), with `overrides`. */
export function testStatus(overrides: Partial<AppStatus> = {}): AppStatus {
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
    ...overrides,
  };
}

/** Resolves once `check` holds (flushing Svelte's updates between tries), rejects after `timeout` ms. */
export function until(check: () => boolean, timeout = 2000): Promise<void> {
  const deadline = Date.now() + timeout;
  return new Promise((resolve, reject) => {
    const poll = () => {
      flushSync();
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error("condition not met in time"));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

/** A component mounted in its own element; `destroy` unmounts it and clears the IPC mocks. */
export class Mounted {
  readonly target: HTMLElement;
  #app: ReturnType<typeof mount> | null = null;

  constructor() {
    this.target = document.createElement("div");
    document.body.appendChild(this.target);
  }

  mount(component: Component): void {
    this.#app = mount(component, { target: this.target });
  }

  destroy(): void {
    if (this.#app) void unmount(this.#app);
    this.#app = null;
    this.target.remove();
    clearMocks();
  }

  /** The first element matching `selector` inside the component. */
  q(selector: string): HTMLElement | null {
    return this.target.querySelector<HTMLElement>(selector);
  }
}
