import { flushSync, mount, unmount } from "svelte";
import { describe, expect, it } from "vitest";
import Markdown from "../components/Markdown.svelte";
import { parseMarkdown, safeHref, StreamingMarkdown, type Block, type Inline, type StreamedBlocks } from "./markdown";

function render(text: string): { el: HTMLElement; done: () => void } {
  const el = document.createElement("div");
  document.body.appendChild(el);
  const app = mount(Markdown, { target: el, props: { blocks: { sealed: parseMarkdown(text), tail: [] } } });
  flushSync();
  return {
    el,
    done: () => {
      void unmount(app);
      el.remove();
    },
  };
}

const text = (v: string): Inline => ({ t: "text", v });
const one = (source: string): Block => {
  const blocks = parseMarkdown(source);
  expect(blocks).toHaveLength(1);
  return blocks[0];
};

describe("the Markdown tree (CommonMark + GFM)", () => {
  it("headings, ATX and setext", () => {
    expect(parseMarkdown("# One\n## Two ##\n###### Six")).toEqual([
      { t: "h", level: 1, c: [text("One")] },
      { t: "h", level: 2, c: [text("Two")] },
      { t: "h", level: 6, c: [text("Six")] },
    ]);
    expect(parseMarkdown("Title\n=====\n\nSub\n---")).toEqual([
      { t: "h", level: 1, c: [text("Title")] },
      { t: "h", level: 2, c: [text("Sub")] },
    ]);
    // Seven hashes are not a heading.
    expect(one("####### no")).toEqual({ t: "p", c: [text("####### no")] });
  });

  it("paragraphs, emphasis, strong, strikethrough, inline code, hard breaks", () => {
    expect(one("a *em* **strong** ~~gone~~ `co*de*` snake_case_name  \nnext")).toEqual({
      t: "p",
      c: [
        text("a "),
        { t: "em", c: [text("em")] },
        text(" "),
        { t: "strong", c: [text("strong")] },
        text(" "),
        { t: "del", c: [text("gone")] },
        text(" "),
        { t: "code", v: "co*de*" },
        text(" snake_case_name"),
        { t: "br" },
        text("next"),
      ],
    });
    expect(parseMarkdown("one\n\ntwo")).toEqual([
      { t: "p", c: [text("one")] },
      { t: "p", c: [text("two")] },
    ]);
  });

  it("fenced and indented code, with the language and closed fences", () => {
    expect(one("```rust title\nfn main() {}\n\n// end\n```")).toEqual({
      t: "code",
      lang: "rust",
      text: "fn main() {}\n\n// end",
      closed: true,
    });
    expect(one("~~~\nplain\n~~~")).toEqual({ t: "code", lang: "", text: "plain", closed: true });
    expect(one("    indented\n    code")).toEqual({ t: "code", lang: "", text: "indented\ncode", closed: true });
  });

  it("nested lists, ordered with a start, tight and loose", () => {
    const list = one("3. first\n4. second\n   - nested a\n   - nested b\n5. third");
    expect(list).toMatchObject({ t: "list", ordered: true, start: 3, tight: true });
    if (list.t !== "list") throw new Error("not a list");
    expect(list.items).toHaveLength(3);
    expect(list.items[1].c[1]).toMatchObject({ t: "list", ordered: false, items: [{ checked: null }, { checked: null }] });
    expect(one("- a\n\n- b")).toMatchObject({ t: "list", tight: false });
  });

  it("task lists", () => {
    const list = one("- [x] done\n- [ ] to do\n- plain");
    if (list.t !== "list") throw new Error("not a list");
    expect(list.items.map((item) => item.checked)).toEqual([true, false, null]);
    expect(list.items[0].c).toEqual([{ t: "p", c: [text("done")] }]);
  });

  it("tables with alignment and inline content", () => {
    expect(one("| Name | Size | Note |\n| :--- | ---: | :---: |\n| `a.rs` | 10 | **new** |\n| b | 2 |")).toEqual({
      t: "table",
      align: ["left", "right", "center"],
      head: [[text("Name")], [text("Size")], [text("Note")]],
      rows: [
        [[{ t: "code", v: "a.rs" }], [text("10")], [{ t: "strong", c: [text("new")] }]],
        [[text("b")], [text("2")], []],
      ],
    });
  });

  it("links: inline, reference, autolinks and GFM literal autolinks", () => {
    expect(one('[docs](https://example.com/a "Title") <https://x.org> www.example.com me@example.com')).toEqual({
      t: "p",
      c: [
        { t: "link", href: "https://example.com/a", title: "Title", c: [text("docs")] },
        text(" "),
        { t: "link", href: "https://x.org/", title: "", c: [text("https://x.org")] },
        text(" "),
        { t: "link", href: "http://www.example.com/", title: "", c: [text("www.example.com")] },
        text(" "),
        { t: "link", href: "mailto:me@example.com", title: "", c: [text("me@example.com")] },
      ],
    });
    // A reference before its definition resolves too.
    expect(parseMarkdown("see [the guide][g]\n\n[g]: https://example.com/guide")).toEqual([
      { t: "p", c: [text("see "), { t: "link", href: "https://example.com/guide", title: "", c: [text("the guide")] }] },
    ]);
  });

  it("images show their alt text and are never loaded", () => {
    expect(one("![a cat](https://example.com/cat.png) ![local](file:///etc/passwd)")).toEqual({
      t: "p",
      c: [{ t: "image", href: "https://example.com/cat.png", alt: "a cat" }, text(" "), { t: "image", href: null, alt: "local" }],
    });
  });

  it("block quotes and thematic breaks", () => {
    expect(parseMarkdown("> quoted **text**\n> > nested\n\n---\n\nafter")).toEqual([
      {
        t: "quote",
        c: [
          { t: "p", c: [text("quoted "), { t: "strong", c: [text("text")] }] },
          { t: "quote", c: [{ t: "p", c: [text("nested")] }] },
        ],
      },
      { t: "hr" },
      { t: "p", c: [text("after")] },
    ]);
  });

  it("entities and escapes become their characters", () => {
    expect(one("&copy; &amp; \\*not em\\* &#x41;")).toEqual({ t: "p", c: [text("© & *not em* A")] });
  });
});

describe("hostile input", () => {
  it("keeps raw HTML as text, block and inline", () => {
    expect(parseMarkdown("<script>alert(1)</script>\n\nhi <img src=x onerror=alert(1)> there")).toEqual([
      { t: "html", v: "<script>alert(1)</script>" },
      { t: "p", c: [text("hi <img src=x onerror=alert(1)> there")] },
    ]);
  });

  it("drops the address of javascript:, data:, vbscript: and relative links", () => {
    const links = [
      "[a](javascript:alert(1))",
      "[b](JAVASCRIPT:alert(1))",
      "[c](jav&#x61;script:alert(1))",
      "[d](data:text/html;base64,PHNjcmlwdD4=)",
      "[e](vbscript:msgbox)",
      "[f](/etc/passwd)",
      "[g](file:///etc/passwd)",
      "[h]( javascript:alert(1))",
      "<javascript:alert(1)>",
    ];
    for (const source of links) {
      const block = one(source);
      if (block.t !== "p") throw new Error(`${source}: not a paragraph`);
      const link = block.c.find((node) => node.t === "link");
      expect(link, source).toBeDefined();
      expect(link && link.t === "link" && link.href, source).toBeNull();
    }
  });

  it("safeHref allows http, https and mailto only", () => {
    expect(safeHref("https://example.com")).toBe("https://example.com/");
    expect(safeHref("http://127.0.0.1:8080/x?y#z")).toBe("http://127.0.0.1:8080/x?y#z");
    expect(safeHref("mailto:a@b.c")).toBe("mailto:a@b.c");
    for (const bad of ["javascript:alert(1)", "tauri://localhost/", "ipc://x", "file:///a", "about:blank", "data:,x", "//example.com", "example.com", ""]) {
      expect(safeHref(bad), bad).toBeNull();
    }
  });

  it("the component renders model HTML as text and makes no dangerous element or address", () => {
    const evil =
      '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\n\n' +
      "**<b>bold</b>** `<i>code</i>` [click](javascript:window.__pwned=3) <a href=x>link</a>\n\n" +
      "```html\n<iframe src=javascript:alert(1)></iframe>\n```\n\n" +
      "| <svg onload=alert(1)> | [x](javascript:void(0)) |\n| - | - |\n| <style>*{}</style> | ![i](javascript:x) |\n\n" +
      "- <details open ontoggle=alert(1)>\n\n[ok](https://example.com)";
    const { el, done } = render(evil);
    try {
      // The only SVG is the copy button's own icon.
      expect(el.querySelector("img, script, b, i, iframe, svg:not(.icon), style, details, object, embed")).toBeNull();
      expect(el.textContent).toContain('<img src=x onerror="window.__pwned=1">');
      expect(el.textContent).toContain("<script>window.__pwned=2</script>");
      expect(el.querySelector("strong")?.textContent).toBe("<b>bold</b>");
      expect(el.querySelector("code.inline")?.textContent).toBe("<i>code</i>");
      expect(el.querySelector("pre code")?.textContent).toBe("<iframe src=javascript:alert(1)></iframe>");
      const anchors = Array.from(el.querySelectorAll("a"));
      expect(anchors.map((a) => a.getAttribute("href"))).toEqual(["https://example.com/"]);
      for (const node of Array.from(el.querySelectorAll("*"))) {
        for (const attr of Array.from(node.attributes)) {
          expect(attr.name.startsWith("on"), `${node.tagName} ${attr.name}`).toBe(false);
          expect(/javascript:/i.test(attr.value), `${node.tagName} ${attr.name}=${attr.value}`).toBe(false);
        }
      }
      expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
    } finally {
      done();
    }
  });
});

describe("the Markdown component", () => {
  it("renders every GFM construct as elements", () => {
    const source =
      "# Title\n\nText with `code`, ~~old~~ and a [link](https://example.com).\n\n" +
      "1. first\n2. second\n   - [x] nested task\n\n> quote\n\n| a | b |\n| :- | -: |\n| 1 | 2 |\n\n---\n\n```ts\nconst x = 1;\n```";
    const { el, done } = render(source);
    try {
      expect(el.querySelector("h1")?.textContent).toBe("Title");
      expect(el.querySelector("code.inline")?.textContent).toBe("code");
      expect(el.querySelector("del")?.textContent).toBe("old");
      expect(el.querySelector("a")?.getAttribute("href")).toBe("https://example.com/");
      expect(el.querySelectorAll("ol > li")).toHaveLength(2);
      const box = el.querySelector<HTMLInputElement>("ol ul input[type=checkbox]");
      expect(box?.checked).toBe(true);
      expect(box?.disabled).toBe(true);
      expect(el.querySelector("blockquote")?.textContent?.trim()).toBe("quote");
      expect(Array.from(el.querySelectorAll("th")).map((th) => th.style.textAlign)).toEqual(["left", "right"]);
      expect(el.querySelectorAll("tbody td")).toHaveLength(2);
      expect(el.querySelector("hr")).not.toBeNull();
      expect(el.querySelector("pre code")?.textContent).toBe("const x = 1;");
      expect(el.querySelector('[data-testid="copy-button"][data-copy="code"]')).not.toBeNull();
    } finally {
      done();
    }
  });
});

describe("StreamingMarkdown", () => {
  const doc =
    "# Title\n\nIntro with **bold** and `code`.\nSecond line\n\n- one\n- two\n  continued\n\n1. first\n2. second\n\n" +
    "> quoted\n> more\n\n```rust\nfn main() {\n\n    println!(\"hi\");\n}\n```\n\nAfter the code.\n\n---\n\n" +
    "| a | b |\n| - | - |\n| 1 | 2 |\n\n- [ ] task\n- [x] done\n\nSetext\n===\n\n<div>\nraw html\n</div>\n\n" +
    "- list right before\n```\nfence after a list\n\n```\n  ```\nindented fence\n\n  ```\nend *em* _under_ done\n\n    indented code\n\n~~~\nopen fence at the end\n\n";

  const all = (r: StreamedBlocks) => r.sealed.concat(r.tail);
  /** What a one-shot streaming parse of `text` shows: the reference for every prefix. */
  const oneShot = (text: string) => all(new StreamingMarkdown().append(text));

  it("equals a one-shot parse at every prefix, streamed in small and odd-sized pieces, and a full parse at the end", () => {
    for (const step of [1, 3, 7, 40]) {
      const md = new StreamingMarkdown();
      for (let at = 0; at < doc.length; at += step) {
        const piece = doc.slice(at, at + step);
        const prefix = doc.slice(0, at + piece.length);
        expect(all(md.append(piece)), `step ${step}, prefix ${JSON.stringify(prefix.slice(-20))}`).toEqual(oneShot(prefix));
      }
      expect(all(md.finish("", () => doc))).toEqual(parseMarkdown(doc));
    }
  });

  it("seals finished blocks: the same objects on every later update", () => {
    const md = new StreamingMarkdown();
    const first = md.append("para one\n\npara two\n\npara th");
    expect(first.sealed).toHaveLength(2);
    expect(first.tail).toEqual([{ t: "p", c: [text("para th")] }]);
    const second = md.append("ree is longer");
    expect(second.sealed).toBe(first.sealed);
    const third = md.append("\n\n# next");
    expect(third.sealed[0]).toBe(first.sealed[0]);
    expect(third.sealed[1]).toBe(first.sealed[1]);
    expect(third.sealed).toHaveLength(3);
    const end = md.finish("", () => "");
    expect(end.sealed[2]).toBe(third.sealed[2]);
    expect(end.sealed).toHaveLength(4);
    expect(end.tail).toEqual([]);
  });

  it("marks the last fence open until it closes", () => {
    const md = new StreamingMarkdown();
    expect(md.append("```js\nlet a = 1;\n").tail).toEqual([{ t: "code", lang: "js", text: "let a = 1;", closed: false }]);
    expect(md.append("``").tail).toEqual([{ t: "code", lang: "js", text: "let a = 1;\n``", closed: false }]);
    expect(md.append("`").tail).toEqual([{ t: "code", lang: "js", text: "let a = 1;", closed: true }]);
    expect(md.append("\n\nafter").sealed).toEqual([{ t: "code", lang: "js", text: "let a = 1;", closed: true }]);
  });

  it("reads CR LF split across pieces as one line end", () => {
    const md = new StreamingMarkdown();
    md.append("one\r");
    md.append("\n\r");
    md.append("\ntwo\r\n");
    expect(all(md.finish("\r", () => "one\r\n\r\ntwo\r\n\r"))).toEqual(parseMarkdown("one\n\ntwo\n"));
  });

  it("resolves references to later definitions at the end", () => {
    const withRef = "see [guide]\n\nmiddle\n\n[guide]: https://example.com/";
    const md = new StreamingMarkdown();
    for (let at = 0; at < withRef.length; at += 5) md.append(withRef.slice(at, at + 5));
    const final = md.finish("", () => withRef);
    expect(final.tail).toEqual([]);
    expect(final.sealed).toEqual(parseMarkdown(withRef));
    expect(final.sealed[0]).toEqual({ t: "p", c: [text("see "), { t: "link", href: "https://example.com/", title: "", c: [text("guide")] }] });
  });

  it("does the work of the last block only, however long the reply", () => {
    const md = new StreamingMarkdown();
    let source = "";
    const started = performance.now();
    for (let i = 0; i < 4000; i++) {
      const piece = i % 25 === 0 ? `\n\n## Part ${i}\n\n` : i % 25 === 10 ? "\n\n```sh\necho hi\n```\n\n" : "word ";
      source += piece;
      md.append(piece);
    }
    const elapsed = performance.now() - started;
    expect(all(md.finish("", () => source))).toEqual(parseMarkdown(source));
    // A full parse per piece would take many seconds here; generous for a noisy machine.
    expect(elapsed).toBeLessThan(5000);
  });
});
