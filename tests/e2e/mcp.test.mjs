// MCP in the real window: add the in-repo MCP server (target/debug/examples/mcp_test_server) in
// Settings → Tools, run a turn that uses its `echo` tool (approving its first use), then press
// Stop during its `slow` tool. Build first: npm --prefix ui run build &&
// cargo build --bin talaria --example standin --example mcp_test_server

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { App, Keys, ROOT, Standin, log, makeTemp, scenario as wrap, standinEnv, stopAll, waitFor } from "./harness.mjs";

const SERVER_BIN = path.resolve(process.env.MCP_TEST_SERVER || path.join(ROOT, "target/debug/examples/mcp_test_server"));

let tmp;
let dataDir;
let workDir;
let stand;
let app;
let session;
let serverLog;

const scenario = (name, body) => wrap(name, () => app, body);

/** The test server's events so far (one JSON object per line). */
function serverEvents() {
  if (!fs.existsSync(serverLog)) return [];
  return fs
    .readFileSync(serverLog, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

/** The element with this test id, once it is there. */
async function appeared(testId) {
  await waitFor(`${testId} on screen`, async () => (await session.allByTestId(testId)).length > 0, { timeout: 10_000 });
  return session.byTestId(testId);
}

/** Types into the form field `name` (replacing what it holds). */
async function fill(name, text) {
  const field = await session.find(`[name="${name}"]`);
  await session.clear(field);
  await session.type(field, text);
}

/** The `data-state` of the server row called `name`, or null. */
function serverState(name) {
  return session.execute(
    `const row = document.querySelector('[data-testid="mcp-server"][data-name="${name}"]'); return row ? row.dataset.state : null;`,
  );
}

describe("MCP servers in the window", { timeout: 240_000 }, () => {
  before(async () => {
    assert.ok(fs.existsSync(SERVER_BIN), `no MCP test server at ${SERVER_BIN}: cargo build --example mcp_test_server`);
    ({ tmp, dataDir, workDir } = makeTemp("talaria-e2e-mcp-"));
    serverLog = path.join(tmp, "mcp-server.log");
    stand = await Standin.start();
    app = await App.launch({ logDir: tmp, env: standinEnv(stand, { dataDir, workDir }) });
    session = app.session;
  });

  after(async () => {
    if (app) await app.close({ screenshot: process.env.E2E_SCREENSHOT ? "mcp-final" : undefined });
    await stopAll();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(
    "adds the in-repo server in Settings, uses its tool in a turn, and stops during slow",
    scenario("mcp-add-use-stop", async () => {
      // Settings → Tools → Add a server.
      await session.click(await session.byTestId("settings-button"));
      await session.click(await appeared("settings-tab-tools"));
      await session.click(await appeared("mcp-add-button"));
      await fill("mcp_name", "intest");
      await fill("mcp_command", SERVER_BIN);
      // One argument per line (WebKitWebDriver drops a typed "\n": press Enter).
      await fill("mcp_args", `--log${Keys.ENTER}${serverLog}`);
      await session.click(await session.byTestId("mcp-save-button"));
      await waitFor(
        "the server ready in the Tools list",
        async () => {
          const state = await serverState("intest");
          if (state === "failed") {
            const row = await session.execute(
              `return document.querySelector('[data-testid="mcp-server"][data-name="intest"]').textContent;`,
            );
            throw new Error(`the server failed: ${row}; mcp.json: ${fs.readFileSync(path.join(dataDir, "mcp.json"), "utf8")}`);
          }
          return state === "ready";
        },
        { timeout: 20_000 },
      );
      const stateText = await session.textOf("mcp-state");
      assert.match(stateText, /Ready · 6 tools/);
      const saved = JSON.parse(fs.readFileSync(path.join(dataDir, "mcp.json"), "utf8"));
      assert.deepEqual(saved.mcpServers.intest, { command: SERVER_BIN, args: ["--log", serverLog] });
      if (process.env.E2E_SCREENSHOT) await app.saveShot("mcp-tools-tab");

      // Back to chat: a turn that calls intest__echo. The server is not trusted, so its first use asks.
      await stand.reset();
      await stand.push([
        { kind: "openai", items: [{ type: "tool_call", id: "call_1", name: "intest__echo", arguments: '{"message":"hello from the window"}' }] },
        { kind: "openai", items: [{ type: "text", text: "The MCP server echoed your greeting." }] },
      ]);
      await app.newConversation();
      await app.sendPrompt("Use the echo tool");
      await waitFor("the approval dialog", async () => (await session.allByTestId("approval-dialog")).length > 0, {
        timeout: 20_000,
      });
      const dialog = await session.textOf("approval-dialog");
      assert.match(dialog, /intest/);
      if (process.env.E2E_SCREENSHOT) await app.saveShot("mcp-approval");
      // "Allow for this session" covers the server's later calls.
      await session.click(await session.byTestId("approve-session-button"));
      await app.waitTurn("done");
      const cards = await session.execute(
        `return Array.from(document.querySelectorAll('[data-testid="tool-card"]')).map((c) => ({ tool: c.dataset.tool, server: c.dataset.server, state: c.dataset.state, text: c.textContent }));`,
      );
      assert.equal(cards.length, 1, JSON.stringify(cards));
      assert.equal(cards[0].tool, "intest__echo");
      assert.equal(cards[0].server, "intest");
      assert.equal(cards[0].state, "ok");
      assert.match(cards[0].text, /intest/);
      assert.deepEqual(await app.texts("tool-server"), ["intest"]);
      const echoed = serverEvents().find((e) => e.event === "call" && e.tool === "echo");
      assert.ok(echoed, "the server ran echo");

      // Stop during slow: no second approval in the same session, the turn stops, the server hears it.
      await stand.push([
        { kind: "openai", items: [{ type: "tool_call", id: "call_2", name: "intest__slow", arguments: '{"seconds": 30}' }] },
      ]);
      await app.sendPrompt("Now wait for a long time");
      await waitFor(
        "the server running slow",
        () => serverEvents().some((e) => e.event === "call" && e.tool === "slow"),
        { timeout: 20_000, interval: 25 },
      );
      assert.equal((await session.allByTestId("approval-dialog")).length, 0, "no second approval for the same server");
      const stop = await session.byTestId("stop-button");
      const pressed = Date.now();
      await session.click(stop);
      await waitFor("turn-status stopped", async () => (await app.status()) === "stopped", { timeout: 5000, interval: 25 });
      const elapsed = Date.now() - pressed;
      log(`Stop during the MCP tool slow → stopped in ${elapsed} ms`);
      assert.ok(elapsed <= 2000, `stopped after ${elapsed} ms`);
      await waitFor(
        "the server to hear notifications/cancelled",
        () => serverEvents().some((e) => e.event === "cancelled"),
        { timeout: 10_000, interval: 25 },
      );
      const slowCard = await session.execute(
        `const c = Array.from(document.querySelectorAll('[data-testid="tool-card"]')).find((c) => c.dataset.tool === "intest__slow"); return c ? c.dataset.state : null;`,
      );
      assert.equal(slowCard, "error", "the slow card is closed as cancelled");
      if (process.env.E2E_SCREENSHOT) await app.saveShot("mcp-chat");
    }),
  );

  it(
    "closing the window stops the server and everything it started",
    scenario("mcp-exit", async () => {
      const running = () => serversRunning(serverLog);
      assert.ok(running().length > 0, "the server runs while the window is open");
      await app.close();
      app = undefined;
      await waitFor("no MCP server process left", () => running().length === 0, { timeout: 10_000, interval: 50 });
    }),
  );
});

/** Processes whose command line mentions `marker`. */
function serversRunning(marker) {
  const found = [];
  for (const pid of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(marker)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
