// Text operations of PROTOCOL §1, a port of client/CollabProtocol/Ot/TextOperation.cs with the
// same function names. Pure functions over immutable arrays in their wire form: a positive
// integer retains, a negative one deletes, a non-empty string inserts; the trailing retain is
// implicit. Every operation these functions return is canonical. Held to the C# code by
// tests/vectors/ot-vectors.json (tests/ts/ot-vectors.test.mjs).
//
// A document can be a string or a CodeMirror `Text` (a B-tree of lines with O(log n) replace):
// `applyToText` applies an op to a `Text` without copying the rest of the document.

import { Text } from "@codemirror/state";

/** One component: retain `n` (> 0), delete `-n` (< 0), or insert a non-empty string. */
export type OpComponent = number | string;

/** An operation in its wire and canonical form. */
export type TextOperation = readonly OpComponent[];

/** The operation that changes nothing. */
export const empty: TextOperation = Object.freeze([]) as TextOperation;

const maxCount = 0x7fffffff;

/** Builds canonical operations; each call appends one component and merges as canonical form requires. */
export class Builder {
  private readonly list: OpComponent[] = [];

  /** Keeps the next `n` code units. */
  retain(n: number): this {
    if (n <= 0) return this;
    const last = this.list.length - 1;
    if (last >= 0 && isRetain(this.list[last])) {
      this.list[last] = Math.min((this.list[last] as number) + n, maxCount);
    } else {
      this.list.push(Math.min(n, maxCount));
    }
    return this;
  }

  /** Deletes the next `n` code units. */
  delete(n: number): this {
    if (n <= 0) return this;
    const last = this.list.length - 1;
    if (last >= 0 && isDelete(this.list[last])) {
      this.list[last] = -Math.min(-(this.list[last] as number) + n, maxCount);
    } else {
      this.list.push(-Math.min(n, maxCount));
    }
    return this;
  }

  /** Inserts `text`; written before an adjacent delete. */
  insert(text: string): this {
    if (text.length === 0) return this;
    const list = this.list;
    const n = list.length;
    if (n > 0 && typeof list[n - 1] === "string") {
      list[n - 1] = (list[n - 1] as string) + text;
    } else if (n > 0 && isDelete(list[n - 1])) {
      if (n > 1 && typeof list[n - 2] === "string") {
        list[n - 2] = (list[n - 2] as string) + text;
      } else {
        list.splice(n - 1, 0, text);
      }
    } else {
      list.push(text);
    }
    return this;
  }

  /** Appends any component. */
  add(c: OpComponent): this {
    return typeof c === "string" ? this.insert(c) : c > 0 ? this.retain(c) : this.delete(-c);
  }

  /** The canonical operation; a trailing retain is dropped. */
  build(): TextOperation {
    const list = this.list.slice();
    if (list.length > 0 && isRetain(list[list.length - 1])) list.pop();
    return list.length === 0 ? empty : Object.freeze(list);
  }
}

export function isInsert(c: OpComponent): c is string {
  return typeof c === "string";
}

export function isRetain(c: OpComponent): c is number {
  return typeof c === "number" && c > 0;
}

export function isDelete(c: OpComponent): c is number {
  return typeof c === "number" && c < 0;
}

/** Code units retained, deleted or inserted by one component. */
export function componentLength(c: OpComponent): number {
  return typeof c === "string" ? c.length : Math.abs(c);
}

/** Whether the operation changes nothing. */
export function isNoop(op: TextOperation): boolean {
  return op.length === 0;
}

/** The shortest document this operation applies to: the sum of its retains and deletes. */
export function baseLength(op: TextOperation): number {
  let n = 0;
  for (const c of op) if (typeof c === "number") n += Math.abs(c);
  return n;
}

/** How much longer (or, if negative, shorter) the document is after this operation. */
export function lengthDelta(op: TextOperation): number {
  let n = 0;
  for (const c of op) n += typeof c === "string" ? c.length : c < 0 ? c : 0;
  return n;
}

/**
 * Reads an operation from the wire (any form) into canonical form. Returns a sentence saying
 * why not when it is not an array of integers and non-empty strings; zero counts are dropped,
 * as the C# reader does.
 */
export function parse(raw: unknown): TextOperation | string {
  if (!Array.isArray(raw)) return "an operation must be an array of components";
  const b = new Builder();
  for (let i = 0; i < raw.length; i++) {
    const c: unknown = raw[i];
    if (typeof c === "string") {
      if (c.length === 0) return `component ${i} is an empty string`;
      b.insert(c);
    } else if (typeof c === "number" && Number.isInteger(c)) {
      if (c > maxCount || c < -maxCount - 1) return `component ${i} is out of range`;
      if (c > 0) b.retain(c);
      else if (c < 0) b.delete(-c);
    } else if (typeof c === "bigint") {
      return `component ${i} is out of range`;
    } else {
      return `component ${i} is neither an integer nor a non-empty string`;
    }
  }
  return b.build();
}

/** Builds a canonical operation from components in any valid form; throws on an invalid component. */
export function canonicalize(components: readonly unknown[]): TextOperation {
  const op = parse(components);
  if (typeof op === "string") throw new TypeError(op);
  return op;
}

/**
 * Throws a RangeError when `text` has a lone surrogate: no op made for sending may carry one
 * (PROTOCOL §1; a UTF-8 encoder would write "\ud83d" as the bytes ED A0 BD, which the server
 * refuses as `invalid_op`).
 */
function checkWellFormed(text: string): void {
  if (!isWellFormed(text)) throw new RangeError("The text has a lone surrogate (half of a surrogate pair).");
}

/** An operation that inserts `text` at `position`; throws a RangeError if `text` has a lone surrogate. */
export function insert(position: number, text: string): TextOperation {
  checkWellFormed(text);
  return new Builder().retain(position).insert(text).build();
}

/** An operation that deletes `length` code units at `position`. */
export function del(position: number, length: number): TextOperation {
  return new Builder().retain(position).delete(length).build();
}

/** An operation replacing `length` code units at `position` with `text`; throws a RangeError if `text` has a lone surrogate. */
export function replace(position: number, length: number, text: string): TextOperation {
  checkWellFormed(text);
  return new Builder().retain(position).insert(text).delete(length).build();
}

/** Whether a UTF-16 code unit is the first half of a surrogate pair. */
export function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/** Whether a UTF-16 code unit is the second half of a surrogate pair. */
export function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** The smallest single replacement that turns `from` into `to`; never cuts a surrogate pair. */
export function diff(from: string, to: string): TextOperation {
  const max = Math.min(from.length, to.length);
  let prefix = 0;
  while (prefix < max && from.charCodeAt(prefix) === to.charCodeAt(prefix)) prefix++;
  const maxSuffix = max - prefix;
  let suffix = 0;
  while (suffix < maxSuffix && from.charCodeAt(from.length - 1 - suffix) === to.charCodeAt(to.length - 1 - suffix)) suffix++;
  if (prefix > 0 && isHighSurrogate(from.charCodeAt(prefix - 1))) prefix--;
  if (suffix > 0 && isLowSurrogate(from.charCodeAt(from.length - suffix))) suffix--;
  return new Builder()
    .retain(prefix)
    .insert(to.substring(prefix, to.length - suffix))
    .delete(from.length - prefix - suffix)
    .build();
}

/** Whether `s` has no lone surrogate. */
export function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (isHighSurrogate(ch)) {
      if (i + 1 >= s.length || !isLowSurrogate(s.charCodeAt(i + 1))) return false;
      i++;
    } else if (isLowSurrogate(ch)) {
      return false;
    }
  }
  return true;
}

/** `s` with each lone surrogate replaced by U+FFFD (as `String.prototype.toWellFormed` does). */
export function toWellFormed(s: string): string {
  if (isWellFormed(s)) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (isHighSurrogate(ch) && i + 1 < s.length && isLowSurrogate(s.charCodeAt(i + 1))) {
      out += s.slice(i, i + 2);
      i++;
    } else {
      out += isHighSurrogate(ch) || isLowSurrogate(ch) ? "\ufffd" : s[i];
    }
  }
  return out;
}

function splitsPair(doc: string | Text, pos: number): boolean {
  if (pos <= 0 || pos >= doc.length) return false;
  const around = typeof doc === "string" ? doc.slice(pos - 1, pos + 1) : doc.sliceString(pos - 1, pos + 1);
  return isHighSurrogate(around.charCodeAt(0)) && isLowSurrogate(around.charCodeAt(1));
}

/**
 * Checks that `op` (in any wire form) can be applied to `doc`: it is made of integers and
 * non-empty strings, does not run past the end and leaves no lone surrogate (it neither splits
 * a surrogate pair of `doc` nor inserts half of one). These are the server's checks (PROTOCOL
 * §1). Returns null when it is valid, else a sentence saying why not.
 */
export function validate(doc: string | Text, raw: unknown): string | null {
  const op = parse(raw);
  if (typeof op === "string") return op;
  // Count the raw form: a trailing retain, which canonical form drops, may still run past the end.
  const base = baseLength(raw as TextOperation);
  if (base > doc.length) {
    return `the operation retains or deletes ${base} code units, past the end of the document (length ${doc.length})`;
  }
  let pos = 0;
  for (const c of op) {
    if (splitsPair(doc, pos)) return `position ${pos} splits a surrogate pair`;
    if (typeof c === "string") {
      if (!isWellFormed(c)) return "an insert contains a lone surrogate";
    } else {
      pos += Math.abs(c);
    }
  }
  if (splitsPair(doc, pos)) return `position ${pos} splits a surrogate pair`;
  return null;
}

/** Applies `op` to `doc`. Throws a RangeError when it runs past the end. */
export function apply(doc: string, op: TextOperation): string {
  const base = baseLength(op);
  if (base > doc.length) {
    throw new RangeError(`Operation base length ${base} exceeds document length ${doc.length}.`);
  }
  if (op.length === 1 && typeof op[0] === "string") return op[0] + doc;
  const parts: string[] = [];
  let pos = 0;
  for (const c of op) {
    if (typeof c === "string") {
      parts.push(c);
    } else if (c > 0) {
      parts.push(doc.slice(pos, pos + c));
      pos += c;
    } else {
      pos -= c;
    }
  }
  parts.push(doc.slice(pos));
  return parts.join("");
}

/**
 * A string as a `Text`. Lines are split at "\n" only, so a "\r" stays a character and
 * positions are the string's code units; `text.toString()` gives the string back.
 */
export function toText(s: string): Text {
  return s.length === 0 ? Text.empty : Text.of(s.split("\n"));
}

/**
 * Applies `op` to `doc` as `apply` does to a string, and throws the same RangeError when it runs
 * past the end. Each insert or delete is one `Text.replace`: O(log n) plus the size of the
 * change, copying only the lines it touches (a very long line is copied whole).
 */
export function applyToText(doc: Text, op: TextOperation): Text {
  const base = baseLength(op);
  if (base > doc.length) {
    throw new RangeError(`Operation base length ${base} exceeds document length ${doc.length}.`);
  }
  // Position in the document as changed so far: every replace leaves what is before it in place.
  let result = doc;
  let pos = 0;
  for (let i = 0; i < op.length; i++) {
    const c = op[i];
    if (typeof c === "string") {
      // Canonical form writes an insert before the delete next to it: one replace does both.
      const next = op[i + 1];
      const deleted = typeof next === "number" && next < 0 ? -next : 0;
      if (deleted > 0) i++;
      result = result.replace(pos, pos + deleted, toText(c));
      pos += c.length;
    } else if (c > 0) {
      pos += c;
    } else {
      result = result.replace(pos, pos - c, Text.empty);
    }
  }
  return result;
}

/** Walks an operation's components, able to take part of one; past the end it reads as an endless retain. */
class Cursor {
  private index = 0;
  private offset = 0;
  constructor(private readonly ops: TextOperation) {}

  get done(): boolean {
    return this.index >= this.ops.length;
  }
  get isInsert(): boolean {
    return !this.done && typeof this.ops[this.index] === "string";
  }
  get isDelete(): boolean {
    return !this.done && isDelete(this.ops[this.index]);
  }
  get isRetain(): boolean {
    return this.done || isRetain(this.ops[this.index]);
  }
  get length(): number {
    return this.done ? Number.MAX_SAFE_INTEGER : componentLength(this.ops[this.index]) - this.offset;
  }

  takeInsert(): string {
    const text = this.ops[this.index] as string;
    const result = this.offset === 0 ? text : text.slice(this.offset);
    this.index++;
    this.offset = 0;
    return result;
  }

  takeInsertPrefix(n: number): string {
    const text = (this.ops[this.index] as string).substr(this.offset, n);
    this.skip(n);
    return text;
  }

  takeAll(): OpComponent {
    const c = this.ops[this.index];
    const rest = componentLength(c) - this.offset;
    const offset = this.offset;
    this.index++;
    this.offset = 0;
    if (typeof c === "string") return offset === 0 ? c : c.slice(offset);
    return c > 0 ? rest : -rest;
  }

  skip(n: number): void {
    if (this.done) return;
    this.offset += n;
    if (this.offset >= componentLength(this.ops[this.index])) {
      this.index++;
      this.offset = 0;
    }
  }
}

/**
 * Rewrites `a` so that it applies after `b`, both made against the same document. When both
 * insert at one position, `a`'s text goes first (to the left) if `aWinsTies`.
 *
 * Convergence (TP1): apply(apply(d, b), transform(a, b, w)) == apply(apply(d, a), transform(b, a, !w)).
 * On the server an incoming op wins ties over the ops already sequenced; on a client its own
 * pending op wins ties over a server op (PROTOCOL §1).
 */
export function transform(a: TextOperation, b: TextOperation, aWinsTies: boolean): TextOperation {
  if (a.length === 0 || b.length === 0) return a;
  const result = new Builder();
  const ia = new Cursor(a);
  const ib = new Cursor(b);
  while (!ia.done) {
    if (ia.isInsert && (aWinsTies || !ib.isInsert)) {
      result.insert(ia.takeInsert());
      continue;
    }
    if (ib.isInsert) {
      result.retain(ib.takeInsert().length);
      continue;
    }
    if (ib.done) {
      result.add(ia.takeAll());
      continue;
    }
    // Both are retains or deletes over the same stretch of the original document.
    const n = Math.min(ia.length, ib.length);
    const aRetains = ia.isRetain;
    const bRetains = ib.isRetain;
    ia.skip(n);
    ib.skip(n);
    if (bRetains) {
      if (aRetains) result.retain(n);
      else result.delete(n);
    }
    // b deleted the stretch: whatever a retained or deleted there is already gone.
  }
  return result.build();
}

/** One operation with the effect of applying `a` and then `b`. */
export function compose(a: TextOperation, b: TextOperation): TextOperation {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const result = new Builder();
  const ia = new Cursor(a);
  const ib = new Cursor(b);
  while (!ia.done || !ib.done) {
    if (ia.isDelete) {
      result.delete(ia.length);
      ia.skip(ia.length);
      continue;
    }
    if (ib.isInsert) {
      result.insert(ib.takeInsert());
      continue;
    }
    if (ia.done) {
      result.add(ib.takeAll());
      continue;
    }
    if (ib.done) {
      result.add(ia.takeAll());
      continue;
    }
    // a is a retain or an insert; b is a retain or a delete over what a produced.
    const n = Math.min(ia.length, ib.length);
    if (ia.isInsert) {
      const text = ia.takeInsertPrefix(n);
      if (ib.isRetain) result.insert(text);
      ib.skip(n);
    } else {
      if (ib.isRetain) result.retain(n);
      else result.delete(n);
      ia.skip(n);
      ib.skip(n);
    }
  }
  return result.build();
}

/** The operation that undoes `op`, given the document it was applied to; reads only what `op` deletes. */
export function invert(op: TextOperation, before: string | Text): TextOperation {
  const result = new Builder();
  let pos = 0;
  for (const c of op) {
    if (typeof c === "string") {
      result.delete(c.length);
    } else if (c > 0) {
      result.retain(c);
      pos += c;
    } else {
      result.insert(typeof before === "string" ? before.slice(pos, pos - c) : before.sliceString(pos, pos - c));
      pos -= c;
    }
  }
  return result.build();
}

/**
 * Maps a position in the document before `op` to the document after it. For a position where
 * text is inserted, `stickToEnd` says whether it moves past the insert.
 */
export function transformPosition(op: TextOperation, position: number, stickToEnd = false): number {
  let pos = 0;
  let result = position;
  for (const c of op) {
    if (pos > position) break;
    if (typeof c === "string") {
      if (pos < position || stickToEnd) result += c.length;
    } else if (c > 0) {
      pos += c;
    } else {
      result -= Math.min(-c, position - pos);
      pos -= c;
    }
  }
  return result;
}

/**
 * Maps a position in the document after `op` back to the document before it. A position inside
 * inserted text maps to where the insert happened.
 */
export function transformPositionBack(op: TextOperation, position: number): number {
  let before = 0;
  let after = 0;
  for (const c of op) {
    if (typeof c === "string") {
      if (position <= after + c.length) return before;
      after += c.length;
    } else if (c > 0) {
      if (position <= after + c) return before + (position - after);
      before += c;
      after += c;
    } else {
      before -= c;
    }
  }
  return before + (position - after);
}

/** Whether two canonical operations are the same. */
export function equals(a: TextOperation, b: TextOperation): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Splits `op` into operations to apply one after another, each inserting at most `maxInsert`
 * code units (so each fits in one hub message); their composition is `op`. Never cuts a
 * surrogate pair.
 */
export function split(op: TextOperation, maxInsert: number): TextOperation[] {
  let total = 0;
  for (const c of op) if (typeof c === "string") total += c.length;
  if (total <= maxInsert) return [op];
  const parts: TextOperation[] = [];
  let current = new Builder();
  let budget = maxInsert;
  // Position in the document as it is after the parts built so far and the current one.
  let pos = 0;
  for (const c of op) {
    if (typeof c !== "string") {
      if (c > 0) {
        current.retain(c);
        pos += c;
      } else {
        current.delete(-c);
      }
      continue;
    }
    let text = c;
    while (text.length > 0) {
      let take = Math.min(budget, text.length);
      if (take < text.length && take > 0 && isHighSurrogate(text.charCodeAt(take - 1))) take--;
      if (take === 0 && budget === maxInsert) take = Math.min(2, text.length);
      if (take > 0) {
        current.insert(text.slice(0, take));
        pos += take;
        budget -= take;
        text = text.slice(take);
      }
      if (text.length > 0) {
        parts.push(current.build());
        current = new Builder().retain(pos);
        budget = maxInsert;
      }
    }
  }
  const last = current.build();
  if (last.length > 0) parts.push(last);
  return parts;
}
