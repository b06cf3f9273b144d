// Windowing the blocks of a long reply: only the blocks near the visible part of the chat are
// in the DOM; the others are one spacer above and one below, as tall as the blocks they stand
// for (measured when they were last on screen, estimated before). The DOM of a reply, and the
// browser's work per frame while it streams, stay the same size however long the reply gets.

import type { Block, Inline } from "./markdown";

/** Replies with fewer sealed blocks than this render whole. */
export const WINDOW_MIN_BLOCKS = 60;
/** Pixels kept rendered above and below the visible part. */
export const WINDOW_MARGIN = 1200;

const LINE = 23;
const CODE_LINE = 19;
const CHARS_PER_LINE = 90;

function inlineLength(nodes: readonly Inline[]): number {
  let n = 0;
  for (const node of nodes) {
    switch (node.t) {
      case "text":
      case "code":
        n += node.v.length;
        break;
      case "strong":
      case "em":
      case "del":
      case "link":
        n += inlineLength(node.c);
        break;
      case "image":
        n += node.alt.length + 9;
        break;
      case "br":
        n += CHARS_PER_LINE;
        break;
    }
  }
  return n;
}

const lines = (chars: number) => Math.max(1, Math.ceil(chars / CHARS_PER_LINE));

/** A guess of a block's height in pixels, for blocks not measured yet. */
export function estimateHeight(block: Block): number {
  switch (block.t) {
    case "p":
      return lines(inlineLength(block.c)) * LINE + 10;
    case "h":
      return 40;
    case "code":
      return block.text.split("\n").length * CODE_LINE + 52;
    case "list":
      return block.items.reduce((sum, item) => sum + item.c.reduce((s, b) => s + estimateHeight(b) - 10, 0), 0) + 10;
    case "quote":
      return block.c.reduce((sum, b) => sum + estimateHeight(b), 0);
    case "table":
      return (block.rows.length + 1) * 33 + 12;
    case "hr":
      return 30;
    case "html":
      return block.v.split("\n").length * LINE + 10;
  }
}

/** Heights of a reply's sealed blocks, measured or estimated, with their running sums. */
export class BlockHeights {
  #measured: (number | undefined)[] = [];
  #estimates: number[] = [];
  #prefix: Float64Array = new Float64Array(1);
  #valid = 0;

  /** Brings the estimates in line with the sealed blocks (which only grow, or start over). */
  sync(blocks: readonly Block[]): void {
    if (blocks.length < this.#estimates.length) {
      this.#measured = [];
      this.#estimates = [];
      this.#valid = 0;
    }
    for (let i = this.#estimates.length; i < blocks.length; i++) this.#estimates.push(estimateHeight(blocks[i]));
  }

  get count(): number {
    return this.#estimates.length;
  }

  height(i: number): number {
    return this.#measured[i] ?? this.#estimates[i] ?? 0;
  }

  /** Records a measured height; returns how much the block grew (negative: shrank). */
  measure(i: number, px: number): number {
    const before = this.height(i);
    if (px === before && this.#measured[i] !== undefined) return 0;
    this.#measured[i] = px;
    this.#valid = Math.min(this.#valid, i);
    return px - before;
  }

  /** Top of block `i` (0 for the first; `top(count)` is the height of them all). */
  top(i: number): number {
    const n = this.#estimates.length;
    if (this.#prefix.length < n + 1) {
      const grown = new Float64Array(Math.max(n + 1, this.#prefix.length * 2));
      grown.set(this.#prefix.subarray(0, this.#valid + 1));
      this.#prefix = grown;
    }
    for (let k = this.#valid; k < n; k++) this.#prefix[k + 1] = this.#prefix[k] + this.height(k);
    this.#valid = n;
    return this.#prefix[Math.min(Math.max(i, 0), n)];
  }

  /** The blocks `[from, to)` that overlap `[top, bottom)` (pixels from the first block's top). */
  range(top: number, bottom: number): [number, number] {
    const n = this.count;
    this.top(n);
    let lo = 0;
    let hi = n;
    // First block whose bottom is below `top`.
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#prefix[mid + 1] <= top) lo = mid + 1;
      else hi = mid;
    }
    const from = lo;
    let to = from;
    while (to < n && this.#prefix[to] < bottom) to++;
    return [from, to];
  }
}
