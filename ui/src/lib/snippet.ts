// Search snippets mark each match between U+E000 and U+E001 (private-use characters, which real
// text does not hold, unlike brackets). Snippets from an index that still marks matches with
// `[` and `]` are read the old way when they hold no U+E000.

export const MATCH_START = "\uE000";
export const MATCH_END = "\uE001";

export interface SnippetRun {
  mark: boolean;
  text: string;
}

/** Splits a snippet into plain and matched runs. */
export function snippetRuns(snippet: string): SnippetRun[] {
  if (!snippet.includes(MATCH_START)) return bracketRuns(snippet);
  const runs: SnippetRun[] = [];
  const push = (mark: boolean, text: string) => {
    if (!text) return;
    const last = runs[runs.length - 1];
    if (last && last.mark === mark) last.text += text;
    else runs.push({ mark, text });
  };
  let mark = false;
  let from = 0;
  for (let i = 0; i < snippet.length; i++) {
    const c = snippet[i];
    if (c !== MATCH_START && c !== MATCH_END) continue;
    push(mark, snippet.slice(from, i));
    // A stray end marker (or a start inside a match) only sets the state: markers never show.
    mark = c === MATCH_START;
    from = i + 1;
  }
  push(mark, snippet.slice(from));
  return runs;
}

function bracketRuns(snippet: string): SnippetRun[] {
  const runs: SnippetRun[] = [];
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
