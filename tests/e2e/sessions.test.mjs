// End-to-end tests of session management in the real window: rename survives a restart;
// delete offers Undo, and a delete kept across a restart leaves the list and waits in the trash;
// editing an earlier message forks the session (the original log untouched, the fork holds the
// edit, its header links back to the original). Also saves docs/screenshots/session-menu.png,
// the session list with a row's menu open. Run: node --test tests/e2e/sessions.test.mjs

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { App, Keys, ROOT, Standin, log, makeTemp, scenario as wrap, sleep, standinEnv, stopAll, waitFor } from "./harness.mjs";

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

let tmp;
let dataDir;
let workDir;
let stand;
let app;

const scenario = (name, body) => wrap(name, () => app, body);
const s = () => app.session;

function launch(more = {}) {
  return App.launch({
    logDir: tmp,
    env: { ...standinEnv(stand, { dataDir, workDir }), ...more },
  });
}

async function restart() {
  await app.close();
  app = await launch();
}

/** Every log under the data dir's sessions folder, by session id. */
function logs() {
  const found = new Map();
  const walk = (dir) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".jsonl")) found.set(entry.name.slice(0, -".jsonl".length), full);
    }
  };
  walk(path.join(dataDir, "sessions"));
  return found;
}

/** The records of a log, parsed. */
const records = (file) =>
  fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));

/** The rows of the session list: [{id, title}]. */
function rows() {
  return s().execute(`return Array.from(document.querySelectorAll('[data-testid="session-item"]')).map((e) => ({
    id: e.dataset.sessionId, title: e.querySelector('.title, .hit-title')?.textContent ?? '' }));`);
}

async function waitRow(what, check, timeout = 15_000) {
  let last = [];
  await waitFor(
    what,
    async () => {
      last = await rows();
      return check(last);
    },
    { timeout },
  ).catch((error) => {
    throw new Error(`${error.message}; rows: ${JSON.stringify(last)}`);
  });
  return last;
}

/** A new conversation with one turn per prompt; returns the session's id. */
async function converse(prompts) {
  await app.newConversation();
  for (const [prompt, reply] of prompts) {
    await stand.push({ kind: "openai", items: [{ type: "text", text: reply }] });
    await app.sendPrompt(prompt);
    await app.waitTurn("done");
  }
  const title = prompts[0][0];
  const found = await waitRow(`“${title}” in the list`, (list) => list.some((r) => r.title === title));
  return found.find((r) => r.title === title).id;
}

/** Moves the mouse over `element` (the menu and edit buttons show on hover). */
function hover(element) {
  return s().cmd("POST", "/actions", {
    actions: [
      {
        type: "pointer",
        id: "mouse",
        parameters: { pointerType: "mouse" },
        actions: [{ type: "pointerMove", duration: 0, origin: { [ELEMENT]: element }, x: 0, y: 0 }],
      },
    ],
  });
}

/** Opens the row menu of session `id` and clicks `action` (a data-testid) in it. */
async function menuAction(id, action) {
  const row = await s().find(`[data-testid="session-item"][data-session-id="${id}"]`);
  await hover(row);
  await s().click(await s().find(`[data-testid="session-menu"][data-session-id="${id}"]`));
  await waitFor(`the menu's ${action}`, async () => (await s().allByTestId(action)).length === 1);
  await s().click(await s().byTestId(action));
}

describe("Session management in the window", { timeout: 300_000 }, () => {
  before(async () => {
    ({ tmp, dataDir, workDir } = makeTemp("talaria-e2e-sessions-"));
    stand = await Standin.start();
    log(`stand-in at ${stand.url}; data in ${dataDir}`);
    app = await launch();
  });

  after(async () => {
    if (app) await app.close();
    await stopAll();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(
    "renames a session from its menu, and the title is kept after a restart",
    scenario("rename-restart", async () => {
      const id = await converse([["Plan the 2.0 release", "Here is a plan: freeze, test, ship."]]);
      await menuAction(id, "session-rename");
      // The input opens with the old title selected: typing replaces it.
      const input = await s().find('input[name="title"]');
      await s().type(input, `Release plan 2.0${Keys.ENTER}`);
      await waitRow("the new title", (list) => list.some((r) => r.id === id && r.title === "Release plan 2.0"));
      const last = records(logs().get(id)).at(-1);
      assert.deepEqual([last.type, last.title], ["title", "Release plan 2.0"], "a title record in the session's own log");

      await restart();
      await waitRow("the title after a restart", (list) => list.some((r) => r.id === id && r.title === "Release plan 2.0"));
      // A session of an earlier run opens from its row.
      await s().click(await s().find(`[data-testid="session-item"][data-session-id="${id}"]`));
      await waitFor("its conversation", async () => (await app.texts("user-message")).includes("Plan the 2.0 release"));
    }),
  );

  it(
    "deletes with Undo, and a delete kept over a restart leaves the list for the trash",
    scenario("delete-undo-restart", async () => {
      const id = await converse([["Scratch notes to throw away", "Noted."]]);
      const file = logs().get(id);
      await menuAction(id, "session-delete");
      await waitFor("the undo button", async () => (await s().allByTestId("undo-button")).length === 1);
      await waitRow("the row gone", (list) => !list.some((r) => r.id === id));
      assert.ok(!fs.existsSync(file), "the log left the sessions folder");
      await s().click(await s().byTestId("undo-button"));
      await waitRow("the row back after Undo", (list) => list.some((r) => r.id === id));
      assert.ok(fs.existsSync(file), "Undo put the log back");

      await menuAction(id, "session-delete");
      await waitRow("the row gone again", (list) => !list.some((r) => r.id === id));
      await restart();
      await waitRow("the list after a restart", (list) => list.length > 0 && !list.some((r) => r.id === id));
      const trashed = path.join(dataDir, "trash", `${id}.jsonl`);
      assert.ok(fs.existsSync(trashed), `in the trash: ${trashed}`);
      assert.equal(fs.readFileSync(trashed, "utf8").split("\n")[0].includes(id), true);
    }),
  );

  it(
    "edits an earlier message into a fork; the original stays as it was and the fork links back",
    scenario("edit-fork", async () => {
      const original = await converse([
        ["What is in the config file?", "It sets the port to 8080."],
        ["And the log level?", "It is set to debug."],
      ]);
      const file = logs().get(original);
      const before = fs.readFileSync(file);

      const first = (await s().allByTestId("user-message"))[0];
      await hover(first);
      await s().click((await s().allByTestId("message-edit"))[0]);
      const editor = await s().find('textarea[aria-label="Edit message"]');
      await s().clear(editor);
      await stand.push({ kind: "openai", items: [{ type: "text", text: "Port 9090 after the edit." }] });
      await s().type(editor, `What is in the settings file?${Keys.ENTER}`);
      await app.waitTurn("done");
      await waitFor("the fork link", async () => (await s().allByTestId("fork-link")).length === 1);
      assert.match((await app.texts("fork-link"))[0], /Branched from What is in the config file\?/);

      assert.deepEqual(fs.readFileSync(file), before, "the original log is unchanged, byte for byte");
      const forks = [...logs().entries()].filter(([, f]) => records(f)[0].forked_from?.id === original);
      assert.equal(forks.length, 1, "one fork");
      const [forkId, forkFile] = forks[0];
      const forkRecords = records(forkFile);
      assert.equal(forkRecords[0].forked_from.message_index, 0);
      const users = forkRecords.filter((r) => r.type === "message" && r.role === "user").map((r) => r.content);
      assert.deepEqual(users, ["What is in the settings file?"], "the fork holds the edit, not what came after");
      await waitRow("the fork under its parent", async (list) => {
        const at = list.findIndex((r) => r.id === original);
        return at >= 0 && list[at + 1]?.id === forkId;
      });

      await s().click(await s().byTestId("fork-link"));
      await waitFor("the original open again", async () => {
        const texts = await app.texts("user-message");
        return texts.includes("What is in the config file?") && texts.includes("And the log level?");
      });
      assert.deepEqual(await app.texts("fork-link"), [], "the original is no fork");
    }),
  );

  it(
    "exports a session to the file the save dialog names, as Markdown and as JSON",
    scenario("export", async () => {
      const id = await converse([["Summarise the design doc", "It has three parts: storage, search, UI."]]);
      // The save dialog is the system's: the menu asks it for a path, then calls this command.
      const exported = (format, file) =>
        s().execute(
          `return window.__TAURI_INTERNALS__
             .invoke("export_session", { id: arguments[0], format: arguments[1], path: arguments[2] })
             .then(() => "ok", (e) => JSON.stringify(e));`,
          [id, format, file],
        );
      const md = path.join(tmp, "design.md");
      const json = path.join(tmp, "design.json");
      assert.equal(await exported("markdown", md), "ok");
      assert.equal(await exported("json", json), "ok");
      const text = fs.readFileSync(md, "utf8");
      assert.match(text, /^# Summarise the design doc/);
      assert.match(text, /It has three parts: storage, search, UI\./);
      const object = JSON.parse(fs.readFileSync(json, "utf8"));
      assert.equal(object.id, id);
      assert.deepEqual(
        object.messages.map((m) => m.content),
        ["Summarise the design doc", "It has three parts: storage, search, UI."],
      );
    }),
  );

  it(
    "shows the session list with a row's menu open (docs/screenshots/session-menu.png)",
    scenario("session-menu-screenshot", async () => {
      const pinned = await converse([["Refactor the storage layer", "Done: one module per job."]]);
      await menuAction(pinned, "session-pin");
      await converse([["Why does the watcher miss renamed folders?", "It now looks again after a rename."]]);
      const open = await converse([["Write the changelog for 2.0", "Here is a draft changelog."]]);
      const list = await waitRow("the pinned session on top", (l) => l[0]?.id === pinned);
      await s().click(await s().find(`[data-testid="session-item"][data-session-id="${open}"]`));
      await waitFor("the session open", async () => (await app.texts("user-message")).includes("Write the changelog for 2.0"));
      // The menu of the last row: it opens below, the rest of the list stays in view.
      const target = list.at(-1).id;
      await hover(await s().find(`[data-testid="session-item"][data-session-id="${target}"]`));
      await s().click(await s().find(`[data-testid="session-menu"][data-session-id="${target}"]`));
      await waitFor("the menu", async () => (await s().allByTestId("session-delete")).length === 1);
      await sleep(300);
      const out = path.join(ROOT, "docs", "screenshots");
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(path.join(out, "session-menu.png"), await s().screenshot());
      log(`screenshot: ${path.join(out, "session-menu.png")}`);
      await s().type(await s().byTestId("session-rename"), Keys.ESCAPE);
    }),
  );

  it(
    "compresses finished sessions from Settings, and a compressed session still opens",
    scenario("compress-from-settings", async () => {
      const id = await converse([["Collect the benchmark numbers", "Search takes 2 ms; opening the tail 25 ms."]]);
      await s().click(await s().byTestId("settings-button"));
      await waitFor("the storage figures", async () => (await s().allByTestId("storage-sessions")).length === 1);
      const before = Number(await s().textOf("storage-sessions"));
      assert.ok(before >= 5, `sessions counted: ${before}`);
      await s().click(await s().byTestId("compress-button"));
      await waitFor(
        "the compression to finish",
        async () => /compressed/.test((await app.texts("storage-settings"))[0] ?? "") && (await s().allByTestId("compress-button")).length === 1,
        { timeout: 60_000 },
      );
      if (process.env.E2E_SCREENSHOT) await app.saveShot("storage-settings");
      const plain = logs();
      assert.ok(!plain.has(id), "the finished session's plain log is gone");
      const compressed = fs.readdirSync(path.join(dataDir, "sessions"), { recursive: true }).filter((f) => String(f).endsWith(".jsonl.zst"));
      log(`after compression: ${plain.size} plain logs left, ${compressed.length} compressed`);
      assert.ok(compressed.length >= before - plain.size, `${compressed.length} compressed`);
      await s().click(await s().byTestId("settings-button"));
      await s().click(await s().find(`[data-testid="session-item"][data-session-id="${id}"]`));
      await waitFor("the compressed session's conversation", async () =>
        (await app.texts("assistant-message")).some((t) => t.includes("Search takes 2 ms")),
      );
    }),
  );

  it(
    "says when the list only polls, and still shows a session another process writes",
    scenario("polling", async () => {
      await app.close();
      app = await launch({ TALARIA_WATCH: "poll" });
      await waitFor("the polling notice", async () => (await s().allByTestId("index-health")).length === 1);
      const line = JSON.stringify({ type: "session", id: "01900000-0000-7000-8000-00000000e2e1", created: new Date().toISOString(), provider: "openai", model: "m", workdir: "/tmp", version: 1 });
      const day = new Date().toISOString().slice(0, 10).split("-");
      const folder = path.join(dataDir, "sessions", ...day);
      fs.mkdirSync(folder, { recursive: true });
      const ts = new Date().toISOString();
      fs.writeFileSync(
        path.join(folder, "01900000-0000-7000-8000-00000000e2e1.jsonl"),
        [line, JSON.stringify({ type: "message", ts, role: "user", content: "Written while the app polls" })].join("\n") + "\n",
      );
      await waitRow("the session written outside", (list) => list.some((r) => r.title === "Written while the app polls"), 15_000);
    }),
  );
});
