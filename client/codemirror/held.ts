// Local editor changes on their way to the CollabDocument, held back while they leave a lone
// surrogate in the editor. A browser can put half of a surrogate pair into the editor
// for a moment: some input methods deliver an emoji as two input events, one per half, and a
// programmatic change can cut a pair. No op may carry a lone surrogate (PROTOCOL §1: the
// server refuses it, and `applyLocal` throws), and throwing inside CodeMirror's update would
// crash the binding's plugin, so such changes wait here, mapped over remote changes like a
// pending op, until the text around them is well-formed again (usually the very next input
// event completes the pair). If that does not happen soon, `repairs` says which code units to
// replace with U+FFFD, and the repaired edit is sent.

import { ChangeSet, type ChangeSpec, type Text } from "@codemirror/state";
import { ot, type TextOperation } from "@collabserver/client";

/** The edit a transaction's changes make, as an op. */
export function changesToOp(changes: ChangeSet): TextOperation {
  const b = new ot.Builder();
  let pos = 0;
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    b.retain(fromA - pos).insert(inserted.toString()).delete(toA - fromA);
    pos = toA;
  });
  return b.build();
}

/** An op as CodeMirror changes (positions in the document before it). */
export function opToChanges(op: TextOperation): ChangeSpec[] {
  const specs: ChangeSpec[] = [];
  let pos = 0;
  for (const c of op) {
    if (typeof c === "string") {
      specs.push({ from: pos, insert: c });
    } else if (c > 0) {
      pos += c;
    } else {
      specs.push({ from: pos, to: pos - c });
      pos -= c;
    }
  }
  return specs;
}

/**
 * The positions in `text` (the document after `changes`) of lone surrogates in or next to what
 * `changes` changed. The rest of the text is assumed well-formed.
 */
export function loneSurrogates(text: Text, changes: ChangeSet): number[] {
  const found: number[] = [];
  changes.iterChangedRanges((_fromA, _toA, fromB, toB) => {
    const from = Math.max(0, fromB - 1);
    const to = Math.min(text.length, toB + 1);
    // One more code unit each side, to see the other half of a pair at the edges.
    const start = Math.max(0, from - 1);
    const s = text.sliceString(start, Math.min(text.length, to + 1));
    for (let p = from; p < to; p++) {
      const code = s.charCodeAt(p - start);
      const lone = ot.isHighSurrogate(code) ? !ot.isLowSurrogate(s.charCodeAt(p - start + 1)) : ot.isLowSurrogate(code) && !ot.isHighSurrogate(s.charCodeAt(p - start - 1));
      if (lone && found[found.length - 1] !== p) found.push(p);
    }
  }, true);
  return found;
}

/** What the binding does with local changes: gives them to the document, or holds them back. */
export class HeldEdits {
  /** Changes the editor has and the document does not, or undefined: editor = document + held. */
  private held: ChangeSet | undefined;

  constructor(private readonly doc: { applyLocal(op: TextOperation): void }) {}

  /** Whether local changes are being held back. */
  get holding(): boolean {
    return this.held !== undefined;
  }

  /**
   * A local transaction's `changes`, after which the editor's text is `text`. They go to the
   * document, with any held before, unless the text around them has a lone surrogate; then they
   * are held, and the positions of those lone surrogates are returned (empty when sent).
   */
  local(changes: ChangeSet, text: Text): number[] {
    const all = this.held ? this.held.compose(changes) : changes;
    const lone = loneSurrogates(text, all);
    if (lone.length > 0) {
      this.held = all;
      return lone;
    }
    this.held = undefined;
    this.doc.applyLocal(changesToOp(all));
    return [];
  }

  /**
   * The positions of the lone surrogates the held changes still leave in `text` (the editor's
   * text), to be replaced with U+FFFD when the other half did not come.
   */
  repairs(text: Text): number[] {
    return this.held ? loneSurrogates(text, this.held) : [];
  }

  /**
   * A remote op (on the document's text): the changes to make in the editor, which has the held
   * changes too. Held changes win ties, as a client's pending op does (PROTOCOL §1).
   */
  remote(op: TextOperation, editorLength: number): ChangeSet {
    const held = this.held;
    const length = held ? held.length : editorLength;
    const changes = ChangeSet.of(opToChanges(op), length);
    if (!held) return changes;
    this.held = held.map(changes, true);
    return changes.map(held);
  }
}
