// No in-app navigation, ever: every click on a link is stopped here, and web and mail links
// (http, https, mailto) are handed to the system's browser or mail program through the opener
// plugin. The window itself refuses navigations too (desktop/navigation.rs).

import { openUrl } from "@tauri-apps/plugin-opener";
import { safeHref } from "./markdown";

/** Opens `href` outside the app if it is a web or mail link; false if it was refused. */
export async function openExternal(href: string): Promise<boolean> {
  const url = safeHref(href);
  if (!url) return false;
  try {
    await openUrl(url);
    return true;
  } catch (error) {
    console.warn("talaria: could not open the link", url, error);
    return false;
  }
}

function onLinkClick(event: MouseEvent): void {
  const target = event.target instanceof Element ? event.target.closest("a[href]") : null;
  if (!(target instanceof HTMLAnchorElement)) return;
  event.preventDefault();
  // Only the main button and the middle one open the link; others (a right click) do nothing.
  if (event.type === "click" || (event.type === "auxclick" && event.button === 1)) {
    void openExternal(target.getAttribute("href") ?? "");
  }
}

/** Installs the guard on the whole document, before any other click handler sees a link. */
export function guardLinks(doc: Document = document): () => void {
  doc.addEventListener("click", onLinkClick, true);
  doc.addEventListener("auxclick", onLinkClick, true);
  return () => {
    doc.removeEventListener("click", onLinkClick, true);
    doc.removeEventListener("auxclick", onLinkClick, true);
  };
}
