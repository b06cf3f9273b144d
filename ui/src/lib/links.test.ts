import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it } from "vitest";
import { guardLinks } from "./links";

afterEach(() => clearMocks());

async function settle() {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
}

describe("the link guard", () => {
  it("stops every link click and opens only http(s) and mailto through the opener", async () => {
    const opened: unknown[] = [];
    mockIPC((cmd, payload) => {
      if (cmd === "plugin:opener|open_url") opened.push((payload as { url: string }).url);
      return null;
    });
    const stop = guardLinks();
    const box = document.createElement("div");
    document.body.appendChild(box);
    try {
      const hrefs = ["https://example.com/a", "mailto:a@b.c", "javascript:alert(1)", "/relative", "file:///etc/passwd"];
      for (const href of hrefs) {
        const a = document.createElement("a");
        a.setAttribute("href", href);
        a.append(document.createElement("span"));
        box.append(a);
        const click = new MouseEvent("click", { bubbles: true, cancelable: true });
        // A click on an element inside the link counts as a click on the link.
        (a.firstChild as HTMLElement).dispatchEvent(click);
        expect(click.defaultPrevented, href).toBe(true);
      }
      await settle();
      expect(opened).toEqual(["https://example.com/a", "mailto:a@b.c"]);
      const right = new MouseEvent("auxclick", { bubbles: true, cancelable: true, button: 2 });
      box.querySelector("a")?.dispatchEvent(right);
      await settle();
      expect(right.defaultPrevented).toBe(true);
      expect(opened).toHaveLength(2);
    } finally {
      stop();
      box.remove();
    }
  });
});
