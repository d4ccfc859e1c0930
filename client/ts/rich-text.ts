// Rich-text operations: Quill's Delta (`quill-delta`, which also does the composing and
// transforming), read and checked as the server reads them, with the same function names as
// ot.ts. A change is a Delta of `insert` (a non-empty string, or an embed: an object, length 1),
// `retain` (a count of code units, with attributes to set, `null` removing one) and `delete`; a
// document is a Delta of inserts only. Lengths and positions count UTF-16 code units, an embed 1.
// Every Delta these functions return is canonical (Delta.push's merging, no trailing plain
// retain) and treated as immutable: nothing here changes a Delta it was given.

import Delta, { type AttributeMap, type Op } from "quill-delta";
import { isHighSurrogate, isLowSurrogate, isWellFormed } from "./ot.js";

export { Delta };
/** One component of a Delta on the wire: `{ insert, attributes? }`, `{ retain, attributes? }` or `{ delete }`. */
export type DeltaOp = Op;

const maxCount = 0x7fffffff;

/** The empty document, and the change that changes nothing. */
export const empty: Delta = new Delta([]);

function count(value: unknown): number | undefined {
  const n = typeof value === "bigint" ? Number(value) : value;
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= maxCount ? n : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Attributes as read: a copy, `null` values kept only where they remove (on a retain), none left: undefined. */
function attributesOf(raw: unknown, keepNull: boolean): AttributeMap | undefined | string {
  if (raw === null || raw === undefined) return undefined;
  if (!isObject(raw)) return "attributes must be an object";
  const result: AttributeMap = {};
  let any = false;
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined || (value === null && !keepNull)) continue;
    result[key] = value;
    any = true;
  }
  return any ? result : undefined;
}

/**
 * Reads a change from the wire (an array of Delta ops, or a Delta) into canonical form. Returns a
 * sentence saying why not when a component is not exactly one of a non-empty string or object
 * insert, a retain count or a delete count (attributes only on inserts and retains); zero counts
 * are dropped.
 */
export function parse(raw: unknown): Delta | string {
  const list = raw instanceof Delta ? raw.ops : raw;
  if (!Array.isArray(list)) return "a rich-text operation must be an array of Delta ops";
  const delta = new Delta();
  for (let i = 0; i < list.length; i++) {
    const c: unknown = list[i];
    if (!isObject(c)) return `op ${i} is not an object`;
    const kinds = (["insert", "retain", "delete"] as const).filter((k) => c[k] !== undefined && c[k] !== null);
    if (kinds.length !== 1) return `op ${i} must have exactly one of insert, retain and delete`;
    const kind = kinds[0]!;
    if (kind === "delete") {
      if (c.attributes !== undefined && c.attributes !== null) return `op ${i} deletes with attributes`;
      const n = count(c.delete);
      if (n === undefined) return `op ${i}'s delete is not a count`;
      if (n > 0) delta.delete(n);
      continue;
    }
    const attributes = attributesOf(c.attributes, kind === "retain");
    if (typeof attributes === "string") return `op ${i}: ${attributes}`;
    if (kind === "retain") {
      const n = count(c.retain);
      if (n === undefined) return `op ${i}'s retain is not a count`;
      if (n > 0) delta.retain(n, attributes);
    } else if (typeof c.insert === "string") {
      if (c.insert.length === 0) return `op ${i} inserts an empty string`;
      delta.insert(c.insert, attributes);
    } else if (isObject(c.insert)) {
      if (Object.keys(c.insert).length === 0) return `op ${i} inserts an empty embed`;
      delta.insert(c.insert, attributes);
    } else {
      return `op ${i}'s insert is neither a string nor an embed`;
    }
  }
  return delta.chop();
}

/** Reads a document from the wire: a Delta of inserts only. */
export function parseDocument(raw: unknown): Delta | string {
  const delta = parse(raw);
  if (typeof delta === "string") return delta;
  // The raw form: a trailing retain, which canonical form drops, is no insert either.
  const list = raw instanceof Delta ? raw.ops : (raw as Op[]);
  if (!list.every((c) => c.insert !== undefined && c.insert !== null)) return "a rich-text document has inserts only";
  return delta;
}

/** Whether `delta` is a document: inserts only. */
export function isDocument(delta: Delta): boolean {
  return delta.ops.every((c) => c.insert !== undefined);
}

/** The length of an op: code units, an embed 1. */
function opLength(c: Op): number {
  if (typeof c.delete === "number") return c.delete;
  if (typeof c.retain === "number") return c.retain;
  return typeof c.insert === "string" ? c.insert.length : 1;
}

/** The shortest document a change applies to: the sum of its retains and deletes. */
export function baseLength(op: Delta): number {
  let n = 0;
  for (const c of op.ops) if (c.insert === undefined) n += opLength(c);
  return n;
}

/** A document's length: code units, an embed 1. */
export function length(doc: Delta): number {
  return doc.length();
}

/** Whether a change changes nothing. */
export function isNoop(op: Delta): boolean {
  return op.ops.length === 0;
}

/** The first of the ascending `positions` that splits a surrogate pair of `doc`, if any. */
function splitPair(doc: Delta, positions: readonly number[]): number | undefined {
  const ops = doc.ops;
  let k = 0;
  let start = 0;
  // The code unit at `index` (-1 for an embed or past the end); `index` never goes back.
  const codeAt = (index: number): number => {
    while (k < ops.length && start + opLength(ops[k]!) <= index) start += opLength(ops[k++]!);
    const insert = ops[k]?.insert;
    return typeof insert === "string" ? insert.charCodeAt(index - start) : -1;
  };
  for (const p of positions) {
    if (p > 0 && isHighSurrogate(codeAt(p - 1)) && isLowSurrogate(codeAt(p))) return p;
  }
  return undefined;
}

/**
 * Checks that `raw` (a change in any wire form) can be applied to the document `doc`: it reads
 * (see parse), its retains and deletes, a trailing retain included, do not run past the end, and
 * it leaves no lone surrogate (it neither splits a surrogate pair nor inserts half of one).
 * Returns null when it is valid, else a sentence saying why not.
 */
export function validate(doc: Delta, raw: unknown): string | null {
  const op = parse(raw);
  if (typeof op === "string") return op;
  // Count the raw form: a trailing retain, which canonical form drops, may still run past the end.
  let base = 0;
  for (const c of raw instanceof Delta ? raw.ops : (raw as Op[])) {
    if (c.insert === undefined || c.insert === null) base += count(c.retain ?? c.delete) ?? 0;
  }
  const docLength = doc.length();
  if (base > docLength) return `the operation retains or deletes ${base} code units, past the end of the document (length ${docLength})`;
  const positions: number[] = [];
  let pos = 0;
  for (const c of op.ops) {
    positions.push(pos);
    if (typeof c.insert === "string") {
      if (!isWellFormed(c.insert)) return "an insert contains a lone surrogate";
    } else if (c.insert === undefined) {
      pos += opLength(c);
    }
  }
  positions.push(pos);
  const at = splitPair(doc, [...new Set(positions)]);
  return at === undefined ? null : `position ${at} splits a surrogate pair`;
}

/** Applies `op` to the document `doc`. Throws a RangeError when it runs past the end. */
export function apply(doc: Delta, op: Delta): Delta {
  const base = baseLength(op);
  const docLength = doc.length();
  if (base > docLength) throw new RangeError(`Operation base length ${base} exceeds document length ${docLength}.`);
  return doc.compose(op);
}

/** One change with the effect of `a` then `b`. */
export function compose(a: Delta, b: Delta): Delta {
  return a.compose(b);
}

/**
 * Rewrites `a` to apply after `b`, both made on one document (PROTOCOL §1's `transform`). Where
 * both insert at one place, `a`'s insert goes first when `aWinsTies`; where both set one
 * attribute, the value of the op that wins ties stays. In quill-delta's terms:
 * `b.transform(a, priority)` with `priority` true when `b` wins.
 */
export function transform(a: Delta, b: Delta, aWinsTies: boolean): Delta {
  return b.transform(a, !aWinsTies);
}

/** The change that undoes `op` on the document `before` it. */
export function invert(op: Delta, before: Delta): Delta {
  return op.invert(before);
}

/**
 * Maps a position in the document before `op` to the document after it, as ot.ts does: an
 * insert exactly at the position leaves it before the insert unless `stickToEnd`; a delete
 * covering it moves it to the deleted range's start.
 */
export function transformPosition(op: Delta, position: number, stickToEnd = false): number {
  return op.transformPosition(position, !stickToEnd);
}

/**
 * Maps a position in the document after `op` back to the document before it. A position inside
 * inserted content maps to where the insert happened.
 */
export function transformPositionBack(op: Delta, position: number): number {
  let before = 0;
  let after = 0;
  for (const c of op.ops) {
    const n = opLength(c);
    if (c.insert !== undefined) {
      if (position <= after + n) return before;
      after += n;
    } else if (c.retain !== undefined) {
      if (position <= after + n) return before + (position - after);
      before += n;
      after += n;
    } else {
      before += n;
    }
  }
  return before + (position - after);
}

/** Whether two JSON values are the same, whatever the order of object keys. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const list = b as unknown[];
    return a.length === list.length && a.every((v, i) => same(v, list[i]));
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Whether two canonical Deltas (documents or changes) are the same, whatever the order of their keys. */
export function equals(a: Delta, b: Delta): boolean {
  return same(a.ops, b.ops);
}

/** The change from the document `from` to the document `to`: one change, a character diff. */
export function diff(from: Delta, to: Delta): Delta {
  return from.diff(to);
}

/**
 * Merges a local document into a server document that lacks some of it (sync.reconcile): from
 * their difference, `restore` inserts into `server` the content only `local` has and sets the
 * attributes as `local` has them, deleting nothing; `local` inserts into `local` the content only
 * `server` has. Where both differ at one place, the local content goes first. Both lead to one
 * document: `server.compose(restore)` equals `local.compose(local op)`.
 */
export function merge(server: Delta, local: Delta): { restore: Delta; local: Delta } {
  const restore = new Delta();
  const toLocal = new Delta();
  let pos = 0;
  for (const c of server.diff(local).ops) {
    const n = opLength(c);
    if (c.insert !== undefined) {
      restore.push(c);
      toLocal.retain(n);
    } else if (c.retain !== undefined) {
      restore.retain(n, c.attributes);
      toLocal.retain(n);
      pos += n;
    } else {
      restore.retain(n);
      for (const part of server.slice(pos, pos + n).ops) toLocal.push(part);
      pos += n;
    }
  }
  return { restore: restore.chop(), local: toLocal.chop() };
}

/**
 * Splits `op` into changes to apply one after another, each inserting at most `maxInsert` code
 * units (an embed counts 1), so each fits in one hub message; their composition is `op`. Never
 * cuts a surrogate pair.
 */
export function split(op: Delta, maxInsert: number): Delta[] {
  let total = 0;
  for (const c of op.ops) if (c.insert !== undefined) total += opLength(c);
  if (total <= maxInsert) return [op];
  const parts: Delta[] = [];
  let current = new Delta();
  let budget = maxInsert;
  // Position in the document as it is after the parts built so far and the current one.
  let pos = 0;
  for (const c of op.ops) {
    if (c.insert === undefined) {
      current.push(c);
      if (c.retain !== undefined) pos += opLength(c);
      continue;
    }
    if (typeof c.insert !== "string") {
      if (budget === 0) {
        parts.push(current.chop());
        current = new Delta().retain(pos);
        budget = maxInsert;
      }
      current.push(c);
      pos++;
      budget--;
      continue;
    }
    let text = c.insert;
    while (text.length > 0) {
      let take = Math.min(budget, text.length);
      if (take < text.length && take > 0 && isHighSurrogate(text.charCodeAt(take - 1))) take--;
      if (take === 0 && budget === maxInsert) take = Math.min(2, text.length);
      if (take > 0) {
        current.insert(text.slice(0, take), c.attributes);
        pos += take;
        budget -= take;
        text = text.slice(take);
      }
      if (text.length > 0) {
        parts.push(current.chop());
        current = new Delta().retain(pos);
        budget = maxInsert;
      }
    }
  }
  const last = current.chop();
  if (last.ops.length > 0) parts.push(last);
  return parts;
}
