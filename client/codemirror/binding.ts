// Binds a CollabDocument to a CodeMirror 6 editor: local changes become ops, other members' ops
// become transactions that stay out of the undo history (so undo and redo touch only your own
// edits, remapped over everyone else's), and other members' selections are drawn in their
// colors with their names.

import { Annotation, EditorState, StateEffect, StateField, Transaction, type Extension, type Range } from "@codemirror/state";
import { Decoration, EditorView, ViewPlugin, WidgetType, type DecorationSet, type ViewUpdate } from "@codemirror/view";
import type { CollabDocument, Member } from "@collabserver/client";
import { textColorOn } from "./colors.js";
import { HeldEdits } from "./held.js";

/** Marks a transaction that applies someone else's change (or a resync) rather than a local edit. */
export const remoteChange = Annotation.define<boolean>();

/** How long a lone half of a surrogate pair may wait in the editor for its other half. */
const repairDelayMs = 300;

const setMembers = StateEffect.define<readonly Member[]>();

class CaretWidget extends WidgetType {
  constructor(
    readonly name: string,
    readonly color: string,
    readonly clientId: string,
  ) {
    super();
  }

  override eq(other: CaretWidget): boolean {
    return other.name === this.name && other.color === this.color && other.clientId === this.clientId;
  }

  toDOM(): HTMLElement {
    const caret = document.createElement("span");
    caret.className = "cm-remote-caret";
    caret.style.borderColor = this.color;
    caret.dataset.clientId = this.clientId;
    caret.setAttribute("aria-hidden", "true");
    const label = document.createElement("span");
    label.className = "cm-remote-name";
    label.textContent = this.name;
    label.style.background = this.color;
    label.style.color = textColorOn(this.color);
    caret.append(label);
    return caret;
  }

  override ignoreEvent(): boolean {
    return true;
  }
}

function decorate(members: readonly Member[], length: number): DecorationSet {
  const ranges: Range<Decoration>[] = [];
  for (const m of members) {
    const color = /^#[0-9a-f]{6}$/i.test(m.user.color) ? m.user.color : "#888888";
    const name = m.user.name || "Someone";
    for (const r of m.selection) {
      const anchor = Math.min(Math.max(r.anchor, 0), length);
      const head = Math.min(Math.max(r.head, 0), length);
      const from = Math.min(anchor, head);
      const to = Math.max(anchor, head);
      if (from < to) {
        ranges.push(Decoration.mark({ class: "cm-remote-selection", attributes: { style: `background-color: ${color}33` } }).range(from, to));
      }
      ranges.push(Decoration.widget({ widget: new CaretWidget(name, color, m.clientId), side: head >= anchor ? 1 : -1 }).range(head));
    }
  }
  return Decoration.set(ranges, true);
}

/** The other members' selections, mapped through every change and replaced on each presence update. */
const remoteSelections = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(value, tr) {
    for (const e of tr.effects) if (e.is(setMembers)) return decorate(e.value, tr.newDoc.length);
    return tr.docChanged ? value.map(tr.changes) : value;
  },
  provide: (f) => EditorView.decorations.from(f),
});

/**
 * The extension that keeps `view` and `doc` in step. The editor must be created with
 * `doc.text` as its content; the document's text and the editor's then stay equal, position for
 * position (hence the "\n"-only line separator: a "\r" is kept as a character, not folded into
 * a line break).
 */
export function collab(doc: CollabDocument): Extension {
  const plugin = ViewPlugin.define((view) => {
    let presenceQueued = false;
    const showMembers = () => {
      if (presenceQueued) return;
      presenceQueued = true;
      // Presence can change in the middle of an editor update (a local edit moves the others'
      // cursors); dispatch once that update is over.
      queueMicrotask(() => {
        presenceQueued = false;
        view.dispatch({ effects: setMembers.of(doc.members) });
      });
    };
    // Local changes reach the document through `edits`, which holds back those that leave half
    // of a surrogate pair in the editor until the other half arrives (held.ts).
    const edits = new HeldEdits(doc);
    let repairTimer: ReturnType<typeof setTimeout> | undefined;
    const repair = () => {
      repairTimer = undefined;
      const lone = edits.repairs(view.state.doc);
      if (lone.length === 0) return;
      // The other half never came: the editor gets U+FFFD in its place, and the edit is sent.
      view.dispatch({
        changes: lone.map((p) => ({ from: p, to: p + 1, insert: "\ufffd" })),
        annotations: Transaction.addToHistory.of(false),
      });
    };
    const offChange = doc.on("change", ({ op }) => {
      view.dispatch({
        changes: edits.remote(op, view.state.doc.length),
        annotations: [remoteChange.of(true), Transaction.addToHistory.of(false)],
      });
    });
    const offPresence = doc.on("presence", showMembers);
    showMembers();
    doc.setSelection(view.state.selection.ranges.map((r) => ({ anchor: r.anchor, head: r.head })));
    return {
      update(update: ViewUpdate) {
        for (const tr of update.transactions) {
          if (tr.docChanged && !tr.annotation(remoteChange)) edits.local(tr.changes, tr.newDoc);
        }
        if (edits.holding && repairTimer === undefined) repairTimer = setTimeout(repair, repairDelayMs);
        // Only this member's own moves are news: the others map its cursor through their edits themselves.
        const moved = update.transactions.some((tr) => tr.selection !== undefined || (tr.docChanged && !tr.annotation(remoteChange)));
        // While edits are held, the editor's positions are not the document's: wait for them.
        if (moved && !edits.holding) {
          doc.setSelection(update.state.selection.ranges.map((r) => ({ anchor: r.anchor, head: r.head })));
        }
      },
      destroy() {
        clearTimeout(repairTimer);
        offChange();
        offPresence();
      },
    };
  });
  return [EditorState.lineSeparator.of("\n"), remoteSelections, plugin];
}
