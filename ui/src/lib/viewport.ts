// The element a message scrolls in, for components that window their content (Markdown).

import { getContext, setContext } from "svelte";

const KEY = Symbol("scroll-viewport");

/** ChatPane: its scroller, for everything rendered inside it. */
export function provideViewport(get: () => HTMLElement | undefined): void {
  setContext(KEY, get);
}

/** The scroller this component is rendered in, when there is one. */
export function viewport(): () => HTMLElement | undefined {
  return getContext<(() => HTMLElement | undefined) | undefined>(KEY) ?? (() => undefined);
}
