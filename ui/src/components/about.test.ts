import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { flushSync, mount, unmount } from "svelte";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import App from "../App.svelte";

function until(check: () => boolean, timeout = 2000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeout;
  return new Promise((resolve, reject) => {
    const poll = () => {
      flushSync();
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error(`${what} not met in time`));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

describe("About and quitting", () => {
  let target: HTMLElement;
  let app: ReturnType<typeof mount> | null = null;
  let calls: string[];
  let openFails: boolean;

  beforeEach(() => {
    // jsdom has <dialog> without its modal methods; the real window (WebKit) has them.
    const proto = HTMLDialogElement.prototype as HTMLDialogElement & { showModal?: () => void };
    proto.showModal ??= function (this: HTMLDialogElement) {
      this.setAttribute("open", "");
    };
    proto.close ??= function (this: HTMLDialogElement) {
      this.removeAttribute("open");
      this.dispatchEvent(new Event("close"));
    };
    target = document.createElement("div");
    document.body.appendChild(target);
    calls = [];
    openFails = false;
    mockIPC((cmd) => {
      calls.push(cmd);
      switch (cmd) {
        case "app_status":
          return { configured: true, data_dir: "/home/ana/.local/share/app.talaria.desktop", provider: "openai", model: "m", base_url: "", env_overrides: [] };
        case "list_sessions":
          return [];
        case "about":
          return { version: "1.2.3", data_dir: "/home/ana/.local/share/app.talaria.desktop", data_dir_from_env: false };
        case "open_data_folder":
          if (openFails) throw { kind: "io", message: "no file manager could open the folder; install xdg-utils" };
          return null;
        case "quit_app":
          return null;
        default:
          throw { kind: "unknown", message: `no mock for ${cmd}` };
      }
    });
  });

  afterEach(() => {
    if (app) void unmount(app);
    app = null;
    target.remove();
    clearMocks();
  });

  const q = (sel: string) => target.ownerDocument.querySelector<HTMLElement>(sel);

  it("shows the version and data folder, opens the folder, and closes", async () => {
    app = mount(App, { target });
    await until(() => q('[data-testid="about-button"]') !== null);
    q('[data-testid="about-button"]')?.click();
    await until(() => q('[data-testid="about-version"]') !== null, 2000, "version");
    expect(q('[data-testid="about-version"]')?.textContent).toBe("1.2.3");
    expect(q('[data-testid="about-data-dir"]')?.textContent).toBe("/home/ana/.local/share/app.talaria.desktop");

    q('[data-testid="about-open-folder"]')?.click();
    const button = q('[data-testid="about-open-folder"]') as HTMLButtonElement;
    await until(() => calls.includes("open_data_folder") && !button.disabled, 2000, "opened");
    expect(q('[data-testid="about-dialog"] [role="alert"]')).toBeNull();

    openFails = true;
    q('[data-testid="about-open-folder"]')?.click();
    await until(() => (q('[data-testid="about-dialog"] [role="alert"]')?.textContent ?? "").includes("xdg-utils"), 2000, "the error");

    q('[data-testid="about-close"]')?.click();
    await until(() => q('[data-testid="about-dialog"]') === null, 2000, "closed");
  });

  it("quits on Ctrl+Q, and not on Q or Ctrl+Shift+Q", async () => {
    app = mount(App, { target });
    await until(() => q('[data-testid="prompt-input"]') !== null);
    const press = (init: KeyboardEventInit) => window.dispatchEvent(new KeyboardEvent("keydown", { bubbles: true, ...init }));
    press({ key: "q" });
    press({ key: "Q", ctrlKey: true, shiftKey: true });
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).not.toContain("quit_app");
    press({ key: "q", ctrlKey: true });
    await until(() => calls.includes("quit_app"));
  });
});
