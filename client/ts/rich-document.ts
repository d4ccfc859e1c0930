// A rich-text document as a client sees it: SyncedDocument (document.ts) over the rich-text type,
// with the contents and the edits as quill-delta Deltas, so that a Quill editor binds to it
// directly.

import { richTextType } from "./doctype.js";
import { SyncedDocument, type DocumentEvents, type DocumentHost } from "./document.js";
import { Delta, parse, type DeltaOp } from "./rich-text.js";
import type { RichTextUnsentEdits } from "./unsent.js";

/** The events of a rich-text document: `change` carries a Delta, `reset`'s `unconfirmed` a Delta on the server's contents. */
export type RichTextEvents = DocumentEvents<Delta, Delta>;

/**
 * A rich-text document, opened with `client.open(docId, { type: "rich-text" })`. Its contents are
 * a quill-delta `Delta` of inserts; make local edits with `applyDelta` (or `insert`, `delete`,
 * `format`); `change` gives every other change as a Delta to apply. Positions and lengths are
 * UTF-16 code units, an embed 1 (Quill's indexes). With a Quill editor:
 *
 * ```ts
 * quill.setContents(doc.contents, "silent");
 * quill.on("text-change", (delta, _old, source) => { if (source === "user") doc.applyDelta(delta); });
 * doc.on("change", ({ op }) => quill.updateContents(op, "api"));
 * ```
 */
export class RichTextDocument extends SyncedDocument<Delta, Delta, Delta> {
  /** @internal Created by CollabClient.open; `unsent` (checked by then) starts it from edits another client instance left unsent. */
  constructor(docId: string, host: DocumentHost, unsent?: RichTextUnsentEdits) {
    super(docId, host, richTextType, (doc) => doc, unsent);
  }

  /** As CollabDocument's: the unconfirmed edits as plain data, the Deltas as arrays of ops. */
  override unsent(): RichTextUnsentEdits | undefined {
    return super.unsent() as RichTextUnsentEdits | undefined;
  }

  /**
   * The local contents: the server's at `version` with the pending local edits applied. A new
   * Delta after every change; never change it. To follow changes, apply each `change` event's op.
   */
  get contents(): Delta {
    return this.engine.text;
  }

  /** The length of the contents: code units, an embed 1. */
  get length(): number {
    return this.engine.text.length();
  }

  /**
   * A local edit: applies `change` (a Delta, or its ops) to the contents and sends it when it
   * can. It must apply to the current `contents`: its retains and deletes must not run past the
   * end, and it must leave no lone surrogate. Otherwise it throws a RangeError, changing and
   * sending nothing: the server would refuse it as `invalid_op`.
   */
  applyDelta(change: Delta | readonly DeltaOp[]): void {
    this.edit(change, (raw) => parse(raw) as Delta);
  }

  /** Inserts `content` (text, or an embed such as `{ image: url }`) at `position`, with `attributes`. */
  insert(position: number, content: string | Record<string, unknown>, attributes?: Record<string, unknown>): void {
    this.applyDelta(new Delta().retain(position).insert(content, attributes));
  }

  /** Deletes `length` at `position`. */
  delete(position: number, length: number): void {
    this.applyDelta(new Delta().retain(position).delete(length));
  }

  /** Sets `attributes` on `length` at `position`; an attribute `null` removes it. */
  format(position: number, length: number, attributes: Record<string, unknown>): void {
    this.applyDelta(new Delta().retain(position).retain(length, attributes));
  }
}
