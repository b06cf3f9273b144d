// Figures the end-to-end tests report (and a benchmark can reuse): frame-gap distributions,
// the RSS of the app's process tree, and the long scripted reply they are measured with.

import fs from "node:fs";
import path from "node:path";

/** Count, percentiles and the long frames of a list of frame gaps (ms). */
export function frameStats(gaps) {
  // The first gap is measured from when the watcher was installed, not from a frame.
  const sorted = gaps.slice(1).sort((a, b) => a - b);
  const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0);
  const round = (n) => Math.round(n * 10) / 10;
  return {
    frames: sorted.length,
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    max: round(sorted.length ? sorted[sorted.length - 1] : 0),
    over_33ms: sorted.filter((g) => g > 33.4).length,
    over_50ms: sorted.filter((g) => g > 50).length,
    over_100ms: sorted.filter((g) => g > 100).length,
  };
}

function children() {
  const byParent = new Map();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(path.join("/proc", entry, "stat"), "utf8");
      // The name is in parentheses and may hold spaces: the fields after it are fixed.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ppid = Number(rest[1]);
      if (!byParent.has(ppid)) byParent.set(ppid, []);
      byParent.get(ppid).push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return byParent;
}

function rssKb(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const name = /^Name:\s*(.*)$/m.exec(status)?.[1] ?? "?";
    const kb = Number(/^VmRSS:\s*(\d+)/m.exec(status)?.[1] ?? 0);
    return { name, kb };
  } catch {
    return { name: "?", kb: 0 };
  }
}

/**
 * RSS of the app's process tree: the `talaria` process found under `rootPid` (tauri-driver)
 * and every process below it (WebKit's web and network processes included), in MB.
 */
export function treeRss(rootPid) {
  const byParent = children();
  const below = (pid) => {
    const out = [pid];
    for (const child of byParent.get(pid) ?? []) out.push(...below(child));
    return out;
  };
  const appPid = below(rootPid).find((pid) => rssKb(pid).name.startsWith("talaria"));
  const tree = appPid === undefined ? [] : below(appPid);
  const processes = tree.map((pid) => {
    const { name, kb } = rssKb(pid);
    return { pid, name, mb: Math.round(kb / 102.4) / 10 };
  });
  const mb = Math.round(processes.reduce((sum, p) => sum + p.mb, 0) * 10) / 10;
  return { mb, processes };
}

/**
 * About `count` tokens of a long Markdown report: every 50 tokens a heading, a paragraph and a
 * fenced code block. Tokens carry their leading space or newline, like a real tokenizer's.
 */
export function longReplyTokens(count) {
  const tokens = [];
  const words = "the stream keeps going while the window stays smooth and every block that is done stays put".split(" ");
  for (let section = 1; tokens.length < count; section++) {
    tokens.push("## ", `Section ${section}`, "\n\n");
    for (let w = 0; w < 33; w++) tokens.push(`${w === 0 ? "" : " "}${words[(section + w) % words.length]}`);
    tokens.push(".\n\n", "```rust\n", "fn", ` section_${section}()`, " -> u32", " {\n", "    let", " x", ` = ${section};`, "\n", "    x", " * 2\n", "}\n", "```\n\n");
  }
  return tokens.slice(0, count);
}
