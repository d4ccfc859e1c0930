// The history panel of the editor page: who changed the document when (GET …/history, newest
// first, paged by its Link header), a slider over every version, the document as it was at the
// chosen version in a read-only editor with what changed since highlighted, and "Restore this
// version" (POST …/restore), which reaches everyone, this page too, as an ordinary op.

import { Compartment, EditorState, RangeSetBuilder, type Extension } from "@codemirror/state";
import { Decoration, EditorView, WidgetType, lineNumbers, type DecorationSet } from "@codemirror/view";
import type { CollabDocument, RichTextDocument, UserInfo } from "@collabserver/client";
import { authHeaders, avatar, byId, timeAgo } from "./common.js";
import { changesSince } from "./pastdiff.js";

/** One entry of GET /api/docs/{id}/history (PROTOCOL §7). */
interface HistoryEntry {
  readonly version: number;
  readonly fromVersion: number;
  readonly at: string;
  readonly clientId: string;
  /** Who the server recorded: a member's name, or what a server write was (absent for old ops). */
  readonly author?: { readonly kind: "member" | "edit" | "restore" | string; readonly name?: string };
}

export interface HistoryOptions {
  readonly docId: string;
  readonly doc: CollabDocument | RichTextDocument;
  /** The live editor: its current text (rich text's as plain text, as REST reads it), and what to do when it is shown again. */
  readonly live: LiveEditor;
  /** This page's own client id, and its user's name now. */
  readonly clientId: string;
  readonly me: () => UserInfo;
  /** Extensions the old text is shown with besides the read-only ones (language, wrapping). */
  readonly extensions: () => Extension;
  /**
   * Whether this page may restore (`POST …/restore` needs `collab:admin` when access control is
   * on): when not, the button is not offered and a note says who can. The server still decides.
   */
  readonly mayRestore: boolean;
}

/** What the panel needs of the live editor, CodeMirror's or Quill's. */
export interface LiveEditor {
  text(): string;
  shown(): void;
}

export interface HistoryPanel {
  /** The read-only view of the version shown, while one is. */
  readonly view: EditorView | undefined;
  /** The version shown, while one is. */
  readonly version: number | undefined;
}

/** Text inserted since, drawn where it now stands in the old text. */
class AddedWidget extends WidgetType {
  constructor(readonly text: string) {
    super();
  }

  override eq(other: AddedWidget): boolean {
    return other.text === this.text;
  }

  toDOM(): HTMLElement {
    const el = document.createElement("span");
    el.className = "cm-past-added";
    el.textContent = this.text.length > 2000 ? `${this.text.slice(0, 2000)}…` : this.text;
    el.title = "Added since this version";
    return el;
  }
}

function highlight(old: string, current: string): DecorationSet {
  const builder = new RangeSetBuilder<Decoration>();
  const removed = Decoration.mark({ class: "cm-past-removed", attributes: { title: "Removed since this version" } });
  for (const c of changesSince(old, current)) {
    if (c.to > c.from) builder.add(c.from, c.to, removed);
    if (c.inserted) builder.add(c.to, c.to, Decoration.widget({ widget: new AddedWidget(c.inserted), side: 1 }));
  }
  return builder.finish();
}

async function problemText(response: Response): Promise<string> {
  try {
    const problem = (await response.json()) as { detail?: string; title?: string; type?: string };
    const text = problem.detail ?? problem.title ?? problem.type;
    if (text) return text;
  } catch {
    // Not a problem document.
  }
  return `${response.status} ${response.statusText}`.trim();
}

function nextLink(response: Response): string | undefined {
  const link = response.headers.get("link");
  const match = link && /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  return match ? match[1] : undefined;
}

export function setUpHistory(options: HistoryOptions): HistoryPanel {
  const { docId, doc, live } = options;
  const toggle = byId<HTMLButtonElement>("history-toggle");
  const panel = byId("history-panel");
  const close = byId<HTMLButtonElement>("history-close");
  const slider = byId<HTMLInputElement>("history-slider");
  const sliderValue = byId("history-slider-value");
  const list = byId<HTMLOListElement>("history-list");
  const more = byId<HTMLButtonElement>("history-more");
  const restore = byId<HTMLButtonElement>("history-restore");
  const restoreNote = byId("history-restore-note");
  const confirmDialog = byId<HTMLDialogElement>("restore-dialog");
  const confirmText = byId("restore-dialog-text");
  const message = byId("history-message");
  const error = byId("history-error");
  const editorEl = byId("editor");
  const pastEl = byId("past");
  const pastTitle = byId("past-title");
  const pastBody = byId("past-editor");

  const api = `/api/docs/${encodeURIComponent(docId)}`;
  let open = false;
  let entries: HistoryEntry[] = [];
  let next: string | undefined;
  let shown: { version: number; text: string; at: string | undefined } | undefined;
  /** The slider was moved and its version is not shown yet: it stays where the person put it. */
  let sliding = false;
  let pastView: EditorView | undefined;
  let pastVersion = -1;
  const highlightSlot = new Compartment();
  let request = 0;
  const names = new Map<string, string>();

  const remember = () => {
    for (const m of doc.members) if (m.user.name) names.set(m.clientId, m.user.name);
  };
  remember();
  doc.on("presence", remember);

  function who(entry: HistoryEntry): { name: string; color?: string; server: boolean; you?: boolean } {
    const { clientId, author } = entry;
    if (clientId === "") {
      const by = author?.name ? ` by ${author.name}` : "";
      if (author?.kind === "restore") return { name: `Restored${by}`, server: true };
      if (author?.kind === "edit") return { name: `Replaced through the API${by}`, server: true };
      return { name: "Restore or upload (server)", server: true };
    }
    if (clientId === options.clientId) return { name: options.me().name, color: options.me().color, server: false, you: true };
    const member = doc.members.find((m) => m.clientId === clientId);
    if (member) return { name: member.user.name || author?.name || clientId, color: member.user.color, server: false };
    // Someone who has left: the name the server recorded, else the one last seen here.
    return { name: author?.name ?? names.get(clientId) ?? clientId, server: false };
  }

  function showError(text: string | undefined): void {
    error.textContent = text ?? "";
    error.hidden = !text;
  }

  function renderSlider(): void {
    const current = doc.version;
    slider.max = String(current);
    // The live text is the current version: the slider follows it while no other version is chosen.
    if (!shown && !sliding) slider.value = String(current);
    const value = Number(slider.value);
    sliderValue.textContent = `Version ${value} of ${current}`;
    slider.setAttribute("aria-valuetext", `Version ${value} of ${current}`);
    restore.disabled = !shown || shown.version === current;
  }

  function renderList(): void {
    const focusedVersion = (document.activeElement as HTMLElement | null)?.dataset?.version;
    const items = entries.map((e) => {
      const person = who(e);
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "history-entry";
      button.dataset.version = String(e.version);
      if (person.server) button.classList.add("server");
      const at = new Date(e.at);
      const versions = e.fromVersion === e.version ? `version ${e.version}` : `versions ${e.fromVersion}–${e.version}`;
      const badge = person.color ? avatar({ name: person.name, color: person.color }) : Object.assign(document.createElement("span"), { className: "avatar unknown", textContent: person.server ? "↺" : "?" });
      badge.setAttribute("aria-hidden", "true");
      const text = document.createElement("span");
      text.className = "history-text";
      text.append(
        Object.assign(document.createElement("span"), { className: "history-who", textContent: person.you ? `${person.name} (you)` : person.name }),
        Object.assign(document.createElement("span"), { className: "history-when", textContent: `${timeAgo(at)} · ${versions}` }),
      );
      button.title = at.toLocaleString();
      button.append(badge, text);
      button.setAttribute("aria-current", String(shown?.version === e.version));
      button.addEventListener("click", () => void show(e.version));
      li.append(button);
      return li;
    });
    list.replaceChildren(...items);
    list.setAttribute("aria-busy", "false");
    more.hidden = !next;
    if (focusedVersion) list.querySelector<HTMLElement>(`[data-version="${focusedVersion}"]`)?.focus();
  }

  /** Reads the newest page and puts it before the entries already listed (the newest entry may have grown). */
  async function loadNewest(): Promise<void> {
    const response = await fetch(`${api}/history?limit=50`, { headers: authHeaders() });
    if (!response.ok) throw new Error(`The history could not be read: ${await problemText(response)}`);
    const page = (await response.json()) as HistoryEntry[];
    const link = nextLink(response);
    const oldest = page.length > 0 ? page[page.length - 1].fromVersion : 0;
    if (link && entries.some((e) => e.version === oldest - 1)) {
      // The page joins the entries already listed (entries never change once a newer one exists).
      entries = [...page, ...entries.filter((e) => e.version < oldest)];
    } else {
      entries = page;
      next = link;
    }
  }

  async function loadMore(): Promise<void> {
    if (!next) return;
    const response = await fetch(next, { headers: authHeaders() });
    if (!response.ok) throw new Error(`Older history could not be read: ${await problemText(response)}`);
    const page = (await response.json()) as HistoryEntry[];
    const known = new Set(entries.map((e) => e.version));
    entries = [...entries, ...page.filter((e) => !known.has(e.version))];
    next = nextLink(response);
  }

  async function refresh(): Promise<void> {
    try {
      await loadNewest();
      showError(undefined);
    } catch (e) {
      showError(e instanceof Error ? e.message : String(e));
    }
    renderList();
  }

  function renderPast(): void {
    if (!shown) return;
    const current = live.text();
    const decorations = highlight(shown.text, current);
    const same = shown.text === current;
    pastTitle.textContent = same
      ? `Version ${shown.version}: the same text as now. Read-only.`
      : `Version ${shown.version}, read-only: struck out in red is removed since, green is added since.`;
    if (pastView && pastVersion === shown.version) {
      // The same version, the current text moved on: only the highlight changes (the scroll position stays).
      pastView.dispatch({ effects: highlightSlot.reconfigure(EditorView.decorations.of(decorations)) });
      return;
    }
    pastVersion = shown.version;
    const state = EditorState.create({
      doc: shown.text,
      extensions: [
        lineNumbers(),
        EditorState.readOnly.of(true),
        EditorView.editable.of(false),
        highlightSlot.of(EditorView.decorations.of(decorations)),
        EditorView.contentAttributes.of({ tabindex: "0", "aria-label": `Text of ${docId} at version ${shown.version}, read-only`, "aria-readonly": "true" }),
        options.extensions(),
      ],
    });
    if (pastView) pastView.setState(state);
    else pastView = new EditorView({ parent: pastBody, state });
    pastEl.hidden = false;
    editorEl.hidden = true;
  }

  /** Fetches `version` and shows it; a later choice wins over an earlier one still loading. */
  async function show(version: number): Promise<void> {
    const mine = ++request;
    slider.value = String(version);
    message.textContent = `Loading version ${version}…`;
    try {
      const response = await fetch(`${api}?version=${version}`, { headers: authHeaders() });
      if (!response.ok) throw new Error(`Version ${version} could not be read: ${await problemText(response)}`);
      const body = (await response.json()) as { version: number; text: string; at?: string };
      if (mine !== request || !open) return;
      shown = { version: body.version, text: body.text, at: body.at };
      sliding = false;
      message.textContent = body.at ? `Showing version ${body.version}, from ${timeAgo(new Date(body.at))}.` : `Showing version ${body.version}.`;
      showError(undefined);
      renderPast();
      renderSlider();
      for (const b of list.querySelectorAll<HTMLElement>(".history-entry")) b.setAttribute("aria-current", String(b.dataset.version === String(shown.version)));
    } catch (e) {
      if (mine !== request) return;
      sliding = false;
      message.textContent = "";
      showError(e instanceof Error ? e.message : String(e));
    }
  }

  function showLive(): void {
    shown = undefined;
    sliding = false;
    request++;
    pastView?.destroy();
    pastView = undefined;
    pastVersion = -1;
    pastEl.hidden = true;
    editorEl.hidden = false;
    live.shown();
  }

  function openPanel(): void {
    open = true;
    panel.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
    message.textContent = "";
    showError(undefined);
    // It opens on the live text, which is the current version (the maximum is set first, or the value would be clamped to the old one).
    renderSlider();
    panel.focus();
    list.setAttribute("aria-busy", "true");
    void refresh().then(() => {
      // Still where opening put it: go to the newest entry.
      if (open && document.activeElement === panel) list.querySelector<HTMLElement>(".history-entry")?.focus();
    });
  }

  function closePanel(): void {
    const inside = panel.contains(document.activeElement) || pastEl.contains(document.activeElement);
    open = false;
    panel.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
    showLive();
    if (inside) toggle.focus();
  }

  toggle.addEventListener("click", () => (open ? closePanel() : openPanel()));
  toggle.disabled = false;
  close.addEventListener("click", closePanel);
  for (const el of [panel, pastEl]) {
    el.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && open) {
        event.preventDefault();
        closePanel();
      }
    });
  }

  // Arrow keys move between entries (Tab does too); Enter or Space chooses one.
  list.addEventListener("keydown", (event) => {
    const buttons = [...list.querySelectorAll<HTMLElement>(".history-entry")];
    const at = buttons.indexOf(document.activeElement as HTMLElement);
    if (at < 0) return;
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: buttons.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    buttons[Math.max(0, Math.min(buttons.length - 1, to))].focus();
  });

  let sliderTimer: ReturnType<typeof setTimeout> | undefined;
  slider.addEventListener("input", () => {
    sliding = true;
    renderSlider();
    clearTimeout(sliderTimer);
    sliderTimer = setTimeout(() => void show(Number(slider.value)), 120);
  });

  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      await loadMore();
      showError(undefined);
    } catch (e) {
      showError(e instanceof Error ? e.message : String(e));
    }
    more.disabled = false;
    renderList();
  });

  restore.hidden = !options.mayRestore;
  restoreNote.hidden = options.mayRestore;

  /** Asks first: a restore changes everyone's text. Resolves true for "Restore", false for "Cancel" or Esc. */
  function confirmRestore(version: number, at: string | undefined): Promise<boolean> {
    const when = at ? ` from ${new Date(at).toLocaleString()}` : "";
    confirmText.textContent = `Restore version ${version}${when}? Everyone's text becomes that version; the current text stays in history.`;
    confirmDialog.returnValue = "";
    return new Promise((resolve) => {
      confirmDialog.addEventListener("close", () => resolve(confirmDialog.returnValue === "restore"), { once: true });
      confirmDialog.showModal();
    });
  }

  restore.addEventListener("click", async () => {
    if (!shown || restore.disabled) return;
    const version = shown.version;
    const confirmed = await confirmRestore(version, shown.at);
    restore.focus();
    if (!confirmed || !shown || shown.version !== version) return;
    restore.disabled = true;
    message.textContent = `Restoring version ${version}…`;
    try {
      const response = await fetch(`${api}/restore`, {
        method: "POST",
        headers: { "content-type": "application/json", ...authHeaders() },
        body: JSON.stringify({ version }),
      });
      if (!response.ok) {
        const why = await problemText(response);
        throw new Error(response.status === 403 ? `You may not restore: ${why}` : `Version ${version} could not be restored: ${why}`);
      }
      const body = (await response.json()) as { version: number };
      message.textContent = body.version === version ? `The text already is version ${version}.` : `Restored version ${version} as version ${body.version}.`;
      showError(undefined);
      await refresh();
    } catch (e) {
      message.textContent = "";
      showError(e instanceof Error ? e.message : String(e));
    }
    renderSlider();
  });

  // Live edits keep arriving: the highlight follows the current text, the slider its version,
  // and the list gains the newest entries (once the edits pause).
  let frame = 0;
  let listTimer: ReturnType<typeof setTimeout> | undefined;
  const refreshSoon = () => {
    clearTimeout(listTimer);
    listTimer = setTimeout(() => void (open && refresh()), 1000);
  };
  doc.on("change", () => {
    if (!open) return;
    if (!frame) {
      frame = requestAnimationFrame(() => {
        frame = 0;
        renderSlider();
        if (shown) renderPast();
      });
    }
    refreshSoon();
  });
  doc.on("pending", (e) => {
    if (!open) return;
    renderSlider();
    if (e.pendingEdits === 0) refreshSoon();
  });

  return {
    get view() {
      return pastView;
    },
    get version() {
      return shown?.version;
    },
  };
}
