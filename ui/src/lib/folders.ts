// The native folder picker (tauri-plugin-dialog). Typing a path works everywhere too; the
// picker is a convenience on top.

import { open } from "@tauri-apps/plugin-dialog";

/** Asks the user for a folder; null when they cancel or no picker is available. */
export async function pickFolder(startAt: string | null): Promise<string | null> {
  try {
    const picked = await open({ directory: true, multiple: false, defaultPath: startAt ?? undefined });
    return typeof picked === "string" ? picked : null;
  } catch (error) {
    console.warn("talaria: the folder picker failed", error);
    return null;
  }
}
