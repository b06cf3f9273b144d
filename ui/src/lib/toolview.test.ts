import { flushSync, mount, unmount } from "svelte";
import { afterEach, describe, expect, it } from "vitest";
import DiffView from "../components/DiffView.svelte";
import ToolCard from "../components/ToolCard.svelte";
import { ToolItem } from "./chat.svelte";
import { patchDiff, readView, terminalView, unifiedDiff, writeDiff } from "./toolview";

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const done of cleanup) done();
  cleanup = [];
});

/** A fresh element for a component to mount into, removed after the test. */
function target(): HTMLElement {
  const el = document.createElement("div");
  document.body.appendChild(el);
  cleanup.push(() => el.remove());
  return el;
}

function keep(app: ReturnType<typeof mount>): void {
  flushSync();
  cleanup.unshift(() => void unmount(app));
}

const mountDiff = (props: { diff: ReturnType<typeof unifiedDiff>; limit?: number }) => {
  const el = target();
  keep(mount(DiffView, { target: el, props }));
  return el;
};

const mountCard = (item: ToolItem) => {
  const el = target();
  keep(mount(ToolCard, { target: el, props: { item } }));
  return el;
};

describe("unified diffs", () => {
  it("numbers old and new lines and counts the changes", () => {
    const diff = unifiedDiff("a.txt", "one\ntwo\nthree\n", "one\n2\nthree\nfour\n");
    expect(diff.added).toBe(2);
    expect(diff.removed).toBe(1);
    expect(diff.hunks).toHaveLength(1);
    expect(diff.hunks[0].header).toBe("@@ -1,3 +1,4 @@");
    expect(diff.hunks[0].lines).toEqual([
      { kind: "ctx", old: 1, new: 1, text: "one" },
      { kind: "del", old: 2, new: null, text: "two" },
      { kind: "add", old: null, new: 2, text: "2" },
      { kind: "ctx", old: 3, new: 3, text: "three" },
      { kind: "add", old: null, new: 4, text: "four" },
    ]);
  });

  it("patch: old_string to new_string, at the line the tool reported", () => {
    const diff = patchDiff(
      { path: "src/lib.rs", old_string: "fn a() {\n    1\n}", new_string: "fn a() {\n    2\n}" },
      "replaced 1 occurrence in src/lib.rs (at line 40)",
    );
    expect(diff?.path).toBe("src/lib.rs");
    expect(diff?.hunks[0].header).toBe("@@ -40,3 +40,3 @@");
    expect(diff?.hunks[0].lines.filter((l) => l.kind !== "ctx")).toEqual([
      { kind: "del", old: 41, new: null, text: "    1" },
      { kind: "add", old: null, new: 41, text: "    2" },
    ]);
  });

  it("write_file: a new file is all additions; an overwrite of unknown content says so", () => {
    const fresh = writeDiff({ path: "n.md", content: "# Hi\n\ntext\n" }, "wrote 12 bytes (3 lines) to n.md (new file)");
    expect(fresh).toMatchObject({ added: 3, removed: 0, note: "new file" });
    expect(fresh?.hunks[0].header).toBe("@@ -0,0 +1,3 @@");
    const over = writeDiff({ path: "n.md", content: "x\n" }, "wrote 2 bytes (1 lines) to n.md (replaced the old content)");
    expect(over?.note).toMatch(/not known/);
    const known = writeDiff({ path: "n.md", content: "x\ny\n" }, null, "x\n");
    expect(known).toMatchObject({ added: 1, removed: 0, note: "" });
  });

  it("ignores arguments of the wrong shape", () => {
    expect(patchDiff("not json", null)).toBeNull();
    expect(patchDiff({ path: 1, old_string: "a", new_string: "b" }, null)).toBeNull();
    expect(writeDiff(["path", "content"], null)).toBeNull();
    expect(terminalView({ cmd: "ls" }, null)).toBeNull();
    expect(readView(null, null)).toBeNull();
  });

  it("does not compare huge texts", () => {
    const big = "line\n".repeat(100_000);
    expect(unifiedDiff("big", big, `${big}more\n`)).toMatchObject({ hunks: [], note: "too large to compare here" });
  });
});

describe("terminal and read_file views", () => {
  it("terminal: the command and its exit code", () => {
    expect(terminalView({ command: "cargo test" }, "ok\n[exit code 101]")).toEqual({ command: "cargo test", exitCode: 101, ending: "exit code 101" });
    expect(terminalView({ command: "sleep 9" }, "[killed by signal 9]")).toEqual({ command: "sleep 9", exitCode: null, ending: "killed by signal 9" });
    expect(terminalView({ command: "ls" }, null)).toEqual({ command: "ls", exitCode: null, ending: null });
  });

  it("read_file: the path and the line range shown", () => {
    expect(readView({ path: "a.rs" }, "     1\tfn a() {}\n     2\t}")).toEqual({ path: "a.rs", from: 1, to: 2, total: 2 });
    expect(
      readView({ path: "a.rs", offset: 10, limit: 2 }, "    10\tx\n    11\ty\n[showed lines 10-11 of 80; call read_file with offset=12 to read on]"),
    ).toEqual({ path: "a.rs", from: 10, to: 11, total: 80 });
    expect(readView({ path: "gone.rs", offset: 5, limit: 10 }, "no such file")).toEqual({ path: "gone.rs", from: 5, to: 14, total: null });
  });
});

describe("the diff view and tool cards", () => {
  it("renders the diff lines with their signs and numbers, as text", () => {
    const diff = unifiedDiff("x.html", "<b>old</b>\n", "<script>alert(1)</script>\n");
    const el = mountDiff({ diff });
    expect(el.querySelector("script")).toBeNull();
    const rows = Array.from(el.querySelectorAll("tr.add, tr.del")).map((tr) => Array.from(tr.children).map((td) => td.textContent));
    expect(rows).toEqual([
      ["1", "", "−", "<b>old</b>"],
      ["", "1", "+", "<script>alert(1)</script>"],
    ]);
    expect(el.querySelector(".added")?.textContent).toBe("+1");
    expect(el.querySelector(".removed")?.textContent).toBe("−1");
  });

  it("cuts a long diff until Show all", () => {
    const diff = unifiedDiff("long", "", Array.from({ length: 1000 }, (_, i) => `l${i}`).join("\n"));
    const el = mountDiff({ diff, limit: 50 });
    expect(el.querySelectorAll("tr.add")).toHaveLength(49);
    (el.querySelector("button.more") as HTMLButtonElement).click();
    flushSync();
    expect(el.querySelectorAll("tr.add")).toHaveLength(1000);
  });

  it("a patch card shows its diff open; a terminal card its command and exit code; read_file its range", () => {
    const patch = new ToolItem("c1", "patch", { path: "a.txt", old_string: "a", new_string: "b" });
    patch.state = "ok";
    patch.result = "replaced 1 occurrence in a.txt (at line 3)";
    const el = mountCard(patch);
    expect(el.querySelector('[data-testid="diff-view"]')).not.toBeNull();
    expect(el.querySelector("tr.add td.text")?.textContent).toBe("b");

    const term = new ToolItem("c2", "terminal", { command: "false" });
    term.state = "ok";
    term.result = "[exit code 1]";
    const t = mountCard(term);
    expect(t.querySelector(".command")?.textContent).toContain("false");
    expect(t.querySelector('[data-testid="exit-code"]')?.textContent).toBe("exit code 1");
    expect(t.querySelector('[data-testid="exit-code"]')?.classList.contains("failed")).toBe(true);

    const read = new ToolItem("c3", "read_file", { path: "src/main.rs", offset: 5, limit: 3 });
    read.state = "ok";
    read.result = "     5\ta\n     6\tb\n     7\tc\n[showed lines 5-7 of 9; call read_file with offset=8 to read on]";
    const r = mountCard(read);
    expect(r.querySelector(".summary")?.textContent).toBe("src/main.rs");
    expect(r.querySelector('[data-testid="read-range"]')?.textContent).toBe("lines 5–7 of 9");
  });
});
