// Safety in the real window: settings keep the environment out of settings.json, files are
// private, the first run asks for a working folder (and refuses the home folder), approvals
// offer "allow for this session", secrets ask, and the API key goes to a real keyring
// (gnome-keyring under its own D-Bus session) when one is there.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { App, Standin, log, makeTemp, scenario, sleep, stopAll, waitFor } from "./harness.mjs";

const mode = (p) => fs.statSync(p).mode & 0o777;

/** Clicks Settings and waits for the form. */
async function openSettings(app) {
  await app.session.click(await app.session.byTestId("settings-button"));
  await waitFor("the settings form", async () => (await app.session.allByTestId("settings-save-button")).length === 1);
}

/** Back to the chat, unless saving already went there. */
async function closeSettings(app) {
  const back = await app.session.findAll("main .settings header button");
  if (back.length) await app.session.click(back[0]);
  await waitFor("the chat", async () => (await app.session.allByTestId("settings-save-button")).length === 0);
}

async function valueOf(app, name) {
  return app.session.execute(`return document.querySelector('[name="${name}"]')?.value ?? null;`);
}

async function setField(app, name, value) {
  const input = await app.session.find(`[name="${name}"]`);
  await app.session.clear(input);
  await app.session.type(input, value);
}

async function approvalText(app) {
  return (await app.session.textOf("approval-dialog")) ?? "";
}

describe("safety in the window (environment, folder, approvals)", { timeout: 240_000 }, () => {
  let tmp;
  let dataDir;
  let workDir;
  let home;
  let stand;
  let app;
  const key = "sk-env-key-must-not-be-saved-123";

  before(async () => {
    ({ tmp, dataDir, workDir } = makeTemp("talaria-e2e-safety-"));
    home = path.join(tmp, "home");
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(workDir, ".env"), "DB_PASSWORD=hunter2\n");
    stand = await Standin.start();
    app = await App.launch({
      logDir: tmp,
      port: Number(process.env.TAURI_DRIVER_PORT || 4444),
      env: {
        HOME: home,
        TALARIA_DATA_DIR: dataDir,
        TALARIA_PROVIDER: "openai",
        TALARIA_BASE_URL: `${stand.url}/v1`,
        TALARIA_MODEL: "standin-model",
        TALARIA_WORKDIR: undefined,
        TALARIA_API_KEY: undefined,
        OPENAI_API_KEY: key,
        ANTHROPIC_API_KEY: undefined,
      },
    });
  });

  after(async () => {
    if (app) await app.close();
    await stopAll();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(
    "asks for a working folder first and refuses the home folder",
    scenario("safety-folder", () => app, async () => {
      const s = app.session;
      await waitFor("the folder step of the welcome card", async () => (await s.allByTestId("create-workdir")).length === 1);
      await s.type(await s.byTestId("workdir-input"), home);
      await s.click(await s.byTestId("use-workdir"));
      await waitFor("the refusal", async () => /home folder/.test((await s.textOf("workdir-error")) ?? ""));
      await s.clear(await s.byTestId("workdir-input"));
      await s.type(await s.byTestId("workdir-input"), workDir);
      await s.click(await s.byTestId("use-workdir"));
      await waitFor("the chat", async () => (await s.allByTestId("prompt-input")).length === 1 && (await s.allByTestId("welcome-card")).length === 0);
      // WebDriver's visible text of this header chip comes back empty in WebKitGTK; its DOM text is what shows.
      await waitFor("the folder in the chat header", async () =>
        /\/work$/.test(await s.execute("return document.querySelector('[data-testid=chat-folder]')?.textContent ?? '';")),
      );
    }),
  );

  it(
    "saves settings without the environment's key or values, in private files",
    scenario("safety-settings", () => app, async () => {
      await openSettings(app);
      // Overridden fields are read-only and name their variable.
      assert.equal(await valueOf(app, "model"), "standin-model");
      const readonly = await app.session.execute(
        "return ['model','base_url','api_key','provider'].map((n) => document.querySelector(`[name=\"${n}\"]`).readOnly);",
      );
      assert.deepEqual(readonly, [true, true, true, true]);
      const text = await app.session.execute("return document.querySelector('main .settings').textContent;");
      assert.match(text, /OPENAI_API_KEY/);
      assert.ok(!text.includes(key), "the key is masked in the form");
      await setField(app, "max_iterations", "33");
      await app.session.click(await app.session.byTestId("settings-save-button"));
      // Save goes back to the chat once the app is set up; otherwise the form says Saved.
      await waitFor("Saved", async () => /Saved|closed/.test(await app.session.execute("return document.querySelector('main .settings .actions')?.textContent ?? 'closed';")));
      const file = path.join(dataDir, "settings.json");
      const saved = fs.readFileSync(file, "utf8");
      log(`settings.json after Save: ${saved}`);
      assert.ok(!saved.includes(key), "no key in settings.json");
      assert.ok(!saved.includes("standin-model"), "no environment model in settings.json");
      assert.ok(!saved.includes(stand.url), "no environment base URL in settings.json");
      assert.match(saved, /"max_iterations":\s*33/);
      assert.equal(mode(file), 0o600);
      assert.equal(mode(dataDir), 0o700);
      await closeSettings(app);
    }),
  );

  it(
    "asks before a command that is not read-only, and remembers “allow for this session”",
    scenario("safety-approve-session", () => app, async () => {
      await stand.reset();
      // mkdir is not on the read-only list, so this asks.
      const write = {
        type: "tool_call",
        id: "call_a",
        name: "terminal",
        arguments: JSON.stringify({ command: "mkdir -p out && echo hi >> log.txt" }),
      };
      await stand.push([
        { kind: "openai", items: [write] },
        { kind: "openai", items: [{ ...write, id: "call_b" }] },
        { kind: "openai", items: [{ type: "text", text: "Wrote twice." }] },
      ]);
      await app.newConversation();
      await app.sendPrompt("append to the log twice");
      await waitFor("the approval dialog", async () => (await app.session.allByTestId("approval-dialog")).length === 1, { timeout: 20_000 });
      assert.match(await approvalText(app), /mkdir -p out && echo hi >> log\.txt/);
      await app.session.click(await app.session.byTestId("approve-session-button"));
      await app.waitTurn("done");
      assert.equal(fs.readFileSync(path.join(workDir, "log.txt"), "utf8"), "hi\nhi\n", "ran twice, asked once");
    }),
  );

  it(
    "asks before the model reads a .env file, and a denial keeps it out",
    scenario("safety-secret", () => app, async () => {
      await stand.reset();
      await stand.push([
        { kind: "openai", items: [{ type: "tool_call", id: "call_s", name: "read_file", arguments: JSON.stringify({ path: ".env" }) }] },
        { kind: "openai", items: [{ type: "text", text: "Understood." }] },
      ]);
      await app.newConversation();
      await app.sendPrompt("what is in .env?");
      await waitFor("the approval dialog", async () => (await app.session.allByTestId("approval-dialog")).length === 1, { timeout: 20_000 });
      assert.match(await approvalText(app), /secret/i);
      assert.equal((await app.session.allByTestId("approve-session-button")).length, 0, "a secret is allowed once at most");
      await app.session.click(await app.session.byTestId("deny-button"));
      await app.waitTurn("done");
      const sent = JSON.stringify((await stand.requests()).map((r) => r.body));
      assert.ok(!sent.includes("hunter2"), "the secret never reached the provider");
      const card = await app.session.byTestId("tool-card");
      assert.equal(await app.session.attribute(card, "data-state"), "error");
    }),
  );
});

describe("the API key in a real keyring", { timeout: 240_000 }, () => {
  let tmp;
  let dataDir;
  let workDir;
  let home;
  let stand;
  let app;
  let busFile;
  const key = "sk-typed-into-settings-4242";

  before(async () => {
    ({ tmp, dataDir, workDir } = makeTemp("talaria-e2e-keyring-"));
    home = path.join(tmp, "home");
    const runtime = path.join(tmp, "run");
    fs.mkdirSync(home);
    fs.mkdirSync(runtime, { mode: 0o700 });
    busFile = path.join(tmp, "bus-address");
    stand = await Standin.start();
    // A D-Bus session of its own with gnome-keyring unlocked; tauri-driver (and so the app) runs
    // inside it. The bus address is written out so the test can ask the keyring too.
    const script = `printf pw | gnome-keyring-daemon --unlock --daemonize --replace --components=secrets >/dev/null; echo "$DBUS_SESSION_BUS_ADDRESS" > '${busFile}'; exec "$@"`;
    app = await App.launch({
      logDir: tmp,
      port: Number(process.env.TAURI_DRIVER_PORT || 4444),
      wrap: ["dbus-run-session", "--", "sh", "-c", script, "sh"],
      env: {
        HOME: home,
        XDG_RUNTIME_DIR: runtime,
        TALARIA_DATA_DIR: dataDir,
        TALARIA_PROVIDER: undefined,
        TALARIA_BASE_URL: undefined,
        TALARIA_MODEL: undefined,
        TALARIA_WORKDIR: workDir,
        TALARIA_API_KEY: undefined,
        OPENAI_API_KEY: undefined,
        ANTHROPIC_API_KEY: undefined,
      },
    });
  });

  after(async () => {
    if (app) await app.close();
    await stopAll();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(
    "stores a typed key in the keyring, not in settings.json, and uses it",
    scenario("safety-keyring", () => app, async () => {
      await openSettings(app);
      await waitFor("the keyring named as the storage", async () => /system keyring/.test((await app.session.textOf("key-storage")) ?? ""), {
        timeout: 15_000,
      });
      await setField(app, "base_url", `${stand.url}/v1`);
      await setField(app, "model", "standin-model");
      await setField(app, "api_key", key);
      await app.session.click(await app.session.byTestId("settings-save-button"));
      // Save goes back to the chat once the app is set up; otherwise the form says Saved.
      await waitFor("Saved", async () => /Saved|closed/.test(await app.session.execute("return document.querySelector('main .settings .actions')?.textContent ?? 'closed';")));
      const saved = fs.readFileSync(path.join(dataDir, "settings.json"), "utf8");
      assert.ok(!saved.includes(key), `the key is not in settings.json: ${saved}`);
      assert.match(saved, /standin-model/);

      // The turn authenticates with the key from the keyring.
      await closeSettings(app);
      await stand.reset();
      await stand.push({ kind: "openai", items: [{ type: "text", text: "Authenticated." }] });
      await app.newConversation();
      await app.sendPrompt("hello");
      await app.waitTurn("done");
      const requests = await stand.requests();
      const auth = JSON.stringify(requests.at(-1).headers ?? requests.at(-1));
      assert.ok(auth.includes(key), `the request carries the key from the keyring: ${auth.slice(0, 300)}`);
      log(`keyring bus: ${fs.readFileSync(busFile, "utf8").trim()}`);
      await sleep(10);
    }),
  );
});
