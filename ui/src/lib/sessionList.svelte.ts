// The session list's state: the pages loaded, the filter (active or archived), and what the
// row menu does (rename, pin, archive, export, delete with Undo). The backend is the truth:
// after each change the list is reloaded from it (the watcher also reports changes made by
// other processes).

import { save } from "@tauri-apps/plugin-dialog";
import * as api from "./api";
import type { CommandError, ExportFormat, ListFilter, SessionSummary } from "./api";

/** The sidebar shows sessions a page at a time: 10 000 rows at once would freeze the window. */
export const SESSION_PAGE = 200;

/** A deletion that can still be undone. */
export interface PendingUndo {
  id: string;
  title: string;
  /** When Undo stops being offered (ms since the epoch). */
  until: number;
}

/** A short confirmation under the list ("Exported to …"). */
export interface Note {
  text: string;
  until: number;
}

/** A file name for an exported session: its title, with characters file systems refuse replaced. */
export function exportName(title: string, format: ExportFormat): string {
  const base =
    (title || "session")
      .replace(/[\\/:*?"<>|\u0000-\u001f]+/g, " ")
      .replace(/\s+/g, " ")
      .trim()
      .slice(0, 80) || "session";
  return `${base}.${format === "markdown" ? "md" : "json"}`;
}

/** What the rest of the app may want to know of changes made from the list. */
export interface ListEvents {
  renamed?: (id: string, title: string) => void;
  removed?: (id: string) => void;
}

export class SessionList {
  sessions = $state<SessionSummary[]>([]);
  filter = $state<ListFilter>("active");
  more = $state(false);
  undo = $state<PendingUndo | null>(null);
  note = $state<Note | null>(null);

  #wanted = SESSION_PAGE;
  #seq = 0;
  #loadingMore = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #undoTimer: ReturnType<typeof setTimeout> | undefined;
  #noteTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #onerror: (error: CommandError) => void;
  readonly #events: ListEvents;

  constructor(onerror: (error: CommandError) => void, events: ListEvents = {}) {
    this.#onerror = onerror;
    this.#events = events;
  }

  /** Reloads what is listed (debounced: a burst of changes costs one query). */
  refresh(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#reload(), 120);
  }

  async #reload(): Promise<void> {
    const seq = ++this.#seq;
    const wanted = this.#wanted;
    try {
      const rows = await api.listSessions(wanted, 0, this.filter);
      if (seq !== this.#seq) return;
      this.sessions = rows;
      this.more = rows.length >= wanted;
    } catch (error) {
      this.#onerror(error as CommandError);
    }
  }

  /** The next page, when the list is scrolled near its end. */
  async loadMore(): Promise<void> {
    if (this.#loadingMore || !this.more) return;
    this.#loadingMore = true;
    const seq = ++this.#seq;
    try {
      const offset = this.sessions.length;
      const rows = await api.listSessions(SESSION_PAGE, offset, this.filter);
      if (seq !== this.#seq) return;
      const known = new Set(this.sessions.map((s) => s.id));
      this.sessions = this.sessions.concat(rows.filter((s) => !known.has(s.id)));
      this.#wanted = Math.max(SESSION_PAGE, offset + rows.length);
      this.more = rows.length >= SESSION_PAGE;
    } catch (error) {
      this.#onerror(error as CommandError);
    } finally {
      this.#loadingMore = false;
    }
  }

  setFilter(filter: ListFilter): void {
    if (filter === this.filter) return;
    this.filter = filter;
    this.#wanted = SESSION_PAGE;
    this.sessions = [];
    this.more = false;
    void this.#reload();
  }

  async #change(work: () => Promise<void>): Promise<boolean> {
    try {
      await work();
      await this.#reload();
      return true;
    } catch (error) {
      this.#onerror(error as CommandError);
      return false;
    }
  }

  async rename(id: string, title: string): Promise<boolean> {
    const done = await this.#change(() => api.renameSession(id, title));
    if (done) this.#events.renamed?.(id, this.sessions.find((s) => s.id === id)?.title ?? title);
    return done;
  }

  togglePin(session: SessionSummary): Promise<boolean> {
    return this.#change(() => api.pinSession(session.id, !session.pinned));
  }

  toggleArchive(session: SessionSummary): Promise<boolean> {
    return this.#change(() => api.archiveSession(session.id, !session.archived));
  }

  /** Moves the session to the trash and offers Undo for as long as the backend says. */
  async remove(session: SessionSummary): Promise<boolean> {
    let undoMs = 10_000;
    const done = await this.#change(async () => {
      undoMs = (await api.deleteSession(session.id)).undo_ms;
    });
    if (!done) return false;
    this.#events.removed?.(session.id);
    clearTimeout(this.#undoTimer);
    this.undo = { id: session.id, title: session.title, until: Date.now() + undoMs };
    this.#undoTimer = setTimeout(() => (this.undo = null), undoMs);
    return true;
  }

  /** Brings the last deleted session back. */
  async undoRemove(): Promise<void> {
    const pending = this.undo;
    if (!pending) return;
    clearTimeout(this.#undoTimer);
    this.undo = null;
    await this.#change(() => api.restoreSession(pending.id));
  }

  /** Asks where to save (the system's save dialog), then writes the session there. */
  async exportTo(session: SessionSummary, format: ExportFormat): Promise<void> {
    let path: string | null;
    try {
      path = await save({
        title: "Export session",
        defaultPath: exportName(session.title, format),
        filters: [
          format === "markdown" ? { name: "Markdown", extensions: ["md"] } : { name: "JSON", extensions: ["json"] },
        ],
      });
    } catch (error) {
      this.#onerror({ kind: "io", message: `the save dialog could not open: ${String(error)}` });
      return;
    }
    if (!path) return;
    try {
      await api.exportSession(session.id, format, path);
      this.#show(`Exported to ${path}`);
    } catch (error) {
      this.#onerror(error as CommandError);
    }
  }

  #show(text: string): void {
    clearTimeout(this.#noteTimer);
    this.note = { text, until: Date.now() + 5000 };
    this.#noteTimer = setTimeout(() => (this.note = null), 5000);
  }
}
