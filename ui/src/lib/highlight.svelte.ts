// Syntax highlighting as tokens, never HTML: lowlight (highlight.js grammars) gives a hast tree,
// turned here into nested class + text runs that a component renders as spans and text nodes.
// The grammars load on first use, in their own chunk, so the window opens without them.

import type { ElementContent, Root } from "hast";

/** A highlighted run of text and the highlight.js classes around it (nested ones joined). */
export interface Run {
  cls: string;
  text: string;
}

type Lowlight = {
  highlight: (language: string, value: string) => Root;
  registered: (alias: string) => boolean;
};

/** Longer code is shown plain: highlighting it could hold up the window. */
export const MAX_HIGHLIGHT = 100_000;

// Raw: the highlighter is a library object, not state to proxy.
let ready = $state.raw<Lowlight | null>(null);
let failed = $state(false);
let loading: Promise<void> | null = null;

/** Loads the grammars ahead of the first code block, when the window has nothing to do. */
export function preloadHighlighter(): void {
  const idle = (globalThis as { requestIdleCallback?: (f: () => void, o?: { timeout: number }) => number }).requestIdleCallback;
  if (idle) idle(load, { timeout: 5000 });
  else setTimeout(load, 1500);
}

function load(): void {
  if (loading) return;
  loading = import("lowlight").then(
    ({ createLowlight, common }) => {
      ready = createLowlight(common);
    },
    () => {
      failed = true;
    },
  );
}

/** The hast tree as flat runs: one span per run renders it, with no nesting. */
function runs(nodes: readonly ElementContent[], cls: string, out: Run[]): Run[] {
  for (const node of nodes) {
    if (node.type === "text") {
      const last = out[out.length - 1];
      if (last && last.cls === cls) last.text += node.value;
      else out.push({ cls, text: node.value });
    } else if (node.type === "element") {
      const names = node.properties?.className;
      const own = Array.isArray(names) ? names.filter((n) => typeof n === "string" && /^[A-Za-z][\w-]*$/.test(n)).join(" ") : "";
      runs(node.children, own ? (cls ? `${cls} ${own}` : own) : cls, out);
    }
  }
  return out;
}

/**
 * `code` in `lang` as highlighted runs, or null when it stays plain (an unknown or missing
 * language, too long, or the grammars not loaded yet: the caller re-runs once they are, as
 * this reads reactive state).
 */
export function highlight(code: string, lang: string): Run[] | null {
  const name = lang.trim().toLowerCase();
  if (!name || code.length > MAX_HIGHLIGHT || failed) return null;
  const lowlight = ready;
  if (!lowlight) {
    load();
    return null;
  }
  if (!lowlight.registered(name)) return null;
  try {
    return runs(lowlight.highlight(name, code).children as ElementContent[], "", []);
  } catch {
    return null;
  }
}
