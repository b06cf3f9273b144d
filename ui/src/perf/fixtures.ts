// Big inputs for the "never freezes" tests: a long stored session and a long streamed reply.
import type { SessionDetail, StoredMessage } from "../lib/api";

/** `turns` turns of user → assistant(tool call) → tool → assistant; every `bigEvery`-th tool result is `bigSize` bytes. */
export function longSession(turns: number, bigEvery = 50, bigSize = 100_000): SessionDetail {
  const messages: StoredMessage[] = [];
  const big = "0123456789abcdef ".repeat(Math.ceil(bigSize / 17)).slice(0, bigSize);
  for (let t = 0; t < turns; t++) {
    messages.push({ role: "user", content: `question ${t}: what is in file ${t}?` });
    messages.push({
      role: "assistant",
      content: `Let me **read** file ${t}.`,
      tool_calls: [{ id: `c${t}`, name: "read_file", arguments: JSON.stringify({ path: `src/f${t}.rs` }) }],
    });
    messages.push({
      role: "tool",
      tool_call_id: `c${t}`,
      name: "read_file",
      content: t % bigEvery === 0 ? big : `fn f${t}() {}\n`,
    });
    messages.push({
      role: "assistant",
      content: `File ${t} defines \`f${t}\`.\n\n- one point\n- another point\n\n\`\`\`rust\nfn f${t}() {}\n\`\`\``,
    });
  }
  return { id: "long", title: "A long session", created: "2025-01-01T00:00:00Z", skipped_lines: 0, todos: [], messages };
}
