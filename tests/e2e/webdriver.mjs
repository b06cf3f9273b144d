// A tiny W3C WebDriver client over global fetch: just what the Talaria end-to-end tests use.

const ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf";

/** WebDriver key codes; NULL releases the modifiers held down so far. */
export const Keys = { NULL: "\uE000", ENTER: "\uE007", SHIFT: "\uE008", CONTROL: "\uE009", ESCAPE: "\uE00C" };

export class WebDriverError extends Error {
  constructor(status, error, message) {
    super(`WebDriver ${status} ${error}: ${message}`);
    this.status = status;
    this.error = error;
  }
}

async function request(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json; charset=utf-8" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    throw new WebDriverError(response.status, "bad response", text.slice(0, 500));
  }
  const value = json.value;
  if (!response.ok || (value && typeof value === "object" && "error" in value && value.error)) {
    throw new WebDriverError(response.status, value?.error ?? "unknown error", value?.message ?? text.slice(0, 500));
  }
  return value;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a truthy value (returned) or the time is up (throws with `what`). */
export async function waitFor(what, check, { timeout = 10_000, interval = 50 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(interval);
  }
}

export class Session {
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  /** Creates a session. Only the given capabilities are sent (tauri-driver wants just tauri:options). */
  static async create(base, capabilities) {
    const value = await request(base, "POST", "/session", { capabilities });
    return new Session(base, value.sessionId);
  }

  cmd(method, path, body) {
    return request(this.base, method, `/session/${this.id}${path}`, body);
  }

  async find(css) {
    const value = await this.cmd("POST", "/element", { using: "css selector", value: css });
    return value[ELEMENT_KEY];
  }

  async findAll(css) {
    const value = await this.cmd("POST", "/elements", { using: "css selector", value: css });
    return value.map((v) => v[ELEMENT_KEY]);
  }

  byTestId(id) {
    return this.find(`[data-testid="${id}"]`);
  }

  allByTestId(id) {
    return this.findAll(`[data-testid="${id}"]`);
  }

  click(element) {
    return this.cmd("POST", `/element/${element}/click`, {});
  }

  type(element, text) {
    return this.cmd("POST", `/element/${element}/value`, { text });
  }

  clear(element) {
    return this.cmd("POST", `/element/${element}/clear`, {});
  }

  text(element) {
    return this.cmd("GET", `/element/${element}/text`);
  }

  enabled(element) {
    return this.cmd("GET", `/element/${element}/enabled`);
  }

  attribute(element, name) {
    return this.cmd("GET", `/element/${element}/attribute/${encodeURIComponent(name)}`);
  }

  /** Runs `script` (a function body) in the page; arguments arrive as `arguments[i]`. */
  execute(script, args = []) {
    return this.cmd("POST", "/execute/sync", { script, args });
  }

  title() {
    return this.cmd("GET", "/title");
  }

  /**
   * PNG bytes of the window. WebKitGTK takes the snapshot on the next paint, and an idle page
   * under Xvfb may never paint again, so a tiny invisible element is nudged while it waits.
   */
  async screenshot() {
    await this.execute(`
      const dot = document.createElement("div");
      dot.id = "__wd_repaint";
      dot.style.cssText = "position:fixed;left:0;top:0;width:1px;height:1px;pointer-events:none;opacity:0.01";
      document.body.appendChild(dot);
      let flip = false;
      window.__wdRepaint = setInterval(() => { flip = !flip; dot.style.background = flip ? "#000" : "#fff"; }, 30);
    `).catch(() => undefined);
    try {
      const base64 = await this.cmd("GET", "/screenshot");
      return Buffer.from(base64, "base64");
    } finally {
      await this.execute(
        'clearInterval(window.__wdRepaint); document.getElementById("__wd_repaint")?.remove();',
      ).catch(() => undefined);
    }
  }

  async delete() {
    await request(this.base, "DELETE", `/session/${this.id}`);
  }

  /** The text of the element with this test id, or null if it is not there. */
  async textOf(testId) {
    const found = await this.allByTestId(testId);
    return found.length ? this.text(found[0]) : null;
  }
}
