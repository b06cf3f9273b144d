// Big inputs for the "never freezes" tests: a long stored session and a long streamed reply.
import type { MessagePage, SessionDetail, StoredMessage } from "../lib/api";

/**
 * `turns` turns of user → assistant(tool call) → tool → assistant; every `bigEvery`-th tool result is `bigSize` bytes.
 * `trail` more messages (a user question and its answer, repeated) follow the turns, so pages of a round size
 * counted from the end start mid-turn.
 */
export function longSession(turns: number, bigEvery = 50, bigSize = 100_000, trail = 0): SessionDetail {
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
  for (let i = 0; i < trail; i++) {
    messages.push(i % 2 === 0 ? { role: "user", content: `follow-up ${i}` } : { role: "assistant", content: `answer ${i}` });
  }
  return {
    id: "long",
    title: "A long session",
    created: "2025-01-01T00:00:00Z",
    skipped_lines: 0,
    todos: [],
    messages,
    first_index: 0,
    total_messages: messages.length,
  };
}

/** Like the backend's `page_start`: moved back over tool results, so a page never starts with one. */
function pageStart(messages: StoredMessage[], start: number): number {
  let s = Math.min(start, messages.length);
  while (s > 0 && messages[s]?.role === "tool") s--;
  return s;
}

/** `open_session` as the backend answers it, `tail` honoured. */
export function openPaged(detail: SessionDetail, tail: number | null | undefined): SessionDetail {
  const total = detail.messages.length;
  const first = tail == null ? 0 : pageStart(detail.messages, Math.max(0, total - tail));
  return { ...detail, messages: detail.messages.slice(first), first_index: first, total_messages: total };
}

/** `session_messages` as the backend answers it. */
export function pageBefore(detail: SessionDetail, before: number, limit: number): MessagePage {
  const total = detail.messages.length;
  const end = Math.min(before, total);
  const first = pageStart(detail.messages, Math.max(0, end - limit));
  return { messages: detail.messages.slice(first, end), first_index: first, total_messages: total };
}
