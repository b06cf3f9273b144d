import { flushSync } from "svelte";
import { describe, expect, it } from "vitest";
import { highlight, type Run } from "./highlight.svelte";

const flat = (runs: Run[]): string => runs.map((r) => r.text).join("");

describe("highlight", () => {
  it("gives tokens once the grammars have loaded, and null for unknown languages", async () => {
    expect(highlight("fn main() {}", "rust")).toBeNull(); // starts loading
    let tokens: Run[] | null = null;
    for (let i = 0; i < 200 && tokens === null; i++) {
      await new Promise((r) => setTimeout(r, 10));
      flushSync();
      tokens = highlight("fn main() {}", "rust");
    }
    expect(tokens).not.toBeNull();
    expect(flat(tokens ?? [])).toBe("fn main() {}");
    expect(tokens?.some((t) => t.cls === "hljs-keyword" && t.text === "fn")).toBe(true);
    expect(highlight("x", "no-such-language")).toBeNull();
    expect(highlight("x", "")).toBeNull();
    expect(highlight("<script>", "html")?.some((t) => t.cls !== "")).toBe(true);
  });
});
