// Model text as a Markdown tree: CommonMark + GFM tokenized by marked's lexer, then turned into
// the small tree below that the Svelte components render. Every string in it ends up in a text
// node or an attribute, never parsed as HTML: raw HTML in the text is shown as text, and links
// keep their address only for http(s) and mailto.

import { decodeHTMLStrict as decodeHTML } from "entities/decode";
import { Lexer, type MarkedToken, type Token, type Tokens } from "marked";

export type Inline =
  | { t: "text"; v: string }
  | { t: "code"; v: string }
  | { t: "strong"; c: Inline[] }
  | { t: "em"; c: Inline[] }
  | { t: "del"; c: Inline[] }
  /** `href` is null when the address is not http(s) or mailto: the text shows, no link. */
  | { t: "link"; href: string | null; title: string; c: Inline[] }
  /** Images are never loaded: the alt text shows, linked when the address is http(s). */
  | { t: "image"; href: string | null; alt: string }
  | { t: "br" };

export type Align = "left" | "right" | "center" | null;

export interface ListItem {
  /** Task list state: null for a plain item. */
  checked: boolean | null;
  c: Block[];
}

export type Block =
  | { t: "p"; c: Inline[] }
  | { t: "h"; level: number; c: Inline[] }
  /** `closed`: the fence has ended (highlighting waits for it). */
  | { t: "code"; lang: string; text: string; closed: boolean }
  | { t: "list"; ordered: boolean; start: number; tight: boolean; items: ListItem[] }
  | { t: "quote"; c: Block[] }
  | { t: "table"; align: Align[]; head: Inline[][]; rows: Inline[][][] }
  | { t: "hr" }
  /** Raw HTML from the text, shown as text. */
  | { t: "html"; v: string };

const SAFE_SCHEMES = new Set(["http:", "https:", "mailto:"]);

/** The address if it may be opened (http, https, mailto; absolute), else null. */
export function safeHref(url: string): string | null {
  const trimmed = url.trim();
  if (!trimmed) return null;
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    return null;
  }
  return SAFE_SCHEMES.has(parsed.protocol) ? parsed.href : null;
}

function imageHref(url: string): string | null {
  const href = safeHref(url);
  return href && !href.startsWith("mailto:") ? href : null;
}

function lex(text: string): Token[] {
  return new Lexer({ gfm: true, breaks: false }).lex(text);
}

// marked's union includes a generic token (extensions) whose `type` is any string; ours never
// loads extensions, and anything unexpected is shown as its raw text.
const known = (token: Token) => token as MarkedToken;

function blocks(tokens: readonly Token[]): Block[] {
  const out: Block[] = [];
  for (const token of tokens) {
    const block = toBlock(token);
    if (block) out.push(block);
  }
  return out;
}

function toBlock(generic: Token): Block | null {
  const token = known(generic);
  switch (token.type) {
    case "paragraph":
      return { t: "p", c: inlines(token.tokens) };
    // Text at block level: the content of a tight list item.
    case "text":
      return { t: "p", c: token.tokens ? inlines(token.tokens) : [{ t: "text", v: decodeHTML(token.text) }] };
    case "heading":
      return { t: "h", level: token.depth, c: inlines(token.tokens) };
    case "code":
      return { t: "code", lang: (token.lang ?? "").trim().split(/\s+/)[0].slice(0, 40), text: token.text, closed: fenceClosed(token.raw) };
    case "list":
      return {
        t: "list",
        ordered: token.ordered,
        start: typeof token.start === "number" ? token.start : 1,
        tight: !token.loose && token.items.every((item) => !item.loose),
        items: token.items.map((item) => ({
          checked: item.task ? item.checked === true : null,
          c: blocks(item.tokens.filter((t) => t.type !== "checkbox")),
        })),
      };
    case "blockquote":
      return { t: "quote", c: blocks(token.tokens) };
    case "table": {
      const width = token.header.length;
      const row = (cells: Tokens.TableCell[]) =>
        Array.from({ length: width }, (_, i) => (cells[i] ? inlines(cells[i].tokens) : []));
      return { t: "table", align: token.align.slice(0, width), head: row(token.header), rows: token.rows.map(row) };
    }
    case "hr":
      return { t: "hr" };
    case "html":
      return { t: "html", v: token.text.replace(/\n+$/, "") };
    // Blank lines, and definitions (used by the references that name them).
    case "space":
    case "def":
      return null;
    default:
      return generic.raw.trim() ? { t: "p", c: [{ t: "text", v: generic.raw }] } : null;
  }
}

function inlines(tokens: readonly Token[]): Inline[] {
  const out: Inline[] = [];
  const push = (inline: Inline) => {
    const last = out[out.length - 1];
    // Adjacent text (escapes and raw HTML among text) reads as one run.
    if (inline.t === "text" && last?.t === "text") out[out.length - 1] = { t: "text", v: last.v + inline.v };
    else if (!(inline.t === "text" && inline.v === "")) out.push(inline);
  };
  for (const token of tokens) {
    // Text with tokens inside (marked nests them in list items): its inlines, in place.
    if (token.type === "text" && token.tokens) for (const inner of inlines(token.tokens)) push(inner);
    else push(toInline(token));
  }
  return out;
}

function toInline(generic: Token): Inline {
  const token = known(generic);
  switch (token.type) {
    case "text":
      return { t: "text", v: decodeHTML(token.text) };
    case "escape":
      return { t: "text", v: token.text };
    case "html":
      return { t: "text", v: token.text };
    case "codespan":
      return { t: "code", v: token.text };
    case "strong":
      return { t: "strong", c: inlines(token.tokens) };
    case "em":
      return { t: "em", c: inlines(token.tokens) };
    case "del":
      return { t: "del", c: inlines(token.tokens) };
    case "link":
      return { t: "link", href: safeHref(decodeHTML(token.href)), title: decodeHTML(token.title ?? ""), c: inlines(token.tokens) };
    case "image":
      return { t: "image", href: imageHref(decodeHTML(token.href)), alt: decodeHTML(token.text) };
    case "br":
      return { t: "br" };
    case "checkbox":
      return { t: "text", v: token.checked ? "[x] " : "[ ] " };
    default:
      return { t: "text", v: generic.raw };
  }
}

/** Whether a fenced code block's source ends with its closing fence (indented code: always). */
function fenceClosed(raw: string): boolean {
  const open = /^ {0,3}(`{3,}|~{3,})/.exec(raw);
  if (!open) return true;
  const lines = raw.replace(/\n+$/, "").split("\n");
  if (lines.length < 2) return false;
  const last = lines[lines.length - 1].trim();
  const fence = open[1];
  return last.length >= fence.length && last === fence[0].repeat(last.length);
}

/** Parses a whole text. */
export function parseMarkdown(text: string): Block[] {
  return blocks(lex(text));
}

/** Link reference definitions: their references may sit in blocks before them. */
const DEFINITION = /^ {0,3}\[[^\]\n]+\]:/m;

export interface StreamedBlocks {
  /** Final: never change again while the text grows. The same objects on every update. */
  sealed: Block[];
  /** The last block (or none), parsed again on every update. */
  tail: Block[];
}

/**
 * Parses a reply while it streams in, from the pieces that arrive. A top-level block followed
 * by another one is closed for good (the next one could only start once it ended), so it is
 * converted once and sealed; only the text of the last block is kept and parsed again on each
 * update. The work per update is the size of the last block, never of the reply, and the
 * reply itself is not held here. `finish` parses the whole text once only when that could
 * differ (reference definitions, whose references may come before them).
 */
export class StreamingMarkdown {
  #sealed: Block[] = [];
  /** The text from the start of the last block on. */
  #tail = "";
  /** A carriage return ended the last piece: a line feed may follow in the next. */
  #pendingCr = false;
  #definitions = false;

  /** Adds the next piece of the reply. */
  append(piece: string): StreamedBlocks {
    this.#tail += this.#normalize(piece);
    const tokens = lex(this.#tail);
    // The last token that is a block (not blank lines): it may still grow, the rest is final.
    let last = tokens.length - 1;
    while (last >= 0 && tokens[last].type === "space") last--;
    if (last <= 0) return { sealed: this.#sealed, tail: blocks(tokens) };
    let cut = 0;
    for (let i = 0; i < last; i++) cut += tokens[i].raw.length;
    const done = this.#tail.slice(0, cut);
    if (!this.#definitions && DEFINITION.test(done)) this.#definitions = true;
    this.#sealed = this.#sealed.concat(blocks(tokens.slice(0, last)));
    this.#tail = this.#tail.slice(cut);
    return { sealed: this.#sealed, tail: blocks(tokens.slice(last)) };
  }

  /** The reply ended with `piece`; `whole` gives its whole text if a full parse is needed. */
  finish(piece: string, whole: () => string): StreamedBlocks {
    this.#tail += this.#normalize(piece) + (this.#pendingCr ? "\n" : "");
    this.#pendingCr = false;
    if (this.#definitions || (this.#sealed.length > 0 && DEFINITION.test(this.#tail))) {
      this.#sealed = parseMarkdown(whole());
    } else {
      const done = blocks(lex(this.#tail));
      if (done.length > 0) this.#sealed = this.#sealed.concat(done);
    }
    this.#tail = "";
    return { sealed: this.#sealed, tail: [] };
  }

  /** Line ends as marked reads them (CR LF and CR are LF), so lengths add up across pieces. */
  #normalize(piece: string): string {
    let text = this.#pendingCr ? `\r${piece}` : piece;
    this.#pendingCr = text.endsWith("\r");
    if (this.#pendingCr) text = text.slice(0, -1);
    return text.includes("\r") ? text.replace(/\r\n?/g, "\n") : text;
  }
}
