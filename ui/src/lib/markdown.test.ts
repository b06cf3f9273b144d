import { flushSync, mount, unmount } from "svelte";
import { describe, expect, it } from "vitest";
import Markdown from "../components/Markdown.svelte";
import { parseInline, parseMarkdown, snippetRuns, StreamingMarkdown } from "./markdown";

function render(text: string): { el: HTMLElement; done: () => void } {
  const el = document.createElement("div");
  document.body.appendChild(el);
  const app = mount(Markdown, { target: el, props: { text } });
  flushSync();
  return {
    el,
    done: () => {
      void unmount(app);
      el.remove();
    },
  };
}

describe("parseMarkdown", () => {
  it("splits paragraphs, code fences and lists", () => {
    const blocks = parseMarkdown("Hello **there**\n\n```rust\nfn main() {}\n```\n\n- one\n- `two`\n\n1. a\n2. b");
    expect(blocks.map((b) => b.type)).toEqual(["p", "code", "list", "list"]);
    expect(blocks[1]).toEqual({ type: "code", lang: "rust", text: "fn main() {}", open: false });
    const list = blocks[2];
    expect(list.type === "list" && list.items[1]).toEqual([{ t: "code", v: "two" }]);
    const ordered = blocks[3];
    expect(ordered.type === "list" && ordered.ordered).toBe(true);
  });

  it("keeps an unterminated fence open while streaming", () => {
    const blocks = parseMarkdown("Look:\n```\nlet x = 1;");
    expect(blocks[1]).toMatchObject({ type: "code", text: "let x = 1;", open: true });
  });

  it("parses inline code before emphasis and leaves snake_case alone", () => {
    expect(parseInline("use `a*b*c` and snake_case_name")).toEqual([
      { t: "text", v: "use " },
      { t: "code", v: "a*b*c" },
      { t: "text", v: " and snake_case_name" },
    ]);
    expect(parseInline("**bold** and *em*")).toEqual([
      { t: "strong", v: [{ t: "text", v: "bold" }] },
      { t: "text", v: " and " },
      { t: "em", v: [{ t: "text", v: "em" }] },
    ]);
  });

  it("splits FTS snippets into marked runs", () => {
    expect(snippetRuns("a [hit] b")).toEqual([
      { mark: false, text: "a " },
      { mark: true, text: "hit" },
      { mark: false, text: " b" },
    ]);
  });
});

describe("Markdown component", () => {
  it("renders model HTML as text, never as elements", () => {
    const evil =
      '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\n\n' +
      "**<b>bold</b>** `<i>code</i>`\n\n```html\n<iframe src=javascript:alert(1)></iframe>\n```\n\n- <a href=x>link</a>";
    const { el, done } = render(evil);
    try {
      expect(el.querySelector("img, script, b, i, iframe, a")).toBeNull();
      expect(el.textContent).toContain('<img src=x onerror="window.__pwned=1">');
      expect(el.textContent).toContain("<script>window.__pwned=2</script>");
      expect(el.querySelector("strong")?.textContent).toBe("<b>bold</b>");
      expect(el.querySelector("code.inline")?.textContent).toBe("<i>code</i>");
      expect(el.querySelector("pre code")?.textContent).toBe("<iframe src=javascript:alert(1)></iframe>");
      expect(el.querySelector("li")?.textContent).toBe("<a href=x>link</a>");
      expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
    } finally {
      done();
    }
  });

  it("renders structure", () => {
    const { el, done } = render("# Title\n\nText with `code`.\n\n1. first\n2. second");
    try {
      expect(el.querySelectorAll("ol li")).toHaveLength(2);
      expect(el.querySelector("code.inline")?.textContent).toBe("code");
      expect(el.querySelector(".heading")?.textContent).toBe("Title");
    } finally {
      done();
    }
  });
});

describe("StreamingMarkdown", () => {
  const doc =
    "# Title\n\nIntro with **bold** and `code`.\nSecond line\n\n- one\n- two\n  continued\n\n1. first\n2. second\n\n" +
    "> quoted\n> more\n\n```rust\nfn main() {\n\n    println!(\"hi\");\n}\n```\n\nAfter the code.\n\n---\n\n" +
    "- list right before\n```\nfence after a list\n\n```\n  ```\nindented fence\n\n  ```\nend *em* _under_ done\n\n~~~\nopen fence at the end\n\n";

  it("equals a full parse at every prefix, streamed in small and odd-sized pieces", () => {
    for (const step of [1, 3, 7, 40]) {
      const md = new StreamingMarkdown();
      for (let end = 0; end <= doc.length; end += step) {
        const text = doc.slice(0, Math.min(end, doc.length));
        expect(md.update(text), `step ${step}, prefix ${JSON.stringify(text.slice(-20))}`).toEqual(parseMarkdown(text));
      }
    }
  });

  it("keeps earlier block objects while the text grows, and starts over when it is replaced", () => {
    const md = new StreamingMarkdown();
    const first = md.update("para one\n\npara two\n\npara th");
    const second = md.update("para one\n\npara two\n\npara three is longer");
    expect(second[0]).toBe(first[0]);
    expect(second[1]).toBe(first[1]);
    expect(md.update("something else")).toEqual(parseMarkdown("something else"));
    expect(md.update("a\r\n\r\nb")).toEqual(parseMarkdown("a\r\n\r\nb"));
  });
});
