// What a tool card shows besides the raw arguments and result: the change a file tool made as a
// unified diff (computed with the `diff` library), the command and exit code of `terminal`, the
// path and line range of `read_file`. Arguments and results come from the model and the tools:
// every field is checked, and anything unexpected falls back to the plain view.

import { structuredPatch } from "diff";

export interface DiffLine {
  kind: "add" | "del" | "ctx";
  /** Line numbers in the old and new text (null where the line is not in that side). */
  old: number | null;
  new: number | null;
  text: string;
}

export interface Hunk {
  header: string;
  lines: DiffLine[];
}

export interface FileDiff {
  path: string;
  hunks: Hunk[];
  added: number;
  removed: number;
  /** Why there is no diff (too large to compare), or what the diff is against. */
  note: string;
}

/** Texts larger than this are not compared: the card says so. */
export const MAX_DIFF_CHARS = 400_000;

function record(args: unknown): Record<string, unknown> | null {
  return args !== null && typeof args === "object" && !Array.isArray(args) ? (args as Record<string, unknown>) : null;
}

const str = (value: unknown): string | null => (typeof value === "string" ? value : null);

/** A unified diff of `before` → `after`; the first line of `before` is line `firstLine`. */
export function unifiedDiff(path: string, before: string, after: string, firstLine = 1, note = ""): FileDiff {
  if (before.length + after.length > MAX_DIFF_CHARS) {
    return { path, hunks: [], added: 0, removed: 0, note: "too large to compare here" };
  }
  const patch = structuredPatch(path, path, before, after, undefined, undefined, { context: 3, timeout: 250 });
  if (!patch) return { path, hunks: [], added: 0, removed: 0, note: "too many changes to compare here" };
  const shift = firstLine - 1;
  let added = 0;
  let removed = 0;
  const hunks = patch.hunks.map((hunk) => {
    let oldLine = hunk.oldStart + shift;
    let newLine = hunk.newStart + shift;
    const lines: DiffLine[] = [];
    for (const raw of hunk.lines) {
      const sign = raw[0];
      const text = raw.slice(1);
      if (sign === "+") {
        lines.push({ kind: "add", old: null, new: newLine++, text });
        added++;
      } else if (sign === "-") {
        lines.push({ kind: "del", old: oldLine++, new: null, text });
        removed++;
      } else if (sign === " ") {
        lines.push({ kind: "ctx", old: oldLine++, new: newLine++, text });
      }
      // "\ No newline at end of file" markers are left out.
    }
    const start = (n: number, count: number) => (count === 0 ? n - 1 : n);
    const header = `@@ -${start(hunk.oldStart + shift, hunk.oldLines)},${hunk.oldLines} +${start(hunk.newStart + shift, hunk.newLines)},${hunk.newLines} @@`;
    return { header, lines };
  });
  return { path, hunks, added, removed, note };
}

/** `patch`: old_string → new_string, numbered from the line the tool reported. */
export function patchDiff(args: unknown, result: string | null): FileDiff | null {
  const a = record(args);
  const path = str(a?.path);
  const before = str(a?.old_string);
  const after = str(a?.new_string);
  if (!a || path === null || before === null || after === null) return null;
  const at = result ? /\(at line (\d+)\)/.exec(result) : null;
  const all = a.replace_all === true ? "every occurrence" : "";
  return unifiedDiff(path, before, after, at ? Number(at[1]) : 1, all);
}

/**
 * `write_file`: the new content against `before` (what the file held, when the tool reported
 * it), else against nothing for a new file; an overwrite of unknown content says so.
 */
export function writeDiff(args: unknown, result: string | null, before: string | null = null): FileDiff | null {
  const a = record(args);
  const path = str(a?.path);
  const content = str(a?.content);
  if (!a || path === null || content === null) return null;
  if (before !== null) return unifiedDiff(path, before, content);
  const replaced = result !== null && /replaced the old content/.test(result);
  return unifiedDiff(path, "", content, 1, replaced ? "the file's earlier content is not known here: all lines show as new" : "new file");
}

export interface TerminalView {
  command: string;
  /** The exit code, when the command ran to its end. */
  exitCode: number | null;
  /** How it ended, as the tool put it: "exit code 0", "killed by signal 9", "timed out"… */
  ending: string | null;
}

export function terminalView(args: unknown, result: string | null): TerminalView | null {
  const command = str(record(args)?.command);
  if (command === null) return null;
  if (result === null) return { command, exitCode: null, ending: null };
  const code = /\[exit code (-?\d+)\]/.exec(result);
  const other = /\[(killed by signal [^\]]+|exit status unknown|timed out[^\]]*)\]/.exec(result);
  return {
    command,
    exitCode: code ? Number(code[1]) : null,
    ending: code ? `exit code ${code[1]}` : other ? other[1] : null,
  };
}

export interface ReadView {
  path: string;
  /** The lines shown, from the numbered result; null when the result has none (an error). */
  from: number | null;
  to: number | null;
  /** Lines in the file, when the result says. */
  total: number | null;
}

const NUMBERED = /^ *(\d+)\t/;

export function readView(args: unknown, result: string | null): ReadView | null {
  const a = record(args);
  const path = str(a?.path);
  if (!a || path === null) return null;
  let from: number | null = null;
  let to: number | null = null;
  let total: number | null = null;
  if (result) {
    const first = NUMBERED.exec(result);
    if (first) {
      from = Number(first[1]);
      // The last numbered line: search back from the end, line by line.
      let end = result.length;
      while (end > 0) {
        const start = result.lastIndexOf("\n", end - 1) + 1;
        const m = NUMBERED.exec(result.slice(start, Math.min(end, start + 24)));
        if (m) {
          to = Number(m[1]);
          break;
        }
        end = start - 1;
      }
      const of = /\[showed lines \d+-\d+ of (\d+);/.exec(result.slice(-600));
      // No "showed lines" notice after a read from line 1: the whole file is there.
      total = of ? Number(of[1]) : from === 1 ? to : null;
    }
  }
  if (from === null) {
    // No numbered lines: what was asked for.
    const offset = typeof a.offset === "number" ? a.offset : null;
    const limit = typeof a.limit === "number" ? a.limit : null;
    if (offset !== null) from = offset;
    if (offset !== null && limit !== null) to = offset + limit - 1;
  }
  return { path, from, to, total };
}
