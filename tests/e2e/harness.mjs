// What every end-to-end test file shares: the display, the stand-in LLM server, and launching the
// real Talaria window through tauri-driver + WebKitWebDriver. Each test file launches its own app
// (with its own data folder and environment) and stops it in its `after` hook.
//
// Env: TALARIA_APP (app binary that serves ui/dist; default target/debug/talaria),
//      STANDIN_BIN (default target/debug/examples/standin), TAURI_DRIVER (default: on PATH),
//      TAURI_DRIVER_PORT (default 4444), E2E_OUT (artifacts; default tests/e2e/out).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

import { Session, sleep, waitFor } from "./webdriver.mjs";

export { Keys, Session, sleep, waitFor } from "./webdriver.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, "../..");
export const APP_BIN = path.resolve(process.env.TALARIA_APP || path.join(ROOT, "target/debug/talaria"));
export const STANDIN_BIN = path.resolve(process.env.STANDIN_BIN || path.join(ROOT, "target/debug/examples/standin"));
export const TAURI_DRIVER = process.env.TAURI_DRIVER || "tauri-driver";
export const DRIVER_PORT = Number(process.env.TAURI_DRIVER_PORT || 4444);
export const OUT = path.resolve(process.env.E2E_OUT || path.join(HERE, "out"));
// E2E_THEME=dark runs the window with GTK's dark theme (prefers-color-scheme: dark) and names
// the screenshots *-dark.png.
export const THEME = process.env.E2E_THEME === "dark" ? "dark" : "";
export const shotName = (name) => `${name}${THEME ? `-${THEME}` : ""}.png`;

export function log(message) {
  process.stderr.write(`[e2e] ${message}\n`);
}

/** Child processes of this test file, each in its own process group. */
const children = [];

/** Starts a child in its own process group so the whole tree can be stopped by its id. */
export function start(name, command, args, options = {}) {
  const child = spawn(command, args, { detached: true, ...options });
  children.push({ name, child });
  child.on("error", (error) => log(`${name} failed to start: ${error.message}`));
  return child;
}

/** Stops one child (SIGTERM to its group, SIGKILL after 3 s). */
export async function stopChild(child, name = "child") {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    return;
  }
  const quit = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]);
  if (!quit) {
    log(`${name} ignored SIGTERM; killing it`);
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Stops every child this file started, newest first. */
export async function stopAll() {
  for (const { name, child } of children.reverse()) await stopChild(child, name);
  children.length = 0;
  display = undefined;
}

function freeDisplay() {
  for (let n = 99; n < 160; n++) {
    if (!fs.existsSync(`/tmp/.X11-unix/X${n}`) && !fs.existsSync(`/tmp/.X${n}-lock`)) return n;
  }
  throw new Error("no free X display number between :99 and :159");
}

let display;

/** A new Xvfb server of its own: `{ display, child }` (stop it with stopChild to end the display). */
export async function startXvfb() {
  const n = freeDisplay();
  const name = `:${n}`;
  const xvfb = start("Xvfb", "Xvfb", [name, "-screen", "0", "1280x800x24", "-nolisten", "tcp"], { stdio: "ignore" });
  await waitFor("Xvfb to open its socket", () => fs.existsSync(`/tmp/.X11-unix/X${n}`) || xvfb.exitCode !== null, {
    timeout: 10_000,
  });
  assert.equal(xvfb.exitCode, null, "Xvfb exited at once; is it installed (apt install xvfb xauth)?");
  log(`started Xvfb on ${name}`);
  return { display: name, child: xvfb };
}

/** The X display: $DISPLAY, else an Xvfb started here (once per test file). */
export async function ensureDisplay() {
  if (process.env.DISPLAY) return process.env.DISPLAY;
  if (!display) display = (await startXvfb()).display;
  return display;
}

/** Process ids of every descendant of `pid` (from /proc). */
export function descendants(pid) {
  const children = new Map();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name may hold spaces and parentheses: the fields start after the last ')'.
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  const found = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of children.get(queue.shift()) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** True while `pid` runs (a zombie waiting for its parent counts as ended). */
export function running(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** The stand-in LLM server as a process; `url` is its base (no trailing slash). */
export class Standin {
  constructor(url, child) {
    this.url = url;
    this.child = child;
  }

  static async start() {
    assert.ok(
      fs.existsSync(STANDIN_BIN),
      `stand-in server not found at ${STANDIN_BIN}: run cargo build --example standin, or set STANDIN_BIN`,
    );
    const child = start("standin", STANDIN_BIN, [], { stdio: ["ignore", "pipe", "inherit"] });
    const lines = readline.createInterface({ input: child.stdout });
    const url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("stand-in did not print LISTENING within 15 s")), 15_000);
      lines.on("line", (line) => {
        const match = /^LISTENING (\S+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once("exit", (code) => reject(new Error(`stand-in exited early with ${code}`)));
    });
    return new Standin(url.replace(/\/$/, ""), child);
  }

  async call(method, pathName, body) {
    const response = await fetch(`${this.url}${pathName}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    assert.ok(response.ok, `stand-in ${method} ${pathName}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  reset() {
    return this.call("POST", "/_standin/reset");
  }

  /** Queues one scripted reply (or an array of them). */
  push(reply) {
    return this.call("POST", "/_standin/push", reply);
  }

  requests() {
    return this.call("GET", "/_standin/requests");
  }
}

/** The environment that points the app at a stand-in server (openai) with the folders of `makeTemp`. */
export function standinEnv(stand, { dataDir, workDir }) {
  return {
    TALARIA_PROVIDER: "openai",
    TALARIA_BASE_URL: `${stand.url}/v1`,
    TALARIA_MODEL: "standin-model",
    TALARIA_DATA_DIR: dataDir,
    TALARIA_WORKDIR: workDir,
    TALARIA_API_KEY: "sk-standin",
  };
}

/** A fresh temp folder with `data/` and `work/` inside. */
export function makeTemp(prefix = "talaria-e2e-") {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const dataDir = path.join(tmp, "data");
  const workDir = path.join(tmp, "work");
  fs.mkdirSync(dataDir);
  fs.mkdirSync(workDir);
  return { tmp, dataDir, workDir };
}

/**
 * The real app window under tauri-driver. `env` is laid over the process environment (a value of
 * `undefined` removes a variable); `port` picks the tauri-driver port (the native driver gets the
 * next one).
 */
export class App {
  constructor({ session, driver, driverLog, port, app }) {
    this.session = session;
    this.driver = driver;
    this.driverLog = driverLog;
    this.port = port;
    this.app = app;
  }

  /** The app's process id (WebKitWebDriver starts it, under tauri-driver). */
  pid() {
    const binary = fs.realpathSync(this.app);
    const pid = descendants(this.driver.pid).find((p) => {
      try {
        return fs.realpathSync(`/proc/${p}/exe`) === binary;
      } catch {
        return false;
      }
    });
    assert.ok(pid, `no process of ${binary} under tauri-driver ${this.driver.pid}`);
    return pid;
  }

  static async launch({ env = {}, logDir, port = DRIVER_PORT, app = APP_BIN, wrap = null, cwd } = {}) {
    assert.ok(fs.existsSync(app), `app binary not found at ${app}: build it (see tests/e2e/README.md) or set TALARIA_APP`);
    const shown = await ensureDisplay();
    const dir = logDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "talaria-e2e-log-"));
    const driverLog = path.join(dir, `tauri-driver-${port}.log`);
    const logFd = fs.openSync(driverLog, "a");
    const merged = {
      ...process.env,
      DISPLAY: shown,
      // Software rendering: GPU paths of WebKitGTK show blank windows under Xvfb.
      WEBKIT_DISABLE_DMABUF_RENDERER: process.env.WEBKIT_DISABLE_DMABUF_RENDERER ?? "1",
      WEBKIT_DISABLE_COMPOSITING_MODE: process.env.WEBKIT_DISABLE_COMPOSITING_MODE ?? "1",
      RUST_BACKTRACE: "1",
      ...(THEME === "dark" ? { GTK_THEME: "Adwaita:dark" } : {}),
      ...env,
    };
    for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key];
    const driverArgs = ["--port", String(port), "--native-port", String(port + 1)];
    // `wrap` runs tauri-driver under another program (e.g. ["dbus-run-session", "--"]).
    const [command, args] = wrap ? [wrap[0], [...wrap.slice(1), TAURI_DRIVER, ...driverArgs]] : [TAURI_DRIVER, driverArgs];
    const driver = start("tauri-driver", command, args, { env: merged, stdio: ["ignore", logFd, logFd], cwd });
    fs.closeSync(logFd);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      `tauri-driver at ${base}/status`,
      async () => {
        assert.equal(driver.exitCode, null, `tauri-driver exited (${driver.exitCode}); see ${driverLog}`);
        const response = await fetch(`${base}/status`, { signal: AbortSignal.timeout(2000) });
        return response.status === 200;
      },
      { timeout: 30_000, interval: 200 },
    );
    const session = await Session.create(base, { alwaysMatch: { "tauri:options": { application: app } } });
    log(`WebDriver session ${session.id} on port ${port}`);
    // Known flake: the first command after session creation sometimes drops; retry it once.
    try {
      await session.title();
    } catch (error) {
      log(`first command failed (${error.message}); retrying once`);
      await sleep(500);
      await session.title();
    }
    const launched = new App({ session, driver, driverLog, port, app });
    await waitFor("the UI to load (turn-status present)", async () => (await launched.status()) !== null, {
      timeout: 30_000,
      interval: 200,
    });
    return launched;
  }

  /** Ends the WebDriver session (which closes the window) and stops tauri-driver. */
  async close({ screenshot } = {}) {
    if (this.session) {
      try {
        if (screenshot) await this.saveShot(screenshot);
        await this.session.delete();
      } catch (error) {
        log(`could not delete the WebDriver session: ${error.message}`);
      }
      this.session = undefined;
    }
    if (this.driver) await stopChild(this.driver, "tauri-driver");
    this.driver = undefined;
  }

  async saveShot(name) {
    fs.mkdirSync(OUT, { recursive: true });
    const file = path.join(OUT, shotName(name));
    fs.writeFileSync(file, await this.session.screenshot());
    log(`screenshot: ${file}`);
    return file;
  }

  status() {
    return this.session.textOf("turn-status");
  }

  async newConversation() {
    await this.session.click(await this.session.byTestId("new-session-button"));
    await waitFor("an empty chat", async () => (await this.session.allByTestId("user-message")).length === 0);
  }

  async sendPrompt(prompt) {
    const input = await this.session.byTestId("prompt-input");
    await this.session.type(input, prompt);
    const send = await this.session.byTestId("send-button");
    await waitFor("send-button to be enabled", () => this.session.enabled(send), { timeout: 5000 });
    await this.session.click(send);
  }

  /** Waits for the turn to end `want` (default done) and its end to be drawn; an error status fails with the banner's text. */
  async waitTurn(want = "done", timeout = 30_000) {
    await waitFor(
      `turn-status ${want}`,
      async () => {
        const now = await this.status();
        if (now === "error" && want !== "error") throw new Error(`turn failed: ${await this.session.textOf("error-banner")}`);
        return now === want;
      },
      { timeout },
    );
    // The end of a turn is drawn over three frames: the status, then the reply's last blocks
    // (and its copy button), then the edit and regenerate buttons and the token counts.
    await this.session.execute(
      "return new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(() => done(true)))));",
    );
  }

  /** textContent of every element with this test id (WebKit's element text skips ellipsized spans). */
  texts(testId) {
    return this.session.execute(
      `return Array.from(document.querySelectorAll('[data-testid="${testId}"]')).map((e) => e.textContent);`,
    );
  }

  /** On failure: the window as a PNG and the app's log, copied where the output says. */
  async saveArtifacts(name) {
    fs.mkdirSync(OUT, { recursive: true });
    const stem = path.join(OUT, name.replace(/[^\w.-]+/g, "_"));
    if (this.session) {
      try {
        fs.writeFileSync(`${stem}.png`, await this.session.screenshot());
        log(`screenshot: ${stem}.png`);
      } catch (error) {
        log(`no screenshot: ${error.message}`);
      }
    }
    if (this.driverLog && fs.existsSync(this.driverLog)) {
      fs.copyFileSync(this.driverLog, `${stem}.app.log`);
      log(`app + driver log: ${stem}.app.log`);
    }
  }
}

/** Wraps a test body: on failure saves the artifacts of whichever app `getApp()` returns. */
export function scenario(name, getApp, body) {
  return async (t) => {
    try {
      await body(t);
    } catch (error) {
      const app = getApp();
      if (app) await app.saveArtifacts(name);
      throw error;
    }
  };
}

/**
 * Installs a requestAnimationFrame watcher in the page, which records every frame gap (ms).
 * Installing one stops the one before at once (a stopped loop would otherwise draw one more
 * frame into the new list); `frameGaps(session)` stops it and returns the gaps.
 */
export async function watchFrames(session) {
  await session.execute(`
    const me = {}; window.__frameWatcher = me; window.__gaps = []; let last = performance.now();
    const f = () => { if (window.__frameWatcher !== me) return;
      const n = performance.now(); window.__gaps.push(n - last); last = n; requestAnimationFrame(f); };
    requestAnimationFrame(f);`);
}

/** Stops the watcher; returns its frame gaps in ms. */
export async function frameGaps(session) {
  return session.execute("window.__frameWatcher = null; return window.__gaps;");
}
