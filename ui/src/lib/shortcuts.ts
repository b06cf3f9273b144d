// The app's keyboard shortcuts: one table for the handler and for the shortcuts sheet.

export type ShortcutAction = "search" | "new-session" | "settings" | "stop" | "shortcuts" | "quit";

export interface Shortcut {
  action: ShortcutAction;
  /** As shown on the sheet. */
  keys: string[];
  label: string;
}

export const SHORTCUTS: readonly Shortcut[] = [
  { action: "search", keys: ["Ctrl", "K"], label: "Search sessions" },
  { action: "new-session", keys: ["Ctrl", "N"], label: "New session" },
  { action: "settings", keys: ["Ctrl", ","], label: "Open settings" },
  { action: "stop", keys: ["Esc"], label: "Stop the running reply" },
  { action: "shortcuts", keys: ["Ctrl", "/"], label: "Show these shortcuts" },
  { action: "quit", keys: ["Ctrl", "Q"], label: "Quit (running replies stop and are saved first)" },
];

/** Keys that only the message box uses: listed on the sheet, handled by the composer. */
export const COMPOSER_KEYS: readonly { keys: string[]; label: string }[] = [
  { keys: ["Enter"], label: "Send the message" },
  { keys: ["Shift", "Enter"], label: "New line in the message" },
];

/**
 * The app-wide action for a key press, or null. Ctrl (or Cmd on a Mac keyboard) with no Alt;
 * Shift is allowed only where the key needs it on some layouts (`/` and `,`). Esc is handled
 * by the chat pane itself, which knows whether a dialog is open.
 */
export function shortcutFor(event: KeyboardEvent): ShortcutAction | null {
  if (event.isComposing || event.altKey) return null;
  const mod = event.ctrlKey || event.metaKey;
  if (!mod) return null;
  const key = event.key.toLowerCase();
  if (event.shiftKey && key !== "/" && key !== "?") return null;
  switch (key) {
    case "k":
      return "search";
    case "n":
      return "new-session";
    case ",":
      return "settings";
    case "q":
      return "quit";
    case "/":
    case "?":
      return "shortcuts";
    default:
      return null;
  }
}
