// A small, safe Markdown subset for model text: paragraphs, fenced code, inline code, bold,
// italic, headings, lists, quotes. It produces a tree that Svelte templates render as text
// nodes, so model text is never parsed as HTML (no {@html} anywhere).

export type Inline =
  | { t: "text"; v: string }
  | { t: "code"; v: string }
  | { t: "strong"; v: Inline[] }
  | { t: "em"; v: Inline[] };

export type Block =
  | { type: "p"; inlines: Inline[] }
  | { type: "heading"; level: number; inlines: Inline[] }
  | { type: "code"; lang: string; text: string; open: boolean }
  | { type: "list"; ordered: boolean; start: number; items: Inline[][] }
  | { type: "quote"; inlines: Inline[] }
  | { type: "hr" };

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const ORDERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const HR = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;

export function parseMarkdown(source: string): Block[] {
  return parseLines(source.replace(/\r\n?/g, "\n").split("\n"));
}

/**
 * The parser proper. `checkpoint(line, blocks)` is called at every line where a new block may
 * start with nothing pending (no open paragraph): everything pushed to `blocks` before that point
 * depends only on the lines before it and that line itself, which lets StreamingMarkdown keep it.
 */
function parseLines(lines: string[], checkpoint?: (line: number, blocks: number) => void): Block[] {
  const blocks: Block[] = [];
  let para: string[] = [];

  const flush = () => {
    if (para.length) {
      blocks.push({ type: "p", inlines: parseInline(para.join("\n")) });
      para = [];
    }
  };

  let i = 0;
  while (i < lines.length) {
    if (checkpoint && para.length === 0) checkpoint(i, blocks.length);
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      flush();
      const marker = fence[1];
      const body: string[] = [];
      i++;
      let closed = false;
      while (i < lines.length) {
        const l = lines[i];
        if (l.trimStart().startsWith(marker[0].repeat(marker.length)) && l.trim().replace(/[`~]/g, "") === "") {
          closed = true;
          i++;
          break;
        }
        body.push(l);
        i++;
      }
      blocks.push({ type: "code", lang: fence[2] ?? "", text: body.join("\n"), open: !closed });
      continue;
    }
    if (line.trim() === "") {
      flush();
      i++;
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      flush();
      blocks.push({ type: "heading", level: heading[1].length, inlines: parseInline(heading[2]) });
      i++;
      continue;
    }
    if (HR.test(line)) {
      flush();
      blocks.push({ type: "hr" });
      i++;
      continue;
    }
    const bullet = BULLET.exec(line);
    const ordered = ORDERED.exec(line);
    if (bullet || ordered) {
      flush();
      const isOrdered = !bullet;
      const start = ordered ? Number(ordered[1]) : 1;
      const items: string[] = [];
      while (i < lines.length) {
        const l = lines[i];
        const m = isOrdered ? ORDERED.exec(l) : BULLET.exec(l);
        if (m) {
          items.push(isOrdered ? m[2] : m[1]);
        } else if (l.trim() !== "" && /^\s{2,}/.test(l) && items.length) {
          items[items.length - 1] += `\n${l.trim()}`;
        } else {
          break;
        }
        i++;
      }
      blocks.push({ type: "list", ordered: isOrdered, start, items: items.map(parseInline) });
      continue;
    }
    const quote = QUOTE.exec(line);
    if (quote) {
      flush();
      const body: string[] = [];
      while (i < lines.length) {
        const m = QUOTE.exec(lines[i]);
        if (!m) break;
        body.push(m[1]);
        i++;
      }
      blocks.push({ type: "quote", inlines: parseInline(body.join("\n")) });
      continue;
    }
    para.push(line);
    i++;
  }
  flush();
  return blocks;
}

/**
 * Parses a reply while it streams. Text only grows at the end, so the blocks before the last
 * safe checkpoint are kept and only the text after it is parsed again: the work per update is
 * the size of the last block or two, not the size of the whole reply. Any other change (the text
 * replaced, not extended) parses from scratch. Results equal parseMarkdown's.
 */
export class StreamingMarkdown {
  #text = "";
  /** Blocks of text[0, #offset), final. */
  #stable: Block[] = [];
  /** Where the unparsed rest starts: always the start of a line. */
  #offset = 0;

  update(text: string): Block[] {
    if (!text.startsWith(this.#text) || text.includes("\r", this.#offset)) {
      this.#stable = [];
      this.#offset = 0;
      if (text.includes("\r")) {
        this.#text = "";
        return parseMarkdown(text);
      }
    }
    this.#text = text;
    const lines = text.slice(this.#offset).split("\n");
    // A checkpoint is safe when its line is complete (not the last, still growing one: lists and
    // quotes end by reading it), or when a complete blank line ended the blocks before it.
    let safeLine = 0;
    let safeBlocks = 0;
    const last = lines.length - 1;
    const tail = parseLines(lines, (line, count) => {
      if (line < last || (line > 0 && lines[line - 1].trim() === "")) {
        safeLine = line;
        safeBlocks = count;
      }
    });
    if (safeLine > 0) {
      for (let k = 0; k < safeLine; k++) this.#offset += lines[k].length + 1;
      this.#stable = this.#stable.concat(tail.slice(0, safeBlocks));
      return this.#stable.concat(tail.slice(safeBlocks));
    }
    return this.#stable.concat(tail);
  }
}

/** Inline code first (its content is literal), then **bold** / __bold__, then *em* / _em_. */
export function parseInline(text: string): Inline[] {
  const out: Inline[] = [];
  const parts = text.split(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/);
  // split with 2 capture groups yields: text, ticks, code, text, ticks, code, ...
  for (let k = 0; k < parts.length; k += 3) {
    if (parts[k]) out.push(...emphasis(parts[k]));
    if (k + 2 < parts.length) out.push({ t: "code", v: parts[k + 2].replace(/^ (.+) $/, "$1") });
  }
  return merge(out);
}

// Candidates in priority order; "_" forms must not touch word characters (snake_case, __dunder).
const EMPHASIS: { re: RegExp; strong: boolean; underscore: boolean }[] = [
  { re: /\*\*(?=\S)([\s\S]*?\S)\*\*/g, strong: true, underscore: false },
  { re: /__(?=\S)([\s\S]*?\S)__(?!\w)/g, strong: true, underscore: true },
  { re: /\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)/g, strong: false, underscore: false },
  { re: /_(?=[^\s_])([\s\S]*?[^\s_])_(?!\w)/g, strong: false, underscore: true },
];

function emphasis(text: string): Inline[] {
  let best: { index: number; length: number; inner: string; strong: boolean } | null = null;
  for (const { re, strong, underscore } of EMPHASIS) {
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (underscore && m.index > 0 && /\w/.test(text[m.index - 1])) {
        re.lastIndex = m.index + 1;
        continue;
      }
      if (!best || m.index < best.index) best = { index: m.index, length: m[0].length, inner: m[1], strong };
      break;
    }
  }
  if (!best) return text ? [{ t: "text", v: text }] : [];
  const before = text.slice(0, best.index);
  const after = text.slice(best.index + best.length);
  const inner = emphasis(best.inner);
  const node: Inline = best.strong ? { t: "strong", v: inner } : { t: "em", v: inner };
  return [...(before ? [{ t: "text", v: before } as Inline] : []), node, ...emphasis(after)];
}

function merge(list: Inline[]): Inline[] {
  const out: Inline[] = [];
  for (const node of list) {
    const last = out[out.length - 1];
    if (node.t === "text" && last?.t === "text") {
      out[out.length - 1] = { t: "text", v: last.v + node.v };
    } else if (!(node.t === "text" && node.v === "")) {
      out.push(node);
    }
  }
  return out;
}

/** Splits an FTS snippet with `[hit]` markers into plain and marked runs. */
export function snippetRuns(snippet: string): { mark: boolean; text: string }[] {
  const runs: { mark: boolean; text: string }[] = [];
  const re = /\[([^\]]*)\]/g;
  let last = 0;
  for (let m = re.exec(snippet); m; m = re.exec(snippet)) {
    if (m.index > last) runs.push({ mark: false, text: snippet.slice(last, m.index) });
    if (m[1]) runs.push({ mark: true, text: m[1] });
    last = m.index + m[0].length;
  }
  if (last < snippet.length) runs.push({ mark: false, text: snippet.slice(last) });
  return runs;
}
