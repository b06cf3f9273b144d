import { flushSync, mount, unmount } from "svelte";
import { describe, expect, it } from "vitest";
import ChatPane from "../components/ChatPane.svelte";
import { addUsage, Conversation, tokenCount } from "./chat.svelte";
import { longSession } from "../perf/fixtures";

describe("token usage", () => {
  it("counts a turn and adds it to the session, cache reads included", () => {
    const conv = new Conversation();
    conv.apply({ type: "turn_started", turn: 1 });
    conv.apply({ type: "token", text: "hi" });
    conv.apply({ type: "done", usage: { input_tokens: 1200, output_tokens: 80, cache_read_tokens: 1000 } });
    expect(conv.turnUsage).toEqual({ input_tokens: 1200, output_tokens: 80, cache_read_tokens: 1000 });
    conv.apply({ type: "turn_started", turn: 2 });
    conv.apply({ type: "done", usage: { input_tokens: 1500, output_tokens: 20 } });
    expect(conv.turnUsage).toEqual({ input_tokens: 1500, output_tokens: 20 });
    expect(conv.sessionUsage).toEqual({ input_tokens: 2700, output_tokens: 100, cache_read_tokens: 1000 });
    // A turn whose provider reported nothing leaves the figures as they were.
    conv.apply({ type: "done" });
    expect(conv.sessionUsage?.input_tokens).toBe(2700);
  });

  it("adds cache reads only where some were reported", () => {
    expect(addUsage(null, { input_tokens: 1, output_tokens: 2 })).toEqual({ input_tokens: 1, output_tokens: 2 });
    expect(addUsage({ input_tokens: 1, output_tokens: 2 }, { input_tokens: 1, output_tokens: 2 })).toEqual({
      input_tokens: 2,
      output_tokens: 4,
    });
    expect(addUsage({ input_tokens: 1, output_tokens: 2 }, { input_tokens: 1, output_tokens: 2, cache_read_tokens: 5 })).toEqual({
      input_tokens: 2,
      output_tokens: 4,
      cache_read_tokens: 5,
    });
  });

  it("writes counts short", () => {
    expect([0, 999, 1000, 1234, 12_345, 999_400, 999_600, 1_250_000].map(tokenCount)).toEqual([
      "0",
      "999",
      "1k",
      "1.2k",
      "12k",
      "999k",
      "1M",
      "1.3M",
    ]);
  });

  it("shows the last turn and the session in the chat header, from a stored session too", () => {
    const conv = new Conversation();
    conv.load({
      ...longSession(1),
      usage: { input_tokens: 52_000, output_tokens: 3_100, cache_read_tokens: 40_000 },
      last_turn_usage: { input_tokens: 9_000, output_tokens: 700 },
    });
    const target = document.createElement("div");
    document.body.appendChild(target);
    const app = mount(ChatPane, { target, props: { conv, status: null, oncontinue: () => {} } });
    flushSync();
    try {
      const usage = target.querySelector('[data-testid="token-usage"]') as HTMLElement;
      expect(usage.textContent?.replace(/\s+/g, " ").trim()).toBe("turn 9k in · 700 out session 52k in · 3.1k out 40k cached");
      expect(usage.title).toContain("Session: 52,000 in, 3,100 out, 40,000 read from cache");
    } finally {
      void unmount(app);
      target.remove();
    }
  });
});
