// The client's side of OT, the three states of ot.js (and of the C# client), as pure functions
// that return the next state:
//
//   Synchronized --local op--> AwaitingConfirm --local op--> AwaitingWithBuffer
//        ^                        |     ^                          |   (more local ops are
//        +-------- ack -----------+     +----------- ack ----------+    composed into the buffer)
//
// A server op is transformed over what the client has not had confirmed:
//
//        server op                        the outstanding op wins ties (PROTOCOL §1):
//   s ------------> .                     outstanding' = transform(outstanding, op, true)
//   |               |                     op'          = transform(op, outstanding, false)
//   outstanding     outstanding'          and again for the buffer, over op'.
//   v               v
//   . ------------> .
//        op'
//
// The ops are of a document type (doctype.ts): every function takes the type last, text by default.

import type { Text } from "@codemirror/state";
import { textType, type DocType, type OpType } from "./doctype.js";
import type { TextOperation } from "./ot.js";

/** An op sent to the server and not yet confirmed; `edits` counts the local edits folded into it. */
export interface Outstanding<Op = TextOperation> {
  readonly op: Op;
  readonly opId: number;
  readonly edits: number;
}

/** Local edits made while an op was outstanding, composed into one op. */
export interface Buffer<Op = TextOperation> {
  readonly op: Op;
  readonly edits: number;
}

export type SyncState<Op = TextOperation> =
  | { readonly kind: "Synchronized" }
  | { readonly kind: "AwaitingConfirm"; readonly outstanding: Outstanding<Op> }
  | { readonly kind: "AwaitingWithBuffer"; readonly outstanding: Outstanding<Op>; readonly buffer: Buffer<Op> };

export const synchronized: SyncState<never> = Object.freeze({ kind: "Synchronized" });

/** The text type, as the default of the functions below (for callers that name no type). */
const text = textType as DocType<never, never>;

/**
 * The most code units one submitted op inserts. Larger edits are sent as several ops, one after
 * another, so each stays well under the hub's 1 MiB message limit even at 3 UTF-8 bytes per
 * code unit.
 */
export const maxInsertPerOp = 200_000;

/** Makes `op` the outstanding op, splitting it when it is too large to send at once. */
function send<Op>(op: Op, edits: number, newOpId: () => number, type: OpType<Op>): SyncState<Op> {
  const parts = type.split(op, maxInsertPerOp);
  if (parts.length === 1) return { kind: "AwaitingConfirm", outstanding: { op, opId: newOpId(), edits } };
  let rest = parts[1] as Op;
  for (let i = 2; i < parts.length; i++) rest = type.compose(rest, parts[i] as Op);
  return {
    kind: "AwaitingWithBuffer",
    outstanding: { op: parts[0] as Op, opId: newOpId(), edits: 0 },
    buffer: { op: rest, edits },
  };
}

/** A local edit: returns the next state. */
export function applyClient<Op = TextOperation>(state: SyncState<Op>, op: Op, newOpId: () => number, type: OpType<Op> = text): SyncState<Op> {
  switch (state.kind) {
    case "Synchronized":
      return send(op, 1, newOpId, type);
    case "AwaitingConfirm":
      return { kind: "AwaitingWithBuffer", outstanding: state.outstanding, buffer: { op, edits: 1 } };
    case "AwaitingWithBuffer":
      return {
        kind: "AwaitingWithBuffer",
        outstanding: state.outstanding,
        buffer: { op: type.compose(state.buffer.op, op), edits: state.buffer.edits + 1 },
      };
  }
}

/** A server op from another member: returns the next state and the op to apply to the local text. */
export function applyServer<Op = TextOperation>(state: SyncState<Op>, op: Op, type: OpType<Op> = text): { state: SyncState<Op>; op: Op } {
  switch (state.kind) {
    case "Synchronized":
      return { state, op };
    case "AwaitingConfirm": {
      const outstanding = type.transform(state.outstanding.op, op, true);
      return {
        state: { kind: "AwaitingConfirm", outstanding: { ...state.outstanding, op: outstanding } },
        op: type.transform(op, state.outstanding.op, false),
      };
    }
    case "AwaitingWithBuffer": {
      const outstanding = type.transform(state.outstanding.op, op, true);
      const op1 = type.transform(op, state.outstanding.op, false);
      const buffer = type.transform(state.buffer.op, op1, true);
      return {
        state: {
          kind: "AwaitingWithBuffer",
          outstanding: { ...state.outstanding, op: outstanding },
          buffer: { ...state.buffer, op: buffer },
        },
        op: type.transform(op1, state.buffer.op, false),
      };
    }
  }
}

/** The server confirmed the outstanding op: returns the next state (with the buffer, if any, now outstanding). */
export function serverAck<Op = TextOperation>(state: SyncState<Op>, newOpId: () => number, type: OpType<Op> = text): SyncState<Op> {
  switch (state.kind) {
    case "Synchronized":
      throw new Error("There is no outstanding operation to confirm.");
    case "AwaitingConfirm":
      return synchronized;
    case "AwaitingWithBuffer":
      return send(state.buffer.op, state.buffer.edits, newOpId, type);
  }
}

/**
 * The server's text moved on by `serverChange` (a whole-text join: the difference between the
 * text we last knew and the server's), and no outstanding op can be in it. Returns the next state,
 * with every pending edit rebased over the change as one new op (a new opId), and the op to apply
 * to the local text.
 */
export function rebase<Op = TextOperation>(
  state: SyncState<Op>,
  serverChange: Op,
  newOpId: () => number,
  type: OpType<Op> = text,
): { state: SyncState<Op>; op: Op } {
  const pending = pendingOp(state, type);
  const op = type.transform(serverChange, pending, false);
  const rebased = type.transform(pending, serverChange, true);
  return { state: type.isNoop(rebased) ? synchronized : send(rebased, pendingEdits(state), newOpId, type), op };
}

/**
 * The server's text is not one the local text was made from: the server lost edits it had
 * acknowledged, or holds others. Nobody's text is removed: `serverText` becomes the base, and the
 * local text it lacks is inserted into it by one new op (a new opId; the pending edits are in
 * it), made from the difference between `serverText` and `localText` with its deletions turned
 * into retains. Where both differ, the local text goes before the server's. Returns the next
 * state (its edits: the pending ones, or one when none was pending but text is restored) and the
 * op to apply to the local text, which inserts the server's text the local text lacks.
 */
export function reconcile<Doc = Text | string, Op = TextOperation>(
  state: SyncState<Op>,
  serverText: Doc,
  localText: Doc,
  newOpId: () => number,
  type: DocType<Doc, Op> = text,
): { state: SyncState<Op>; op: Op } {
  const { restore, local } = type.merge(serverText, localText);
  return { state: type.isNoop(restore) ? synchronized : send(restore, Math.max(1, pendingEdits(state)), newOpId, type), op: local };
}

/** Everything not yet confirmed, as one op from the last known server state to the local text. */
export function pendingOp<Op = TextOperation>(state: SyncState<Op>, type: OpType<Op> = text): Op {
  switch (state.kind) {
    case "Synchronized":
      return type.noop;
    case "AwaitingConfirm":
      return state.outstanding.op;
    case "AwaitingWithBuffer":
      return type.compose(state.outstanding.op, state.buffer.op);
  }
}

/** How many local edits are not yet confirmed. */
export function pendingEdits(state: SyncState<unknown>): number {
  switch (state.kind) {
    case "Synchronized":
      return 0;
    case "AwaitingConfirm":
      return state.outstanding.edits;
    case "AwaitingWithBuffer":
      return state.outstanding.edits + state.buffer.edits;
  }
}
