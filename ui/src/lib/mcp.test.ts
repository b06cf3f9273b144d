import { describe, expect, it } from "vitest";
import type { McpServerEntry } from "./api";
import { historyItems, toolLabel } from "./chat.svelte";
import { draftFromEntry, emptyDraft, entryFromDraft } from "./mcp";

describe("the MCP server form", () => {
  it("round-trips a Claude Desktop entry", () => {
    const entry: McpServerEntry = {
      command: "npx",
      args: ["-y", "@modelcontextprotocol/server-filesystem", "/home/me/my projects"],
      env: { DEBUG: "1", TOKEN: "a=b" },
      trusted: true,
      tool_timeout_s: 30,
      enabled: false,
    };
    const draft = draftFromEntry("files", entry);
    expect(draft.kind).toBe("stdio");
    expect(draft.args).toBe("-y\n@modelcontextprotocol/server-filesystem\n/home/me/my projects");
    expect(entryFromDraft(draft)).toEqual({ entry });
  });

  it("builds a remote entry with headers", () => {
    const draft = { ...emptyDraft(), name: "remote", kind: "http" as const, url: " https://example.com/mcp ", headers: "Authorization: Bearer x:y\n\n" };
    expect(entryFromDraft(draft)).toEqual({
      entry: { url: "https://example.com/mcp", headers: { Authorization: "Bearer x:y" } },
    });
    expect(draftFromEntry("remote", { url: "https://example.com/mcp" }).kind).toBe("http");
  });

  it("says what to fix", () => {
    const base = { ...emptyDraft(), name: "s", command: "run" };
    expect(entryFromDraft({ ...base, name: " " })).toHaveProperty("error");
    expect(entryFromDraft({ ...base, command: "" })).toHaveProperty("error");
    expect(entryFromDraft({ ...base, env: "A=1\nnot a pair" })).toEqual({
      error: "Environment, line 2: “not a pair” should look like KEY=VALUE",
    });
    expect(entryFromDraft({ ...base, toolTimeout: "0" })).toHaveProperty("error");
    expect(entryFromDraft({ ...base, startupTimeout: "2.5" })).toHaveProperty("error");
    expect(entryFromDraft({ ...base, kind: "http", url: "ftp://x" })).toHaveProperty("error");
    expect(entryFromDraft({ ...base, startupTimeout: "", toolTimeout: null })).toEqual({ entry: { command: "run" } });
  });
});

describe("MCP tool cards", () => {
  it("show the tool's own name and the server, also when replayed from the log", () => {
    expect(toolLabel("github__create_issue", "github")).toBe("create_issue");
    expect(toolLabel("read_file", null)).toBe("read_file");
    const items = historyItems(
      [
        { role: "user", content: "hi" },
        { role: "assistant", content: "", tool_calls: [{ id: "c1", name: "test__image", arguments: "{}" }] },
        {
          role: "tool",
          tool_call_id: "c1",
          name: "test__image",
          content: "a red square\n[image 1: image/png]",
          mcp: { server: "test", images: [{ mime_type: "image/png", data: "iVBORw0KGgo=" }] },
        },
      ],
      new Map(),
    );
    const tool = items[1];
    expect(tool.kind).toBe("tool");
    if (tool.kind !== "tool") return;
    expect(tool.server).toBe("test");
    expect(tool.images).toHaveLength(1);
    expect(tool.state).toBe("ok");
  });
});
