// What the sync engine (engine.ts, sync.ts) needs of a document type, and the two types a
// document can have, fixed when it is created: `text` (PROTOCOL §1's operations over a CodeMirror
// `Text`, ot.ts) and `rich-text` (Quill's Delta, rich-text.ts). The engine is the same for both;
// only these functions differ. Positions (presence) are in the type's length space: code units,
// a rich-text embed 1.

import type { Text } from "@codemirror/state";
import type { JoinResult } from "./messages.js";
import * as ot from "./ot.js";
import type { TextOperation } from "./ot.js";
import * as rich from "./rich-text.js";
import type { Delta } from "./rich-text.js";

/** A document type's name, as `Join`'s `type` carries it; a join result without one is `text`. */
export type DocTypeName = "text" | "rich-text";

/** The operations of a type, as sync.ts's client states need them. */
export interface OpType<Op> {
  /** The op that changes nothing. */
  readonly noop: Op;
  isNoop(op: Op): boolean;
  /** One op with the effect of `a` then `b`. */
  compose(a: Op, b: Op): Op;
  /**
   * `a` rewritten to apply after `b`, both made on one document. Where both insert at one
   * place, `a`'s goes first when `aWinsTies` (PROTOCOL §1: the op that reached the server later).
   */
  transform(a: Op, b: Op, aWinsTies: boolean): Op;
  /** Ops to send one after another, each inserting at most `maxInsert`, composing to `op`. */
  split(op: Op, maxInsert: number): Op[];
}

/** A document type: its documents (`Doc`, immutable) and the ops on them (`Op`, immutable). */
export interface DocType<Doc, Op> extends OpType<Op> {
  readonly name: DocTypeName;
  /** The document of version 0. */
  readonly empty: Doc;
  length(doc: Doc): number;
  /** Why `raw` (an op in any wire form) cannot apply to `doc`, as the server checks it; null if it can. */
  validate(doc: Doc, raw: unknown): string | null;
  /** `op` applied to `doc`; throws a RangeError when it runs past the end. */
  apply(doc: Doc, op: Op): Doc;
  /** The op that undoes `op` on `before`. */
  invert(op: Op, before: Doc): Op;
  /** The shortest document `op` applies to. */
  baseLength(op: Op): number;
  /** A position before `op` mapped after it; at an insert it stays before unless `stickToEnd`. */
  transformPosition(op: Op, position: number, stickToEnd?: boolean): number;
  /** A position after `op` mapped back before it; inside an insert it maps to the insert's place. */
  transformPositionBack(op: Op, position: number): number;
  /** Whether two documents have the same contents. */
  docEquals(a: Doc, b: Doc): boolean;
  /** One op from `from` to `to`. */
  diff(from: Doc, to: Doc): Op;
  /**
   * `restore` adds to `server` what only `local` has, deleting nothing; `local` adds to `local`
   * what only `server` has; both give one document, the local content first where both differ.
   */
  merge(server: Doc, local: Doc): { readonly restore: Op; readonly local: Op };
  /** The whole document a join result holds, or undefined when it answered with ops. */
  joined(result: JoinResult<Op>): Doc | undefined;
  /** An op read from the wire (canonical), or why it cannot be read. */
  parse(raw: unknown): Op | string;
  /** An op as it is sent: plain data (JSON, MessagePack, structured clone). */
  opToWire(op: Op): unknown;
  /** A document read from plain data (`docToWire`'s), or why it cannot be read. */
  docFromWire(raw: unknown): Doc | string;
  /** A document as plain data. */
  docToWire(doc: Doc): unknown;
}

/** The text type: strings of UTF-16 code units, ops of PROTOCOL §1, documents as CodeMirror `Text`. */
export const textType: DocType<Text, TextOperation> = {
  name: "text",
  empty: ot.toText(""),
  noop: ot.empty,
  isNoop: (op) => op.length === 0,
  compose: ot.compose,
  transform: ot.transform,
  split: ot.split,
  length: (doc) => doc.length,
  validate: ot.validate,
  apply: ot.applyToText,
  invert: ot.invert,
  baseLength: ot.baseLength,
  transformPosition: ot.transformPosition,
  transformPositionBack: ot.transformPositionBack,
  docEquals: (a, b) => a === b || a.eq(b),
  diff: (from, to) => ot.diff(from.toString(), to.toString()),
  merge: (server, local) => mergeText(server.toString(), local.toString()),
  joined: (result) => (typeof result.text === "string" ? ot.toText(result.text) : undefined),
  parse: ot.parse,
  opToWire: (op) => op,
  docFromWire: (raw) => (typeof raw === "string" ? ot.toText(raw) : "the text is not a string"),
  docToWire: (doc) => doc.toString(),
};

/** The rich-text type: Quill Deltas (rich-text.ts). */
export const richTextType: DocType<Delta, Delta> = {
  name: "rich-text",
  empty: rich.empty,
  noop: rich.empty,
  isNoop: rich.isNoop,
  compose: rich.compose,
  transform: rich.transform,
  split: rich.split,
  length: rich.length,
  validate: rich.validate,
  apply: rich.apply,
  invert: rich.invert,
  baseLength: rich.baseLength,
  transformPosition: rich.transformPosition,
  transformPositionBack: rich.transformPositionBack,
  docEquals: rich.equals,
  diff: rich.diff,
  merge: rich.merge,
  joined: (result) => result.delta ?? undefined,
  parse: rich.parse,
  opToWire: (op) => op.ops,
  docFromWire: rich.parseDocument,
  docToWire: (doc) => doc.ops,
};

/** The document types by name. */
export const docTypes: { readonly text: typeof textType; readonly "rich-text": typeof richTextType } = {
  text: textType,
  "rich-text": richTextType,
};

/** The type named `name`, or undefined for a name this client does not know. */
export function docTypeOf(name: string): DocType<unknown, unknown> | undefined {
  return Object.hasOwn(docTypes, name) ? (docTypes[name as DocTypeName] as DocType<unknown, unknown>) : undefined;
}

/**
 * The text type's merge: from the difference between `server` and `local`, `restore` inserts
 * the local text the server lacks (its deletions turned into retains), and `local` inserts the
 * server's text the local text lacks.
 */
function mergeText(server: string, local: string): { restore: TextOperation; local: TextOperation } {
  const restore = new ot.Builder();
  const toLocal = new ot.Builder();
  let pos = 0;
  for (const c of ot.diff(server, local)) {
    if (typeof c === "string") {
      restore.insert(c);
      toLocal.retain(c.length);
    } else if (c > 0) {
      restore.retain(c);
      toLocal.retain(c);
      pos += c;
    } else {
      restore.retain(-c);
      toLocal.insert(server.slice(pos, pos - c));
      pos -= c;
    }
  }
  return { restore: restore.build(), local: toLocal.build() };
}
