// The add/edit form of Settings → Tools: an mcp.json entry as form text, and back.

import type { McpServerEntry } from "./api";

/** The form's fields; lists are text with one item per line. */
export interface ServerDraft {
  name: string;
  kind: "stdio" | "http";
  command: string;
  args: string;
  env: string;
  cwd: string;
  url: string;
  headers: string;
  trusted: boolean;
  startupTimeout: string | number | null;
  toolTimeout: string | number | null;
  /** Not on the form (the switch in the list sets it): carried over unchanged. */
  enabled: boolean | undefined;
}

export function emptyDraft(): ServerDraft {
  return {
    name: "",
    kind: "stdio",
    command: "",
    args: "",
    env: "",
    cwd: "",
    url: "",
    headers: "",
    trusted: false,
    startupTimeout: null,
    toolTimeout: null,
    enabled: undefined,
  };
}

export function draftFromEntry(name: string, entry: McpServerEntry): ServerDraft {
  const pairs = (map: Record<string, string> | undefined, separator: string) =>
    Object.entries(map ?? {})
      .map(([k, v]) => `${k}${separator}${v}`)
      .join("\n");
  return {
    name,
    kind: entry.url && !entry.command ? "http" : "stdio",
    command: entry.command ?? "",
    args: (entry.args ?? []).join("\n"),
    env: pairs(entry.env, "="),
    cwd: entry.cwd ?? "",
    url: entry.url ?? "",
    headers: pairs(entry.headers, ": "),
    trusted: entry.trusted ?? false,
    startupTimeout: entry.startup_timeout_s ?? null,
    toolTimeout: entry.tool_timeout_s ?? null,
    enabled: entry.enabled,
  };
}

/** `KEY<sep>VALUE` lines as a map; the error names the line. */
function parsePairs(text: string, separator: string, what: string, example: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const at = line.indexOf(separator);
    const key = at > 0 ? line.slice(0, at).trim() : "";
    if (!key) return `${what}, line ${i + 1}: “${line}” should look like ${example}`;
    out[key] = line.slice(at + separator.length).trim();
  }
  return out;
}

/** Seconds from a number field: empty means the default. */
function seconds(value: string | number | null, what: string): number | undefined | string {
  if (value === null || value === "") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) return `${what} must be a whole number of seconds, at least 1`;
  return n;
}

/** The entry to save, or what to fix. */
export function entryFromDraft(draft: ServerDraft): { entry: McpServerEntry } | { error: string } {
  if (!draft.name.trim()) return { error: "Give the server a name, such as “github” or “files”." };
  const entry: McpServerEntry = {};
  if (draft.kind === "stdio") {
    if (!draft.command.trim()) return { error: "Give the command that starts the server, such as npx or uvx." };
    entry.command = draft.command.trim();
    const args = draft.args
      .split("\n")
      .map((a) => a.trim())
      .filter((a) => a.length > 0);
    if (args.length) entry.args = args;
    const env = parsePairs(draft.env, "=", "Environment", "KEY=VALUE");
    if (typeof env === "string") return { error: env };
    if (Object.keys(env).length) entry.env = env;
    if (draft.cwd.trim()) entry.cwd = draft.cwd.trim();
  } else {
    const url = draft.url.trim();
    if (!/^https?:\/\//.test(url)) return { error: "Give the server's address, starting with https:// or http://." };
    entry.url = url;
    const headers = parsePairs(draft.headers, ":", "Headers", "Authorization: Bearer …");
    if (typeof headers === "string") return { error: headers };
    if (Object.keys(headers).length) entry.headers = headers;
  }
  const startup = seconds(draft.startupTimeout, "The startup timeout");
  if (typeof startup === "string") return { error: startup };
  const tool = seconds(draft.toolTimeout, "The tool timeout");
  if (typeof tool === "string") return { error: tool };
  if (startup !== undefined) entry.startup_timeout_s = startup;
  if (tool !== undefined) entry.tool_timeout_s = tool;
  if (draft.trusted) entry.trusted = true;
  if (draft.enabled === false) entry.enabled = false;
  return { entry };
}
