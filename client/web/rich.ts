// The rich-text editor, /d/{docId} for a document of type `rich-text`: a Quill 2 editor bound to
// a RichTextDocument, with the others' carets and selections (quill-cursors), the page's status
// bar and its unsent edits kept in this browser. doc.ts opens the document, as the type it has,
// and hands over the page's parts it shares with the text editor.
//
// Quill's last newline. Quill always ends its contents with "\n" and formats a line (a header, a
// list) on its newline, so the page keeps the document ending with one: opening a document that
// does not (a new one is empty), it appends "\n" as an ordinary edit everyone sees. Quill never
// lets its user delete that last newline, so the page's own edits keep it there. Two members
// opening an empty document at the same moment both append one, and the document starts with an
// empty line: harmless, and better than a newline no one can format. Should the document lose its
// last newline to a change from elsewhere (a REST write), Quill shows one more newline than the
// document has, and a local change is cut at the document's end (`fitTo`) so it still applies.

import Quill, { type Range } from "quill";
import QuillCursors from "quill-cursors";
import "quill/dist/quill.snow.css";
import { Delta, type CollabClient, type Member, type RichTextDocument } from "@collabserver/client";
import { formatLength } from "./common.js";
import { canKeepUnsent, keepUnsent } from "./unsent.js";

Quill.register("modules/cursors", QuillCursors);

/** What the document page hands the rich-text editor: its parts shared with the text editor. */
export interface RichPage {
  readonly doc: RichTextDocument;
  /** Whether the document was opened with unsent edits this browser kept. */
  readonly restored: boolean;
  readonly client: CollabClient;
  readonly editorEl: HTMLElement;
  readonly sizeEl: HTMLElement;
  readonly cursorEl: HTMLElement;
  /** Shows a message in the banner. */
  showBanner(message: string, kind: "error" | "info"): void;
  /** The number of unsent edits and whether they are kept in this browser, for the status bar. */
  setPending(pending: number, kept: boolean, keepFailed: boolean): void;
  /** The document is open: who is here, colors, read-only, errors (shared with the text editor). */
  opened(doc: RichTextDocument): void;
}

/** The page's rich-text parts, for debugging and for the browser tests. */
export interface RichCollab {
  readonly client: CollabClient;
  readonly doc: RichTextDocument;
  readonly quill: Quill;
}

/** `change` cut where it would run past `length`: inserts are kept, retains and deletes stop there. */
export function fitTo(change: Delta, length: number): Delta {
  const fitted = new Delta();
  let at = 0;
  for (const op of change.ops) {
    if (op.insert !== undefined) {
      fitted.push(op);
      continue;
    }
    const size = op.delete ?? (typeof op.retain === "number" ? op.retain : 1);
    const kept = Math.min(size, length - at);
    if (kept <= 0) break;
    at += kept;
    if (op.delete !== undefined) fitted.delete(kept);
    else fitted.retain(typeof op.retain === "number" ? kept : op.retain!, op.attributes);
  }
  return fitted.chop();
}

const toolbar = [
  [{ header: [1, 2, 3, false] }],
  ["bold", "italic", "underline", "code", "link"],
  [{ list: "ordered" }, { list: "bullet" }, "code-block"],
  ["clean"],
];

/** Shows `page.doc` in a Quill editor in `page.editorEl`, bound to it. */
export function openRichText(page: RichPage): RichCollab {
  const { doc, client } = page;
  if (!doc.readOnly && !endsWithNewline(doc.contents)) doc.insert(doc.length, "\n");

  page.editorEl.replaceChildren();
  page.editorEl.classList.add("rich");
  page.editorEl.setAttribute("aria-busy", "false");
  const host = document.createElement("div");
  page.editorEl.append(host);
  const quill = new Quill(host, {
    theme: "snow",
    readOnly: doc.readOnly,
    placeholder: "Write here…",
    modules: {
      toolbar,
      history: { userOnly: true },
      cursors: { transformOnTextChange: true },
    },
  });
  quill.root.setAttribute("aria-label", `Text of ${doc.docId}`);
  quill.root.setAttribute("aria-describedby", "editor-help");
  quill.setContents(doc.contents, "silent");
  quill.history.clear();

  const renderSize = () => {
    const range = quill.getSelection();
    page.cursorEl.textContent = range ? `Position ${range.index + 1}${range.length > 0 ? `, ${range.length} selected` : ""}` : "";
    page.sizeEl.textContent = formatLength(Math.max(0, quill.getLength() - 1));
  };
  const sendSelection = (range: Range | null) => {
    if (range) doc.setSelection([{ anchor: range.index, head: range.index + range.length }]);
  };

  quill.on("text-change", (change, _old, source) => {
    if (source === "user") {
      doc.applyDelta(fitTo(change, doc.length));
      sendSelection(quill.getSelection());
    }
    renderSize();
  });
  quill.on("selection-change", (range) => {
    sendSelection(range);
    renderSize();
  });
  doc.on("change", ({ op }) => quill.updateContents(op, "api"));

  const cursors = quill.getModule("cursors") as QuillCursors;
  // One cursor per member with a selection, made again when its name or color changes.
  const showMembers = (members: readonly Member[]) => {
    const here = new Set<string>();
    for (const m of members) {
      const range = m.selection[0];
      if (!range) continue;
      here.add(m.clientId);
      const name = m.user.name || "Someone";
      const color = m.user.color || "#888888";
      const cursor = cursors.createCursor(m.clientId, name, color);
      if (cursor.name !== name || cursor.color !== color) {
        cursors.removeCursor(m.clientId);
        cursors.createCursor(m.clientId, name, color);
      }
      cursors.moveCursor(m.clientId, { index: Math.min(range.anchor, range.head), length: Math.abs(range.head - range.anchor) });
    }
    for (const c of cursors.cursors()) if (!here.has(c.id)) cursors.removeCursor(c.id);
  };
  doc.on("presence", (e) => showMembers(e.members));
  showMembers(doc.members);

  let pending = doc.pendingEdits;
  let kept = false;
  let keepFailed = !canKeepUnsent();
  doc.on("pending", (e) => {
    pending = e.pendingEdits;
    page.setPending(pending, kept, keepFailed);
  });
  page.setPending(pending, kept, keepFailed);
  keepUnsent(doc, {
    kept(edits) {
      kept = edits > 0;
      page.setPending(pending, kept, keepFailed);
    },
    failed(error) {
      keepFailed = true;
      kept = false;
      page.setPending(pending, kept, keepFailed);
      console.warn("[collab] unsent edits could not be kept in this browser:", error);
    },
  });
  if (page.restored) {
    const edits = doc.pendingEdits;
    page.showBanner(`Restored ${edits === 1 ? "1 unsent edit" : `${edits} unsent edits`} this browser kept when the page was last closed: sent as soon as the server can be reached.`, "info");
  }
  doc.on("joined", (e) => quill.enable(!e.readOnly));
  page.opened(doc);
  renderSize();
  quill.focus();
  return { client, doc, quill };
}

function endsWithNewline(contents: Delta): boolean {
  const last = contents.ops[contents.ops.length - 1];
  return typeof last?.insert === "string" && last.insert.endsWith("\n");
}
