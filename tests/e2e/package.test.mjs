// The installed app: the .deb that `make package` builds is inspected with dpkg-deb, installed
// into a throwaway root with dpkg (`dpkg --root`, or `dpkg -x` when not root), and the installed
// /usr/bin/talaria is launched in a real window under Xvfb with its data in a temp folder; a reply
// must stream from the stand-in server. Then the package is removed again.
//
// Env: TALARIA_DEB (the package; default target/release/bundle/deb/talaria_<version>_amd64.deb).
// `make test` sets it, so a missing package fails there; run directly without one, this file skips.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

import { App, ROOT, Standin, log, running, scenario, stopAll, waitFor } from "./harness.mjs";

const VERSION = /^version = "([^"]+)"/m.exec(fs.readFileSync(path.join(ROOT, "Cargo.toml"), "utf8"))[1];
const DEB = path.resolve(process.env.TALARIA_DEB || path.join(ROOT, `target/release/bundle/deb/talaria_${VERSION}_amd64.deb`));
const skip = !process.env.TALARIA_DEB && !fs.existsSync(DEB) ? `no package at ${DEB}: run make package` : false;

/** Runs a command; fails the test with its output unless it exits 0. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: "utf8", ...options });
  assert.ok(!result.error, `${command}: ${result.error?.message}`);
  assert.equal(result.status, 0, `${command} ${args.join(" ")} exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** `Depends` as groups of alternatives: [[{name, op, version}]]. */
function parseDepends(text) {
  return text.split(",").map((group) =>
    group.split("|").map((alternative) => {
      const match = /^\s*([a-z0-9][a-z0-9+.-]*)(?::\w+)?\s*(?:\(\s*([<>=]+)\s*([^)\s]+)\s*\))?\s*$/.exec(alternative);
      assert.ok(match, `cannot read the dependency "${alternative}"`);
      return { name: match[1], op: match[2], version: match[3] };
    }),
  );
}

const DPKG_OPS = { ">=": "ge", "<=": "le", "=": "eq", ">>": "gt", "<<": "lt" };

/** Whether this machine has a package installed that meets `dep`. */
function installed(dep) {
  const query = spawnSync("dpkg-query", ["-W", "-f=${Status}|${Version}", dep.name], { encoding: "utf8" });
  if (query.status !== 0) return false;
  const [status, version] = query.stdout.split("|");
  if (!status.endsWith("installed")) return false;
  if (!dep.op) return true;
  return spawnSync("dpkg", ["--compare-versions", version, DPKG_OPS[dep.op], dep.version]).status === 0;
}

/** The package that owns a library file (dpkg knows a merged /usr by either path). */
function ownerOf(file) {
  const real = fs.realpathSync(file);
  const candidates = new Set([file, real]);
  for (const p of [...candidates]) {
    if (p.startsWith("/usr/lib/")) candidates.add(p.slice(4));
    else if (p.startsWith("/lib/")) candidates.add(`/usr${p}`);
  }
  for (const candidate of candidates) {
    const search = spawnSync("dpkg-query", ["-S", candidate], { encoding: "utf8" });
    if (search.status === 0) return search.stdout.split(":")[0].trim();
  }
  return null;
}

function files(dir, base = dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? files(full, base) : [path.relative(base, full)];
  });
}

const ICON_SIZES = [16, 24, 32, 48, 64, 128, 256, 512];

describe("the installed app (.deb)", { skip, timeout: 300_000 }, () => {
  let tmp;
  let fakeRoot;
  let installedBy;
  let app;
  let stand;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "talaria-deb-"));
    fakeRoot = path.join(tmp, "root");
    log(`package ${DEB}; throwaway root ${fakeRoot}`);
  });

  after(async () => {
    if (app) await app.close();
    await stopAll();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("holds /usr/bin/talaria, the desktop entry, hicolor icons and docs, and depends on what the binary links", () => {
    const fields = run("dpkg-deb", ["--field", DEB, "Package", "Version", "Architecture", "Depends", "Section"]);
    const field = (name) => new RegExp(`^${name}: (.*)$`, "m").exec(fields)?.[1];
    assert.equal(field("Package"), "talaria");
    assert.equal(field("Version"), VERSION);
    assert.equal(field("Architecture"), "amd64");
    const depends = parseDepends(field("Depends") ?? "");
    const names = new Set(depends.flat().map((d) => d.name));
    for (const needed of ["libwebkit2gtk-4.1-0", "libgtk-3-0"]) assert.ok(names.has(needed), `Depends has ${needed}: ${field("Depends")}`);
    for (const group of depends) {
      assert.ok(group.some(installed), `this machine cannot satisfy the dependency ${JSON.stringify(group)}`);
    }

    const contents = run("dpkg-deb", ["--contents", DEB]);
    const paths = new Set(contents.split("\n").filter(Boolean).map((line) => `/${line.split(/\s+/).pop().replace(/^\.?\//, "")}`));
    const wanted = [
      "/usr/bin/talaria",
      "/usr/share/applications/talaria.desktop",
      "/usr/share/icons/hicolor/scalable/apps/talaria.svg",
      "/usr/share/doc/talaria/cli.md",
      ...ICON_SIZES.map((n) => `/usr/share/icons/hicolor/${n}x${n}/apps/talaria.png`),
    ];
    for (const want of wanted) assert.ok(paths.has(want), `the package holds ${want}:\n${contents}`);
  });

  it(
    "installs, opens its window with the data in a temp folder, streams a reply, and is removed",
    scenario("installed-app", () => app, async () => {
      // Install.
      if (process.getuid() === 0) {
        // A dpkg database of its own: a real install and removal that leave the machine alone.
        for (const dir of ["info", "updates", "triggers"]) fs.mkdirSync(path.join(fakeRoot, "var/lib/dpkg", dir), { recursive: true });
        for (const file of ["status", "available"]) fs.writeFileSync(path.join(fakeRoot, "var/lib/dpkg", file), "");
        run("dpkg", [`--root=${fakeRoot}`, "--force-depends", "--install", DEB]);
        installedBy = "dpkg --root --install";
      } else {
        run("dpkg", ["-x", DEB, fakeRoot]);
        installedBy = "dpkg -x";
      }
      log(`installed with ${installedBy}`);
      const binary = path.join(fakeRoot, "usr/bin/talaria");
      const binDir = fs.readdirSync(path.dirname(binary));
      assert.deepEqual(binDir, ["talaria"]);
      assert.equal(run(binary, ["--version"]).trim(), `talaria ${VERSION}`);

      // The desktop entry: valid, and it starts this binary with this icon.
      const desktopFile = path.join(fakeRoot, "usr/share/applications/talaria.desktop");
      const validate = spawnSync("desktop-file-validate", [desktopFile], { encoding: "utf8" });
      assert.ok(!validate.error, "desktop-file-validate is missing (apt install desktop-file-utils)");
      const complaints = `${validate.stdout}${validate.stderr}`.split("\n").filter(Boolean);
      assert.equal(validate.status, 0, `desktop-file-validate:\n${complaints.join("\n")}`);
      // Its one hint is that Development and Utility are both main categories, which is asked for.
      assert.deepEqual(complaints.filter((line) => !/: hint: value "Development;Utility;" for key "Categories"/.test(line)), []);
      const entry = Object.fromEntries(
        fs.readFileSync(desktopFile, "utf8").split("\n").filter((l) => l.includes("=") && !l.startsWith("#")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      );
      assert.equal(entry.Name, "Talaria");
      assert.ok(entry.Comment?.length > 10, "a Comment");
      assert.deepEqual(entry.Categories.split(";").filter(Boolean), ["Development", "Utility"]);
      assert.equal(entry.Exec, "talaria", "Exec finds /usr/bin/talaria on PATH");
      assert.equal(entry.Icon, "talaria");
      for (const n of ICON_SIZES) {
        const icon = path.join(fakeRoot, `usr/share/icons/hicolor/${n}x${n}/apps/talaria.png`);
        const header = fs.readFileSync(icon).subarray(16, 24);
        assert.deepEqual([header.readUInt32BE(0), header.readUInt32BE(4)], [n, n], `${icon} is ${n}x${n}`);
      }

      // Every library the binary links comes from a package it depends on.
      const depends = new Set(parseDepends(run("dpkg-deb", ["--field", DEB, "Depends"]).trim()).flat().map((d) => d.name));
      const needed = [...run("readelf", ["-d", binary]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
      // ldd prints "libfoo.so.1 => /path (0x…)", and the loader as "/lib64/ld-linux-x86-64.so.2 (0x…)".
      const ldd = run("ldd", [binary]);
      const resolved = Object.fromEntries([
        ...[...ldd.matchAll(/^\s*(\S+) => (\/\S+)/gm)].map((m) => [m[1], m[2]]),
        ...[...ldd.matchAll(/^\s*(\/\S+) \(/gm)].map((m) => [path.basename(m[1]), m[1]]),
      ]);
      assert.ok(needed.length > 3, `NEEDED: ${needed}`);
      for (const library of needed) {
        assert.ok(resolved[library], `ldd resolves ${library}`);
        const owner = ownerOf(resolved[library]);
        assert.ok(owner && depends.has(owner.replace(/:.*/, "")), `${library} (${resolved[library]}) is in ${owner}, which Depends lacks`);
      }

      // Launch the installed binary: a fresh home and data folder, an empty current directory.
      const home = path.join(tmp, "home");
      const dataDir = path.join(tmp, "data");
      const workDir = path.join(tmp, "work");
      const cwd = path.join(tmp, "cwd");
      for (const dir of [home, dataDir, workDir, cwd]) fs.mkdirSync(dir, { recursive: true });
      stand = await Standin.start();
      const words = ["Installed ", "and ", "streaming ", "word ", "by ", "word ", "from ", "the ", "stand-in."];
      await stand.push({ kind: "openai", items: [{ type: "text", tokens: words }], delay_ms: 150 });
      app = await App.launch({
        app: binary,
        cwd,
        logDir: tmp,
        env: {
          HOME: home,
          XDG_DATA_HOME: path.join(home, ".local/share"),
          XDG_CONFIG_HOME: path.join(home, ".config"),
          XDG_CACHE_HOME: path.join(home, ".cache"),
          XDG_STATE_HOME: path.join(home, ".local/state"),
          TALARIA_PROVIDER: "openai",
          TALARIA_BASE_URL: `${stand.url}/v1`,
          TALARIA_MODEL: "standin-model",
          TALARIA_API_KEY: "sk-standin",
          TALARIA_DATA_DIR: dataDir,
          TALARIA_WORKDIR: workDir,
        },
      });
      const pid = app.pid();
      assert.equal(fs.realpathSync(`/proc/${pid}/exe`), fs.realpathSync(binary), "the installed binary runs");
      assert.equal(await app.session.title(), "Talaria");
      await app.sendPrompt("Say hello from the package");
      const lengths = new Set();
      await waitFor("the reply to stream and end done", async () => {
        const status = await app.status();
        if (status === "error") throw new Error(`turn failed: ${await app.session.textOf("error-banner")}`);
        const text = (await app.session.textOf("assistant-message")) ?? "";
        if (status === "running" && text) lengths.add(text.length);
        return status === "done";
      }, { timeout: 30_000, interval: 40 });
      await app.waitTurn("done");
      // The message's own text, without its Copy button's label.
      const reply = (await app.session.textOf("assistant-message")).replace(/\s*Copy$/, "").trim();
      assert.equal(reply, words.join(""));
      log(`partial reply lengths seen while streaming: ${[...lengths].join(", ")}`);
      assert.ok(lengths.size >= 2, `the reply showed up word by word, not at once (lengths ${[...lengths]})`);
      if (process.env.E2E_SCREENSHOT) await app.saveShot("installed-app");
      await app.close();
      app = undefined;
      await waitFor("the installed app to quit", () => !running(pid), { timeout: 15_000 });

      // Nothing next to the binary, nothing in the current directory; the data in TALARIA_DATA_DIR.
      assert.deepEqual(fs.readdirSync(path.dirname(binary)), ["talaria"]);
      assert.deepEqual(fs.readdirSync(cwd), [], "nothing written in the current directory");
      assert.ok(files(dataDir).some((f) => f.startsWith("sessions/") && f.endsWith(".jsonl")), `a session log in ${dataDir}`);
      const stray = files(home).filter((f) => f.includes("talaria"));
      assert.deepEqual(stray, [], "nothing of Talaria's in the home folder when TALARIA_DATA_DIR is set");

      // Remove.
      if (installedBy === "dpkg --root --install") {
        run("dpkg", [`--root=${fakeRoot}`, "--remove", "talaria"]);
        assert.ok(!fs.existsSync(binary), "dpkg --remove took /usr/bin/talaria away");
        assert.ok(!fs.existsSync(desktopFile), "and the desktop entry");
      }
      fs.rmSync(fakeRoot, { recursive: true, force: true });
    }),
  );
});
