// The editor page, /d/{docId}: a CodeMirror 6 editor on one shared document, with the others'
// cursors, who is here, your name and color, and the state of the connection. A rich-text
// document gets the Quill editor of rich.ts instead, on the same page (`openDocument`).

import "@collabserver/codemirror/style.css";
import "./styles.css";
import { closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import {
  bracketMatching,
  defaultHighlightStyle,
  foldKeymap,
  indentOnInput,
  syntaxHighlighting,
} from "@codemirror/language";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import { Compartment, EditorState, type Extension } from "@codemirror/state";
import {
  EditorView,
  crosshairCursor,
  drawSelection,
  dropCursor,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
  rectangularSelection,
} from "@codemirror/view";
import {
  CollabClient,
  CollabError,
  RichTextDocument,
  type Delta,
  type AnyUnsentEdits,
  type CollabDocument,
  type ConnectionStatus,
  type Member,
  type RichTextUnsentEdits,
  type UnsentEdits,
  type UserInfo,
} from "@collabserver/client";
import { collab } from "@collabserver/codemirror";
import { accessToken, avatar, byId, colorFor, formatLength, setUpIdentity, timeAgo, tokenClaims, type Identity } from "./common.js";
import { setUpHistory, type HistoryPanel } from "./history.js";
import { languageFor } from "./languages.js";
import { docIdPattern, followRenames, mayAdminister, setUpManage } from "./manage.js";
import { isMarkdown, setUpPreview, type Preview } from "./preview.js";
import { highlightStyle } from "./theme.js";
import type { RichCollab } from "./rich.js";
import { canKeepUnsent, claim, forget, keepUnsent, type Claim } from "./unsent.js";

declare global {
  interface Window {
    /** The page's client, document and editor, for debugging and for the browser tests. */
    collab?: { client: CollabClient; doc: CollabDocument; view: EditorView; history: HistoryPanel; preview?: Preview } | (RichCollab & { history: HistoryPanel });
  }
}

const wrapKey = "collab.wrap";

const statusEl = byId("status");
const statusText = byId("status-text");
const retryButton = byId<HTMLButtonElement>("retry");
const peopleEl = byId<HTMLUListElement>("people");
const editorEl = byId("editor");
const bannerEl = byId("banner");
const bannerText = byId("banner-text");
const cursorEl = byId("cursor-pos");
const sizeEl = byId("doc-size");
const savedEl = byId("saved");
const langEl = byId("lang");
const wrapButton = byId<HTMLButtonElement>("wrap");
const copyButton = byId<HTMLButtonElement>("copy-link");

const docId = decodeURIComponent(location.pathname.replace(/^\/d\//, "").replace(/\/$/, ""));
let me: UserInfo;
let identity: Identity;
let client: CollabClient | undefined;

/** What the banner shows: a connection problem is taken down once connected again. */
let bannerAbout: "connection" | "other" | undefined;

function showBanner(message: string, kind: "error" | "info", about: "connection" | "other" = "other"): void {
  bannerText.textContent = message;
  bannerEl.className = `banner ${kind}`;
  bannerEl.dataset.about = about;
  bannerEl.hidden = false;
  bannerAbout = about;
}

function hideConnectionBanner(): void {
  if (bannerAbout !== "connection") return;
  bannerEl.hidden = true;
  bannerAbout = undefined;
}

/**
 * Why the page is not connected, in words, with what to do. `token` is the page's token (from
 * its link), if it has one: it tells a missing sign-in from an expired or refused one.
 */
function connectionProblem(error: CollabError, token: string | undefined): string {
  switch (error.reason) {
    case "unauthorized": {
      if (!token) return "You are not signed in: this server needs a token. Open the document with a link that carries one (…/d/name#token=…).";
      const expiresAt = tokenClaims(token)?.expiresAt;
      if (expiresAt !== undefined && expiresAt <= Date.now()) return "Your sign-in has expired: get a new link (or token) and open the document with it.";
      return "Your sign-in was not accepted by the server: get a new link (or token) and open the document with it.";
    }
    case "forbidden":
      return "You don't have access to this document: ask its owner for a link that grants it.";
    case "origin":
      return `This page's address (origin ${location.origin}) is not allowed by the server: ask the operator to add it to Collab:AllowedOrigins.`;
    case "network":
      return "The server cannot be reached: retrying…";
    case "unavailable":
      return "The server is unavailable: retrying…";
    case "invalid":
      return `The server refused to open this document: ${error.message}`;
  }
}

byId("banner-close").addEventListener("click", () => {
  bannerEl.hidden = true;
});

function fail(message: string): void {
  editorEl.setAttribute("aria-busy", "false");
  editorEl.replaceChildren(
    Object.assign(document.createElement("div"), { className: "placeholder", textContent: message }),
  );
}

function plural(n: number, one: string, many: string): string {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

/** Whether the unsent edits, as they are now, are kept in this browser (unsent.ts). */
let kept = false;

/** Connection state and unsent edits, in the header pill and the status bar. */
function renderStatus(status: ConnectionStatus, pending: number): void {
  const unsent = pending > 0 ? ` — ${plural(pending, "unsent edit", "unsent edits")}` : "";
  const text: Record<ConnectionStatus, string> = {
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: `Reconnecting…${unsent}`,
    offline: `Offline${unsent}`,
    failed: `Not connected${unsent}`,
    closed: "Closed",
  };
  statusEl.dataset.state = status;
  statusText.textContent = text[status];
  retryButton.hidden = status !== "offline";
  const connected = status === "connected";
  savedEl.textContent =
    pending === 0
      ? "All changes saved"
      : connected
        ? "Saving…"
        : `${plural(pending, "edit not yet sent", "edits not yet sent")}${kept ? ", kept in this browser" : ""}`;
  savedEl.dataset.pending = String(pending);
}

/** The other members, each with a button that scrolls to their cursor; you are the button beside the list. */
let peopleKey: string | undefined;

function renderPeople(members: readonly Member[]): void {
  const others = [...members].sort((a, b) => a.user.name.localeCompare(b.user.name) || a.clientId.localeCompare(b.clientId));
  // Presence arrives with every keystroke; rebuild only when who is here changes, so a focused button stays focused.
  const key = JSON.stringify(others.map((m) => [m.clientId, m.user.name, m.user.color, m.selection.length > 0]));
  if (key === peopleKey) return;
  peopleKey = key;
  const items = others.map((m) => {
    const user = { name: m.user.name || "Someone", color: m.user.color || "#888888" };
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "person";
    button.title = m.selection.length > 0 ? `Go to ${user.name}'s cursor` : `${user.name} has no cursor in the text`;
    button.append(avatar(user), Object.assign(document.createElement("span"), { className: "person-name", textContent: user.name }));
    button.addEventListener("click", () => jumpTo(m.clientId));
    li.append(button);
    return li;
  });
  if (items.length === 0) {
    const li = document.createElement("li");
    li.className = "alone";
    li.textContent = "Only you here";
    items.push(li);
  }
  peopleEl.replaceChildren(...items);
  peopleEl.setAttribute("aria-label", others.length === 0 ? "Only you are here" : `${plural(others.length, "other person", "other people")} here`);
}

let view: EditorView | undefined;

function jumpTo(clientId: string): void {
  const member = window.collab?.doc.members.find((m) => m.clientId === clientId);
  if (window.collab && "quill" in window.collab) {
    const { quill } = window.collab;
    if (member && member.selection.length > 0) quill.setSelection(Math.min(member.selection[0].head, quill.getLength() - 1), 0, "user");
    return;
  }
  if (!view || !member || member.selection.length === 0) return;
  const head = Math.min(member.selection[0].head, view.state.doc.length);
  view.dispatch({ effects: EditorView.scrollIntoView(head, { y: "center" }) });
}

function renderCursor(state: EditorState): void {
  const head = state.selection.main.head;
  const line = state.doc.lineAt(head);
  cursorEl.textContent = `Ln ${line.number}, Col ${head - line.from + 1}`;
  sizeEl.textContent = `${plural(state.doc.lines, "line", "lines")}, ${formatLength(state.doc.length)}`;
}

function setUpCopyLink(): void {
  copyButton.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(location.href);
      copyButton.textContent = "Link copied";
    } catch {
      copyButton.textContent = "Copy failed";
    }
    setTimeout(() => (copyButton.textContent = "Copy link"), 1500);
  });
}

async function main(): Promise<void> {
  identity = setUpIdentity((user) => {
    me = user;
    client?.setUser(user);
  });
  me = identity.current;
  byId("doc-title").textContent = docId;
  document.title = `${docId} · Collab`;
  setUpCopyLink();
  renderPeople([]);
  if (!docIdPattern.test(docId)) {
    renderStatus("closed", 0);
    statusText.textContent = "Not opened";
    fail(`“${docId}” is not a valid document name: use 1 to 128 letters, digits, dots, dashes or underscores, not starting with a dot.`);
    return;
  }

  const token = accessToken();
  // The clientId: that of unsent edits a closed or crashed page left for this document (taken
  // over with them), or a new one.
  const claimed = await claim(docId);
  client = new CollabClient({ serverUrl: location.origin, user: me, clientId: claimed.clientId, accessTokenFactory: token ? () => token : undefined });
  let pending = 0;
  let status: ConnectionStatus = client.status;
  const renderConnection = (error: CollabError | undefined) => {
    // Offline with a reason, or refused for good: say why, and what to do.
    if ((status === "offline" || status === "failed") && error) showBanner(connectionProblem(error, token), "error", "connection");
    else if (status === "connected") hideConnectionBanner();
  };
  const offStatus = client.on("status", (e) => {
    status = e.status;
    renderStatus(status, pending);
    renderConnection(e.error);
  });
  retryButton.addEventListener("click", () => client?.reconnectNow());
  renderStatus(status, 0);

  let opened: Opened;
  try {
    opened = await openDocument(client, claimed);
  } catch (error) {
    offStatus();
    void client.close();
    openFailed(error, token);
    return;
  }
  // The type is the document's now: the address need not ask for it.
  if (location.search) window.history.replaceState(null, "", location.pathname + location.hash);

  if (opened.doc instanceof RichTextDocument) {
    for (const id of ["wrap", "lang", "preview-toggle"]) byId(id).hidden = true;
    byId("editor-help").textContent = "Ctrl+Z undoes only your edits";
    const { openRichText } = await import("./rich.js");
    const rich = openRichText({
      doc: opened.doc,
      restored: opened.restored !== undefined,
      client,
      editorEl,
      sizeEl,
      cursorEl,
      showBanner: (message, kind) => showBanner(message, kind),
      setPending(edits, isKept, keepFailed) {
        pending = edits;
        kept = isKept;
        keepsNone = keepFailed;
        renderStatus(status, pending);
      },
      opened: (doc) => shareDocument(doc),
    });
    // Past versions are shown as plain text, as REST reads them (PROTOCOL §7); a restore brings back the formatting too.
    const richHistory = setUpHistory({
      docId,
      doc: rich.doc,
      live: { text: () => plainText(rich.doc.contents), shown: () => rich.quill.focus() },
      clientId: client.clientId,
      me: () => me,
      extensions: () => EditorView.lineWrapping,
      mayRestore: mayAdminister(token),
    });
    window.collab = { ...rich, history: richHistory };
    return;
  }
  const doc = opened.doc;
  const restored = opened.restored as UnsentEdits | undefined;

  const language = languageFor(docId);
  const languageSlot = new Compartment();
  const wrapSlot = new Compartment();
  const editableSlot = new Compartment();
  const storedWrap = localStorage.getItem(wrapKey);
  let wrap = storedWrap === null ? language.wrap : storedWrap === "true";

  const scheduleRender = (() => {
    let queued = false;
    return () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => {
        queued = false;
        if (view) renderCursor(view.state);
      });
    };
  })();

  const preview = isMarkdown(docId) ? setUpPreview(() => view) : undefined;

  editorEl.replaceChildren();
  editorEl.setAttribute("aria-busy", "false");
  view = new EditorView({
    parent: editorEl,
    state: EditorState.create({
      doc: doc.text,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        history(),
        drawSelection(),
        dropCursor(),
        EditorState.allowMultipleSelections.of(true),
        indentOnInput(),
        syntaxHighlighting(highlightStyle),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        bracketMatching(),
        closeBrackets(),
        rectangularSelection(),
        crosshairCursor(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...foldKeymap, indentWithTab]),
        languageSlot.of([]),
        wrapSlot.of(wrap ? EditorView.lineWrapping : []),
        editableSlot.of(EditorState.readOnly.of(doc.readOnly)),
        EditorView.contentAttributes.of({ "aria-label": `Text of ${docId}`, "aria-describedby": "editor-help" }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged || update.selectionSet) scheduleRender();
          if (update.docChanged) preview?.changed();
        }),
        collab(doc),
      ],
    }),
  });
  let languageExt: Extension = [];
  const historyPanel = setUpHistory({
    docId,
    doc,
    live: { text: () => view?.state.doc.toString() ?? "", shown: () => view?.requestMeasure() },
    clientId: client.clientId,
    me: () => me,
    extensions: () => [languageExt, wrap ? EditorView.lineWrapping : [], syntaxHighlighting(highlightStyle), syntaxHighlighting(defaultHighlightStyle, { fallback: true })],
    // Restoring needs collab:admin with access control on (PROTOCOL §7, §8). The page reads its
    // own token's grants; without a token the server is open (a server that needs one would have
    // refused the connection), and a token it cannot read is left to the server to judge.
    mayRestore: mayAdminister(token),
  });
  window.collab = { client, doc, view, history: historyPanel, preview };
  preview?.changed();
  // Deleting and renaming need collab:admin too (PROTOCOL §7): offered on the same terms as restoring.
  if (mayAdminister(token)) setUpManage({ docId, doc, client, report: (message) => showBanner(message, "error") });
  // Renamed or deleted by someone else: say so; a rename opens the new id (manage.ts).
  followRenames({
    docId,
    doc,
    client,
    view,
    show: showBanner,
    carriedAway: () => {
      leaving = true;
      return forget(docId, doc.clientId);
    },
  });
  renderCursor(view.state);
  view.focus();

  language.load().then(
    (ext) => {
      languageExt = ext;
      view?.dispatch({ effects: languageSlot.reconfigure(ext) });
    },
    () => undefined,
  );
  langEl.textContent = language.name;

  const renderWrap = () => {
    wrapButton.setAttribute("aria-pressed", String(wrap));
    wrapButton.textContent = wrap ? "Wrap: on" : "Wrap: off";
  };
  renderWrap();
  wrapButton.addEventListener("click", () => {
    wrap = !wrap;
    localStorage.setItem(wrapKey, String(wrap));
    view?.dispatch({ effects: wrapSlot.reconfigure(wrap ? EditorView.lineWrapping : []) });
    renderWrap();
  });

  doc.on("pending", (e) => {
    pending = e.pendingEdits;
    renderStatus(status, pending);
  });
  pending = doc.pendingEdits;
  renderStatus(status, pending);
  // Unsent edits are kept in this browser (IndexedDB) as they change, so a crash loses none.
  keepsNone = !canKeepUnsent();
  keepUnsent(doc, {
    kept(edits) {
      kept = edits > 0;
      renderStatus(status, pending);
    },
    failed(error) {
      keepsNone = true;
      kept = false;
      renderStatus(status, pending);
      console.warn("[collab] unsent edits could not be kept in this browser:", error);
    },
  });
  if (restored) {
    const edits = doc.pendingEdits;
    showBanner(
      `Restored ${plural(edits, "unsent edit", "unsent edits")} this browser kept when the page was last closed (${timeAgo(new Date(restored.savedAt))}): ${edits === 1 ? "it is" : "they are"} sent as soon as the server can be reached.`,
      "info",
    );
  }
  shareDocument(doc);
  doc.on("joined", (e) => {
    view?.dispatch({ effects: editableSlot.reconfigure(EditorState.readOnly.of(e.readOnly)) });
  });
}

/** A rich-text document's text: its inserts' strings, an embed nothing. */
function plainText(contents: Delta): string {
  return contents.ops.map((op) => (typeof op.insert === "string" ? op.insert : "")).join("");
}

/** Whether unsent edits cannot be kept in this browser (no IndexedDB, or a write failed). */
let keepsNone = false;
/** Set when a rename takes the page, with its unconfirmed edits, to the new id: nothing to warn about then. */
let leaving = false;

/** Refused for good: retrying cannot help, so the page stops and says why. */
function openFailed(error: unknown, token: string | undefined): void {
  renderStatus("failed", 0);
  if (error instanceof CollabError) {
    const problem = connectionProblem(error, token);
    showBanner(problem, "error", "connection");
    fail(problem);
  } else {
    fail(`This document could not be opened: ${error instanceof Error ? error.message.replace(/^.*HubException: /, "") : String(error)}`);
  }
}

/** The document the page opened, and the unsent edits this browser kept for it, if it took them over. */
interface Opened {
  readonly doc: CollabDocument | RichTextDocument;
  readonly restored: AnyUnsentEdits | undefined;
}

/**
 * Opens the document as the type it has. Unsent edits kept for it say which; otherwise the address
 * may ask for one (`?type=rich-text`, from the home page), else text. A document that exists as
 * the other type is refused (`invalid_op`, "… is of type rich-text, not text …", PROTOCOL §3),
 * and then opened as that type: a join, unlike asking REST, makes no failed request for a new
 * document.
 */
async function openDocument(client: CollabClient, claimed: Claim): Promise<Opened> {
  let restored = claimed.unsent;
  const asked = restored ? (restored.type ?? "text") : (new URLSearchParams(location.search).get("type") ?? "text");
  const open = (type: string, unsent: AnyUnsentEdits | undefined): Promise<CollabDocument | RichTextDocument> =>
    type === "rich-text"
      ? client.open(docId, { type: "rich-text", unsent: unsent as RichTextUnsentEdits | undefined })
      : client.open(docId, { unsent: unsent as UnsentEdits | undefined });
  try {
    try {
      return { doc: await open(asked, restored), restored };
    } catch (error) {
      if (!(error instanceof RangeError) || !restored) throw error;
      // Damaged or not this document's: nothing can be done with it.
      console.warn(`[collab] the unsent edits kept for ${docId} were dropped: ${error.message}`);
      void forget(docId, restored.clientId);
      restored = undefined;
      return { doc: await open(asked, undefined), restored };
    }
  } catch (error) {
    const actual = error instanceof CollabError && error.code === "invalid_op" ? /\bis (?:of type )?(rich-text|text), not /.exec(error.message)?.[1] : undefined;
    if (actual === undefined || actual === asked) throw error;
    return { doc: await open(actual, undefined), restored: undefined };
  }
}

/** What both editors do with an open document: who is here, colors, read-only, refused edits, leaving with unsent edits. */
function shareDocument(doc: CollabDocument | RichTextDocument): void {
  // Colors: differ from the other members' while there are colors to give (common.ts, colorFor).
  // Joining, the page yields at once to those already here. A clash seen later is settled a second
  // on, if it is still there: a newcomer that saw this page has moved by then, and of two that
  // joined at once (neither saw the other) the greater clientId yields.
  const colorNow = (joining: boolean) =>
    colorFor(identity.stored, identity.current.color, client?.clientId ?? "", doc.members.map((m) => ({ clientId: m.clientId, color: m.user.color })), joining);
  const useColor = (color: string) => {
    if (color === identity.current.color) return;
    identity.showColor(color);
    me = identity.current;
    client?.setUser(me);
  };
  let clashCheck: ReturnType<typeof setTimeout> | undefined;
  const fitColor = () => {
    if (clashCheck !== undefined || colorNow(false) === identity.current.color) return;
    clashCheck = setTimeout(() => {
      clashCheck = undefined;
      useColor(colorNow(false));
    }, 1000);
  };
  useColor(colorNow(true));
  doc.on("presence", (e) => {
    renderPeople(e.members);
    fitColor();
  });
  doc.on("joined", (e) => {
    if (e.readOnly) showBanner("You can read this document but not edit it.", "info");
  });
  doc.on("error", (e) => {
    const why = e.code === "forbidden" ? "you may not edit this document" : e.message.replace(/^.*HubException: /, "");
    showBanner(`Your latest edits could not be saved and were undone: ${why}.`, "error");
  });
  renderPeople(doc.members);
  if (doc.readOnly) showBanner("You can read this document but not edit it.", "info");

  // Unsent edits kept in this browser are sent when the document is opened again; others would be lost.
  window.addEventListener("beforeunload", (event) => {
    if (doc.pendingEdits > 0 && (keepsNone || !kept) && !leaving) event.preventDefault();
  });
}

void main();
