// A long reply in the real window: 20 000 tokens at about 200 tokens/s, a heading and a code
// block every 50 tokens, streamed by the stand-in server. Asserts that the app's memory comes
// back near its idle figure, that the window keeps drawing (longest frame gap) with the screen
// in step with the DOM when the turn ends, and that the reply reads back from its first
// section, windowed, both where it streamed and reopened from the list. The figures
// (frame-gap distribution, memory) are printed and written to
// tests/e2e/out/streaming-figures.json.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import {
  App,
  OUT,
  Standin,
  frameGaps,
  log,
  makeTemp,
  scenario as wrap,
  standinEnv,
  sleep,
  stopAll,
  waitFor,
  watchFrames,
} from "./harness.mjs";
import { frameStats, longReplyTokens, treeRss } from "./figures.mjs";

const TOKENS = Number(process.env.E2E_STREAM_TOKENS || 20_000);
/** How many headed sections the reply has. */
const SECTIONS = longReplyTokens(TOKENS).filter((t) => t.startsWith("Section ")).length;
/** Pause between streamed events: about 200 tokens/s (a 4 ms sleep and the write take ~5 ms). */
const DELAY_MS = 4;

let tmp;
let stand;
let app;
const scenario = (name, body) => wrap(name, () => app, body);
/** What tests/e2e/out/streaming-figures.json holds: both passes' figures. */
const figures = {};
function writeFigures() {
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, "streaming-figures.json"), `${JSON.stringify(figures, null, 2)}\n`);
}

describe("a 20 000-token reply", { timeout: 900_000 }, () => {
  before(async () => {
    const dirs = makeTemp();
    tmp = dirs.tmp;
    stand = await Standin.start();
    app = await App.launch({
      logDir: tmp,
      env: standinEnv(stand, dirs),
    });
  });

  after(async () => {
    if (app) await app.close();
    await stopAll();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Streams the long reply in the chat on screen and waits for it to end; returns its seconds. */
  async function streamLongReply() {
    await stand.push({ kind: "openai", items: [{ type: "text", tokens: longReplyTokens(TOKENS) }], delay_ms: DELAY_MS });
    const started = Date.now();
    await app.sendPrompt("Write the long report");
    // Polled gently: every WebDriver command runs a script in the page too.
    await waitFor(
      "turn-status done",
      async () => {
        const now = await app.status();
        if (now === "error") throw new Error(`turn failed: ${await app.session.textOf("error-banner")}`);
        return now === "done";
      },
      { timeout: 480_000, interval: 1000 },
    );
    return (Date.now() - started) / 1000;
  }

  // Memory is measured on a reply streamed into a settled window with nothing else running in
  // the page. What the web process holds after the reply depends on whether JSC ran full
  // collections during it (JSC_logGC=1 shows them): it did, every few seconds, in a window idle
  // for 12 s, and the reply left 34-48 MB; it ran none when the reply started 6 s after launch
  // or with the frame watcher below running (a requestAnimationFrame callback every frame), and
  // the same reply left 76-85 MB, nearly all of it garbage in JSC's old generation that only a
  // full collection frees. The watcher's memory is the instrument's, so the two are measured
  // apart; the figures file has both.
  it(
    "streams 20 000 tokens and its memory comes back near the idle figure",
    scenario("long-stream-memory", async () => {
      const appPid = app.driver.pid;
      // Idle: the window settled (start-up work done), nothing streaming.
      await sleep(12_000);
      const idle = treeRss(appPid);
      log(`idle: RSS ${idle.mb} MB`);
      for (const p of idle.processes) log(`  ${p.pid} ${p.name}: ${p.mb} MB`);
      const seconds = await streamLongReply();
      log(`memory pass: ${TOKENS} tokens in ${seconds.toFixed(1)} s (${Math.round(TOKENS / seconds)} tokens/s)`);
      // A moment for the page to collect the stream's garbage.
      await sleep(10_000);
      const after = treeRss(appPid);
      const growth = Math.round((after.mb - idle.mb) * 10) / 10;
      log(`RSS after the reply: ${after.mb} MB (idle ${idle.mb} MB, growth ${growth} MB)`);
      for (const p of after.processes) log(`  ${p.pid} ${p.name}: ${p.mb} MB`);
      figures.idle_rss_mb = idle.mb;
      figures.after_rss_mb = after.mb;
      figures.growth_mb = growth;
      figures.idle_processes = idle.processes;
      figures.processes = after.processes;
      writeFigures();
      // The goal is within 50 MB of idle (measured here: 34-48 MB). The bound is loose, as test
      // bounds are, and still catches the unbounded growth the window had (392 MB for this reply).
      assert.ok(growth < 100, `memory grew ${growth} MB over idle; want well under 100 MB (goal: 50 MB)`);
    }),
  );

  it(
    "streams with no long frame gap and the screen in step with the DOM",
    scenario("long-stream", async () => {
      const { session } = app;
      await app.newConversation();
      await watchFrames(session);
      await sleep(8000);
      const idleFrames = frameStats(await frameGaps(session));
      log(`idle frames: ${JSON.stringify(idleFrames)}`);

      // Frames, and how long after the status turns `done` in the DOM two more frames are drawn.
      await watchFrames(session);
      await session.execute(`
        window.__doneLag = null;
        const status = document.querySelector('[data-testid="turn-status"]');
        new MutationObserver(() => {
          if (status.textContent !== "done" || window.__doneLag !== null) return;
          const at = performance.now();
          window.__doneLag = -1;
          requestAnimationFrame(() => requestAnimationFrame(() => { window.__doneLag = performance.now() - at; }));
        }).observe(status, { childList: true, characterData: true, subtree: true });`);
      const seconds = await streamLongReply();
      await sleep(300);
      const gaps = await frameGaps(session);
      const stream = frameStats(gaps);
      const doneLag = await session.execute("return window.__doneLag;");
      const text = await session.execute(
        'const m = document.querySelectorAll(\'[data-testid="assistant-message"]\'); return m[m.length - 1].textContent;',
      );
      const dom = await session.execute("return document.getElementsByTagName('*').length;");
      log(`stream: ${TOKENS} tokens in ${seconds.toFixed(1)} s (${Math.round(TOKENS / seconds)} tokens/s); ${dom} DOM nodes in the window`);
      log(`frames while streaming: ${JSON.stringify(stream)}`);
      // Each quarter of the stream on its own: the cost per frame must not grow with the reply.
      const size = Math.ceil(gaps.length / 4);
      const quarters = [0, 1, 2, 3].map((q) => frameStats([0, ...gaps.slice(q * size, (q + 1) * size)]));
      quarters.forEach((q, i) => log(`  quarter ${i + 1}: ${JSON.stringify(q)}`));
      log(`two frames drawn ${doneLag === null ? "?" : Math.round(doneLag)} ms after the status turned done`);
      // For the record: the same reply's memory with the watcher running (see above).
      const watched = treeRss(app.driver.pid);
      log(`RSS with the frame watcher, after both replies: ${watched.mb} MB`);

      Object.assign(figures, {
        tokens: TOKENS,
        seconds,
        tokens_per_s: Math.round(TOKENS / seconds),
        dom_nodes: dom,
        idle_frames: idleFrames,
        stream_frames: stream,
        stream_quarters: quarters,
        done_to_two_frames_ms: doneLag,
        rss_with_frame_watcher_mb: watched.mb,
      });
      writeFigures();

      // The end of the reply is on screen (the window holds the blocks around it).
      assert.ok(text.includes(`Section ${SECTIONS}`) && text.includes(`section_${SECTIONS - 1}()`), "the end of the reply is shown");
      // The goal is no frame over 50 ms (measured with the release build: longest 45-62 ms, 0-3
      // of ~6 700 frames over 50 ms); the bound is twice that, for a noisy 2-core machine.
      assert.ok(stream.max < 100, `longest frame gap ${Math.round(stream.max)} ms while streaming; want under 100 ms (goal: 50 ms)`);
      assert.ok(doneLag !== null && doneLag >= 0 && doneLag < 250, `the screen caught up ${doneLag} ms after done`);
    }),
  );

  it(
    "reads back from the start: scrolling up brings the first blocks, here and reopened from the list",
    scenario("long-reply-scroll-up", async () => {
      const { session } = app;
      /** Scrolls the chat to its top, a screen at a time as a reader would, until it stays there. */
      const toTop = async () => {
        for (let i = 0; i < 400; i++) {
          const top = await session.execute(
            "const s = document.querySelector('.scroller'); s.scrollTop = Math.max(0, s.scrollTop - 2000); return s.scrollTop;",
          );
          await sleep(30);
          if (top === 0 && (await session.execute("return document.querySelector('.scroller').scrollTop;")) === 0) return;
        }
        throw new Error("the chat never reached its top");
      };
      const firstVisible = () =>
        session.execute(`
          const s = document.querySelector('.scroller').getBoundingClientRect();
          const h = Array.from(document.querySelectorAll('[data-testid="assistant-message"] h2'))
            .find((e) => { const r = e.getBoundingClientRect(); return r.bottom > s.top && r.top < s.bottom; });
          return h ? h.textContent : null;`);
      await toTop();
      assert.equal(await firstVisible(), "Section 1", "the first section shows at the top of the reply");
      const nodes = await session.execute("return document.getElementsByTagName('*').length;");
      assert.ok(nodes < 3000, `${nodes} DOM nodes: only a window of the reply is rendered`);

      // The same reply opened from the session list: windowed from the start, readable to its top.
      await app.newConversation();
      await session.click(await session.byTestId("session-item"));
      await waitFor("the reopened reply", async () => (await app.texts("assistant-message")).some((t) => t.includes(`Section ${SECTIONS}`)), {
        timeout: 30_000,
      });
      await toTop();
      assert.equal(await firstVisible(), "Section 1");
    }),
  );
});
