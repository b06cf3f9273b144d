// What the component tests share: waiting for the UI to settle, and a component mounted in a
// fresh element with the IPC mocks cleared after it.

import { clearMocks } from "@tauri-apps/api/mocks";
import { type Component, flushSync, mount, unmount } from "svelte";

/** Resolves once `check` holds (flushing Svelte's updates between tries), rejects after `timeout` ms. */
export function until(check: () => boolean, timeout = 2000): Promise<void> {
  const deadline = Date.now() + timeout;
  return new Promise((resolve, reject) => {
    const poll = () => {
      flushSync();
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error("condition not met in time"));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

/** A component mounted in its own element; `destroy` unmounts it and clears the IPC mocks. */
export class Mounted {
  readonly target: HTMLElement;
  #app: ReturnType<typeof mount> | null = null;

  constructor() {
    this.target = document.createElement("div");
    document.body.appendChild(this.target);
  }

  mount(component: Component): void {
    this.#app = mount(component, { target: this.target });
  }

  destroy(): void {
    if (this.#app) void unmount(this.#app);
    this.#app = null;
    this.target.remove();
    clearMocks();
  }

  /** The first element matching `selector` inside the component. */
  q(selector: string): HTMLElement | null {
    return this.target.querySelector<HTMLElement>(selector);
  }
}
