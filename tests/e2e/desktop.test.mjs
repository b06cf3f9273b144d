// Desktop manners of the real window: one window per data folder (a second launch hands over
// to the open window, under dbus-run-session), the window's size and position remembered, the
// exit codes, and a clean quit (the running turn stopped and recorded, its log on disk) on window
// close, Ctrl+Q, SIGTERM, SIGHUP and the display going away (logging out).
//
// Needs xdotool, xmessage (x11-utils), dbus-run-session (dbus) and a C compiler with libX11 for
// tools/x11-close.c.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";

import { APP_BIN, App, ROOT, Standin, ensureDisplay, log, makeTemp, running, scenario, sleep, startXvfb, stopAll, stopChild, waitFor } from "./harness.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const temps = [];
/** Apps started directly (not through WebDriver), stopped at the end if a test left one. */
const direct = [];
let stand;

after(async () => {
  for (const child of direct) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await stopAll();
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});

function temp() {
  const made = makeTemp("talaria-desktop-");
  temps.push(made.tmp);
  return made;
}

async function standin() {
  stand ??= await Standin.start();
  return stand;
}

function talariaEnv({ dataDir, workDir }, url) {
  return {
    TALARIA_PROVIDER: "openai",
    TALARIA_BASE_URL: `${url}/v1`,
    TALARIA_MODEL: "standin-model",
    TALARIA_API_KEY: "sk-standin",
    TALARIA_DATA_DIR: dataDir,
    TALARIA_WORKDIR: workDir,
  };
}

function xdotool(display, ...args) {
  const run = spawnSync("xdotool", args, { env: { ...process.env, DISPLAY: display }, encoding: "utf8" });
  assert.ok(!run.error, `xdotool is missing (apt install xdotool): ${run.error?.message}`);
  return { ok: run.status === 0, out: run.stdout.trim(), err: run.stderr.trim() };
}

/** The visible top-level window of process `pid` on `display`. */
function windowOf(display, pid) {
  return waitFor(`a visible window of process ${pid}`, () => {
    const found = xdotool(display, "search", "--all", "--onlyvisible", "--pid", String(pid), "--name", "^Talaria$");
    return found.ok && found.out ? found.out.split("\n")[0] : null;
  }, { timeout: 30_000, interval: 100 });
}

function environOf(pid) {
  const pairs = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
  return Object.fromEntries(pairs.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
}

/** tools/x11-close.c, compiled once into target/e2e-tools. */
function x11Close() {
  const source = path.join(HERE, "tools/x11-close.c");
  const binary = path.join(ROOT, "target/e2e-tools/x11-close");
  if (!fs.existsSync(binary) || fs.statSync(binary).mtimeMs < fs.statSync(source).mtimeMs) {
    fs.mkdirSync(path.dirname(binary), { recursive: true });
    const cc = spawnSync("cc", ["-O2", "-Wall", "-o", binary, source, "-lX11"], { encoding: "utf8" });
    assert.equal(cc.status, 0, `could not build x11-close (needs cc and libx11-dev): ${cc.stderr}`);
  }
  return binary;
}

function closeWindow(display, window) {
  const run = spawnSync(x11Close(), [window], { env: { ...process.env, DISPLAY: display }, encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
}

/** Ctrl+Q typed on the keyboard (XTEST) into the window, which gets the focus first. */
function pressCtrlQ(display, window) {
  assert.ok(xdotool(display, "windowfocus", "--sync", window).ok);
  const key = xdotool(display, "key", "--clearmodifiers", "ctrl+q");
  assert.ok(key.ok, key.err);
}

/** The records of the only session log in `dataDir`. */
function sessionRecords(dataDir) {
  const logs = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".jsonl")) logs.push(full);
    }
  };
  walk(path.join(dataDir, "sessions"));
  assert.equal(logs.length, 1, `one session log, found ${logs.join(", ")}`);
  return fs
    .readFileSync(logs[0], "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

/** Starts a reply that streams a few words and then stalls, so the turn is running when we quit. */
async function startStalledTurn(app, server) {
  await server.reset();
  await server.push({
    kind: "openai",
    items: [{ type: "text", text: "Quitting must keep these first words of the reply" }],
    after: { n_events: 3, tail: { type: "stall" } },
  });
  await app.sendPrompt("Write something long");
  return waitFor("the reply to be streaming", async () => {
    const text = (await app.session.textOf("assistant-message")) ?? "";
    return (await app.status()) === "running" && text.trim().length > 0 ? text.trim() : null;
  }, { timeout: 20_000 });
}

/** The log of a turn that was running when the app quit: the prompt, the words that had
 * streamed (marked partial), and a turn_end that says cancelled. */
function assertRecordedCancelled(dataDir, shown) {
  const records = sessionRecords(dataDir);
  const user = records.find((r) => r.type === "message" && r.role === "user");
  assert.equal(user?.content, "Write something long");
  const reply = records.findLast((r) => r.type === "message" && r.role === "assistant");
  assert.ok(reply, `an assistant message in ${JSON.stringify(records)}`);
  assert.equal(reply.partial, true, JSON.stringify(reply));
  assert.ok(reply.content.length > 0 && shown.startsWith(reply.content.trim().slice(0, 5)), `recorded "${reply.content}", shown "${shown}"`);
  const end = records.findLast((r) => r.type === "turn_end");
  assert.equal(end?.status, "cancelled", JSON.stringify(records.slice(-3)));
}

/** Waits for `pid` to end by itself. */
async function exited(pid, what, timeout = 20_000) {
  await waitFor(`${what}: the app (pid ${pid}) to exit`, () => !running(pid), { timeout, interval: 50 });
}

/** Starts the app binary directly (no WebDriver), as the desktop menu would. */
function launchDirect(env, extra = {}) {
  const child = spawn(APP_BIN, [], {
    env: {
      ...process.env,
      WEBKIT_DISABLE_DMABUF_RENDERER: "1",
      WEBKIT_DISABLE_COMPOSITING_MODE: "1",
      ...env,
      ...extra,
    },
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  direct.push(child);
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const done = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal, stderr })));
  return { child, done };
}

async function exitOf(done, what, timeout = 20_000) {
  const result = await Promise.race([done, sleep(timeout).then(() => null)]);
  assert.ok(result, `${what}: still running after ${timeout} ms`);
  return result;
}

describe("desktop manners", { timeout: 600_000 }, () => {
  let app;
  /** On failure, saves the window and logs; always closes the app so the next test can start one. */
  const wrap = (name, body) => async (t) => {
    try {
      await scenario(name, () => app, body)(t);
    } finally {
      if (app) await app.close();
      app = undefined;
    }
  };

  const quitWays = [
    ["the window is closed", (display, window) => closeWindow(display, window)],
    ["Ctrl+Q is pressed", (display, window) => pressCtrlQ(display, window)],
    ["SIGTERM arrives", (_display, _window, pid) => process.kill(pid, "SIGTERM")],
    ["SIGHUP arrives (the session ends)", (_display, _window, pid) => process.kill(pid, "SIGHUP")],
  ];
  for (const [way, quit] of quitWays) {
    it(
      `stops the running turn and writes its log when ${way}`,
      wrap(`quit-${way.split(" ")[0]}`, async () => {
        const server = await standin();
        const dirs = temp();
        app = await App.launch({ logDir: dirs.tmp, env: talariaEnv(dirs, server.url) });
        const pid = app.pid();
        const display = environOf(pid).DISPLAY;
        const window = await windowOf(display, pid);
        const shown = await startStalledTurn(app, server);
        const asked = Date.now();
        quit(display, window, pid);
        await exited(pid, way);
        log(`${way}: the app exited ${Date.now() - asked} ms later`);
        assertRecordedCancelled(dirs.dataDir, shown);
      }),
    );
  }

  // Logging out ends the display server; the session manager may send SIGTERM at the same time.
  for (const [way, withSignal] of [
    ["the display goes away (logging out)", false],
    ["SIGTERM and the end of the display come together", true],
  ]) {
    it(
      `stops the running turn and writes its log when ${way}`,
      wrap(`quit-display-${withSignal ? "and-signal" : "lost"}`, async () => {
        const server = await standin();
        const dirs = temp();
        const own = await startXvfb();
        app = await App.launch({ logDir: dirs.tmp, env: { ...talariaEnv(dirs, server.url), DISPLAY: own.display } });
        const pid = app.pid();
        await windowOf(own.display, pid);
        const shown = await startStalledTurn(app, server);
        if (withSignal) process.kill(pid, "SIGTERM");
        await stopChild(own.child, "Xvfb");
        await exited(pid, way);
        assertRecordedCancelled(dirs.dataDir, shown);
      }),
    );
  }

  it(
    "exits 0 when closed, 129 on SIGHUP and 143 on SIGTERM",
    wrap("exit-codes", async () => {
      const server = await standin();
      const display = await ensureDisplay();
      for (const [how, quit, want] of [
        ["window closed", (window) => closeWindow(display, window), 0],
        ["SIGHUP", (_window, child) => child.kill("SIGHUP"), 129],
        ["SIGTERM", (_window, child) => child.kill("SIGTERM"), 143],
      ]) {
        const dirs = temp();
        const { child, done } = launchDirect(talariaEnv(dirs, server.url), { DISPLAY: display });
        const window = await windowOf(display, child.pid);
        quit(window, child);
        const result = await exitOf(done, how);
        assert.equal(result.code, want, `${how}: exit ${result.code} (signal ${result.signal}); stderr:\n${result.stderr}`);
      }
    }),
  );

  it(
    "remembers the window's size and position",
    wrap("window-state", async () => {
      const server = await standin();
      const dirs = temp();
      const env = talariaEnv(dirs, server.url);
      app = await App.launch({ logDir: dirs.tmp, env });
      let pid = app.pid();
      const display = environOf(pid).DISPLAY;
      let window = await windowOf(display, pid);
      assert.ok(xdotool(display, "windowsize", "--sync", window, "900", "640").ok);
      assert.ok(xdotool(display, "windowmove", "--sync", window, "130", "90").ok);
      await waitFor("the window at 130,90 900x640", () => /Position: 130,90.*Geometry: 900x640/s.test(xdotool(display, "getwindowgeometry", window).out));
      pressCtrlQ(display, window);
      await exited(pid, "Ctrl+Q");
      const saved = JSON.parse(fs.readFileSync(path.join(dirs.dataDir, "window-state.json"), "utf8"));
      assert.deepEqual(saved, { x: 130, y: 90, width: 900, height: 640, maximized: false });
      await app.close();

      app = await App.launch({ logDir: dirs.tmp, env });
      pid = app.pid();
      window = await windowOf(display, pid);
      const geometry = xdotool(display, "getwindowgeometry", window).out;
      assert.match(geometry, /Position: 130,90.*Geometry: 900x640/s, geometry);
    }),
  );

  it(
    "shows the version and the data folder in the About box, and opens the folder",
    wrap("about", async () => {
      const server = await standin();
      const dirs = temp();
      // The desktop's opener (xdg-open) stands in for a file manager, which Xvfb does not have:
      // this one writes down what it was asked to open.
      const bin = path.join(dirs.tmp, "bin");
      const opened = path.join(dirs.tmp, "opened.txt");
      fs.mkdirSync(bin);
      fs.writeFileSync(path.join(bin, "xdg-open"), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${opened}'\n`, { mode: 0o755 });
      app = await App.launch({ logDir: dirs.tmp, env: { ...talariaEnv(dirs, server.url), PATH: `${bin}:${process.env.PATH}` } });
      const { session } = app;
      await session.click(await session.byTestId("about-button"));
      await waitFor("the About box", async () => (await session.textOf("about-version")) !== null);
      const version = /^version = "([^"]+)"/m.exec(fs.readFileSync(path.join(ROOT, "Cargo.toml"), "utf8"))[1];
      assert.equal(await session.textOf("about-version"), version);
      assert.equal(await session.textOf("about-data-dir"), dirs.dataDir);
      if (process.env.E2E_SCREENSHOT) await app.saveShot("about");
      await session.click(await session.byTestId("about-open-folder"));
      await waitFor("xdg-open to be asked to open the data folder", () => fs.existsSync(opened) && fs.readFileSync(opened, "utf8").trim());
      assert.equal(fs.readFileSync(opened, "utf8").trim(), dirs.dataDir);
      await session.click(await session.byTestId("about-close"));
      await waitFor("the About box to close", async () => (await session.allByTestId("about-dialog")).length === 0);
    }),
  );

  it(
    "hands a second launch over to the open window, which takes the focus (one window per data folder)",
    wrap("single-instance", async () => {
      const server = await standin();
      const dirs = temp();
      app = await App.launch({ logDir: dirs.tmp, env: talariaEnv(dirs, server.url), wrap: ["dbus-run-session", "--"] });
      const pid = app.pid();
      const env = environOf(pid);
      assert.ok(env.DBUS_SESSION_BUS_ADDRESS, "dbus-run-session gives the app a session bus");
      const display = env.DISPLAY;
      const window = await windowOf(display, pid);
      const focused = () => app.session.execute("return document.hasFocus();");

      // The user is in another program, which has the keyboard focus.
      const elsewhere = spawn("xmessage", ["-title", "another program", "-geometry", "+700+500", "Another program"], {
        env: { ...process.env, DISPLAY: display },
        stdio: "ignore",
      });
      direct.push(elsewhere);
      const otherWindow = await waitFor("the other program's window", () => {
        const found = xdotool(display, "search", "--onlyvisible", "--name", "^another program$");
        return found.ok && found.out ? found.out.split("\n")[0] : null;
      });
      assert.ok(xdotool(display, "windowfocus", "--sync", otherWindow).ok);
      await waitFor("the Talaria window to lose the focus", async () => !(await focused()));

      const second = spawn(APP_BIN, [], { env, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      second.stderr.on("data", (chunk) => (stderr += chunk));
      const started = Date.now();
      const result = await exitOf(new Promise((resolve) => second.once("exit", (code, signal) => resolve({ code, signal }))), "the second launch");
      log(`the second launch exited with ${result.code} after ${Date.now() - started} ms`);
      assert.equal(result.code, 0, `second launch: ${JSON.stringify(result)}\n${stderr}`);
      await waitFor("the open window to have the focus again", focused, { timeout: 10_000 });
      assert.equal(xdotool(display, "getwindowfocus").out, window);
      const windows = xdotool(display, "search", "--onlyvisible", "--name", "^Talaria$").out.split("\n").filter(Boolean);
      assert.deepEqual(windows, [window], "still one window");
      elsewhere.kill();

      // Another data folder is another app: it opens a window of its own.
      const other = temp();
      const { child, done } = launchDirect({ ...env, TALARIA_DATA_DIR: other.dataDir });
      await windowOf(display, child.pid);
      child.kill("SIGTERM");
      assert.equal((await exitOf(done, "the app of the other data folder")).code, 143);
    }),
  );
});
