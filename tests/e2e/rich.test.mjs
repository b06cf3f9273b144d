// Rich replies in the real window: a GFM table, a highlighted code block, a link that opens in
// the system browser and never navigates the window, copying a code block, tool cards that show
// the change, and the keyboard shortcuts. The system browser is a recorder: an `xdg-open` early
// on the app's PATH that writes the address it was given to a file (what the opener plugin runs
// on Linux).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { App, Keys, Standin, ensureDisplay, log, makeTemp, scenario as wrap, standinEnv, sleep, stopAll, waitFor } from "./harness.mjs";

let tmp;
let workDir;
let opened;
let stand;
let app;
const scenario = (name, body) => wrap(name, () => app, body);

const RICH_REPLY =
  "Here is what changed in the **parser**, with the numbers from the last run.\n\n" +
  "| Module | Lines | Tests | Status |\n| :--- | ---: | ---: | :---: |\n" +
  "| `sse.rs` | 259 | 14 | ✅ done |\n| `transport.rs` | 606 | 22 | ✅ done |\n| `retry.rs` | 141 | 3 | ~~flaky~~ fixed |\n\n" +
  "The retry loop now reads like this:\n\n" +
  "```rust\n/// Waits before the next attempt.\npub fn backoff(&self, attempt: u32) -> Duration {\n" +
  "    let exp = attempt.saturating_sub(1).min(20);\n    let full = self.base * (1u32 << exp);\n" +
  '    Duration::from_millis(full.as_millis() as u64) // "capped" below\n}\n```\n\n' +
  "- [x] stream parser\n- [x] retries with backoff\n- [ ] keep-alive tuning\n\n" +
  "> Tip: the design notes are at [the Tauri docs](https://tauri.app/develop/) if you want more.";

describe("rich replies", { timeout: 240_000 }, () => {
  before(async () => {
    const dirs = makeTemp();
    tmp = dirs.tmp;
    workDir = dirs.workDir;
    // The "system browser": records every address it is asked to open.
    const bin = path.join(tmp, "bin");
    opened = path.join(tmp, "opened.txt");
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, "xdg-open"), `#!/bin/sh\nprintf '%s\\n' "$1" >> '${opened}'\n`, { mode: 0o755 });
    stand = await Standin.start();
    app = await App.launch({
      logDir: tmp,
      env: { ...standinEnv(stand, dirs), PATH: `${bin}:${process.env.PATH}` },
    });
  });

  after(async () => {
    if (app) await app.close();
    await stopAll();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(
    "shows a table and a highlighted code block; a link opens in the browser and the window stays",
    scenario("rich-reply", async () => {
      const { session } = app;
      await stand.push({ kind: "openai", items: [{ type: "text", text: RICH_REPLY }], delay_ms: 5 });
      await app.sendPrompt("How did the parser work go?");
      await app.waitTurn("done");

      const table = await session.execute(`
        const t = document.querySelector('[data-testid="assistant-message"] table');
        return t && { head: Array.from(t.querySelectorAll("th")).map((c) => c.textContent),
                      rows: Array.from(t.querySelectorAll("tbody tr")).map((r) => Array.from(r.children).map((c) => c.textContent)),
                      align: getComputedStyle(t.querySelector("td:nth-child(2)")).textAlign };`);
      assert.deepEqual(table.head, ["Module", "Lines", "Tests", "Status"]);
      assert.equal(table.rows.length, 3);
      assert.deepEqual(table.rows[1], ["transport.rs", "606", "22", "✅ done"]);
      assert.equal(table.align, "right");

      // Highlighted once the fence closed: tokens as spans with highlight.js classes.
      const code = await waitFor("the code block highlighted", () =>
        session.execute(`
          const b = document.querySelector('[data-testid="assistant-message"] .codeblock[data-highlighted]');
          return b && { keywords: b.querySelectorAll(".hljs-keyword").length, text: b.querySelector("pre").textContent };`),
      );
      assert.ok(code.keywords >= 3, `keywords highlighted: ${code.keywords}`);
      assert.match(code.text, /pub fn backoff\(&self, attempt: u32\) -> Duration \{/);
      assert.equal(await session.execute("return document.querySelectorAll('input[type=checkbox]:checked').length;"), 2);

      // The README's picture of a rich reply, fresh from this run.
      await sleep(300);
      const shots = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "..", "docs", "screenshots");
      fs.mkdirSync(shots, { recursive: true });
      fs.writeFileSync(path.join(shots, "rich-reply.png"), await session.screenshot());

      // The link: clicked, the window stays on the app and the browser gets the address.
      const before = await session.execute("return location.href;");
      const link = await session.find('[data-testid="assistant-message"] a[href^="https://tauri.app"]');
      await session.click(link);
      await waitFor("the address handed to the system browser", () => fs.existsSync(opened) && fs.readFileSync(opened, "utf8").trim(), {
        timeout: 10_000,
      });
      assert.equal(fs.readFileSync(opened, "utf8").trim(), "https://tauri.app/develop/");
      await sleep(500);
      assert.equal(await session.execute("return location.href;"), before, "the window did not navigate");
      assert.equal(await app.status(), "done", "the app is still there");
      // Even a script that tries to leave is refused by the window (the navigation guard).
      await session.execute("location.href = 'https://example.com/';");
      await sleep(800);
      assert.equal(await session.execute("return location.href;"), before, "a scripted navigation is refused");
      assert.equal(await app.status(), "done");
    }),
  );

  it(
    "copies a code block to the clipboard",
    scenario("copy-code", async () => {
      const { session } = app;
      const button = await session.find('[data-testid="assistant-message"] .codeblock [data-testid="copy-button"]');
      await session.click(button);
      await waitFor("Copied", async () => /Copied/.test(await session.text(button)), { timeout: 5000 });
      const expected = await session.execute(
        "return document.querySelector('[data-testid=\"assistant-message\"] .codeblock pre').textContent;",
      );
      // The X clipboard, read by another program while the app owns the selection.
      const xclip = spawnSync("xclip", ["-selection", "clipboard", "-o"], {
        encoding: "utf8",
        timeout: 5000,
        env: { ...process.env, DISPLAY: await ensureDisplay() },
      });
      assert.equal(xclip.status, 0, `xclip failed: ${xclip.stderr}`);
      assert.equal(xclip.stdout, expected);
      assert.match(xclip.stdout, /^\/\/\/ Waits before the next attempt\./);
      log(`clipboard holds the ${xclip.stdout.length}-character code block`);
    }),
  );

  it(
    "answers the keyboard: Ctrl+/ shows the shortcuts, Ctrl+K searches, Ctrl+, opens settings, Ctrl+N a new session",
    scenario("keyboard", async () => {
      const { session } = app;
      const press = async (keys) => session.type(await session.find(":focus, body"), `${Keys.CONTROL}${keys}${Keys.NULL}`);
      const focused = () => session.execute("return document.activeElement && document.activeElement.dataset.testid;");

      await press("/");
      await waitFor("the shortcuts sheet", async () => (await session.allByTestId("shortcuts-sheet")).length === 1);
      assert.match(await session.textOf("shortcuts-sheet"), /Search sessions[\s\S]*New session[\s\S]*Stop the running reply/);
      await session.type(await session.find(":focus, body"), Keys.ESCAPE);
      await waitFor("the sheet closed", async () => (await session.allByTestId("shortcuts-sheet")).length === 0);

      await press("k");
      await waitFor("the session search focused", async () => (await focused()) === "session-search");

      await press(",");
      await waitFor("the settings", async () => (await session.allByTestId("settings-save-button")).length === 1);

      await press("n");
      await waitFor("a new, empty chat", async () => (await session.allByTestId("prompt-input")).length === 1 && (await session.allByTestId("user-message")).length === 0);
    }),
  );
});
