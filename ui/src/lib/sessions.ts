// Pure helpers of the session list: forks placed under their parents, and search snippets
// split into plain and highlighted runs from the backend's character ranges.

import type { SessionSummary } from "./api";

/** One row of the list: a session and how deep it sits under its parent (0: top level). */
export interface Row {
  session: SessionSummary;
  depth: number;
}

/** Deepest indentation shown; forks of forks deeper than this line up at this depth. */
const MAX_DEPTH = 3;

/**
 * The list as shown: every session in the order given, except that a fork whose parent is
 * listed comes right after its parent (and its parent's other forks), one level deeper.
 */
export function arrangeForks(sessions: SessionSummary[]): Row[] {
  const listed = new Set(sessions.map((s) => s.id));
  const children = new Map<string, SessionSummary[]>();
  for (const s of sessions) {
    const parent = s.forked_from?.id;
    if (parent && parent !== s.id && listed.has(parent)) {
      const list = children.get(parent) ?? [];
      list.push(s);
      children.set(parent, list);
    }
  }
  const rows: Row[] = [];
  const placed = new Set<string>();
  const place = (s: SessionSummary, depth: number) => {
    if (placed.has(s.id)) return;
    placed.add(s.id);
    rows.push({ session: s, depth: Math.min(depth, MAX_DEPTH) });
    for (const child of children.get(s.id) ?? []) place(child, depth + 1);
  };
  for (const s of sessions) {
    const parent = s.forked_from?.id;
    const nested = parent && parent !== s.id && listed.has(parent);
    if (!nested) place(s, 0);
  }
  // A cycle of forks (damaged logs) would leave rows unplaced: show them at the top level.
  for (const s of sessions) place(s, 0);
  return rows;
}

/** A snippet split into runs, `mark` on the matched words; `highlights` are [start, end) in code points. */
export function highlightRuns(snippet: string, highlights: [number, number][] = []): { mark: boolean; text: string }[] {
  const chars = Array.from(snippet);
  const runs: { mark: boolean; text: string }[] = [];
  let at = 0;
  const sorted = highlights
    .filter(([a, b]) => Number.isInteger(a) && Number.isInteger(b) && a < b)
    .sort((x, y) => x[0] - y[0]);
  for (const [start, end] of sorted) {
    const a = Math.max(start, at);
    const b = Math.min(end, chars.length);
    if (a >= b) continue;
    if (a > at) runs.push({ mark: false, text: chars.slice(at, a).join("") });
    runs.push({ mark: true, text: chars.slice(a, b).join("") });
    at = b;
  }
  if (at < chars.length) runs.push({ mark: false, text: chars.slice(at).join("") });
  return runs;
}

/** A byte count for people: "12.3 MB". */
export function formatBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}
