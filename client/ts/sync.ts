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

import { Builder, compose, diff, split, transform, type TextOperation } from "./ot.js";

/** An op sent to the server and not yet confirmed; `edits` counts the local edits folded into it. */
export interface Outstanding {
  readonly op: TextOperation;
  readonly opId: number;
  readonly edits: number;
}

/** Local edits made while an op was outstanding, composed into one op. */
export interface Buffer {
  readonly op: TextOperation;
  readonly edits: number;
}

export type SyncState =
  | { readonly kind: "Synchronized" }
  | { readonly kind: "AwaitingConfirm"; readonly outstanding: Outstanding }
  | { readonly kind: "AwaitingWithBuffer"; readonly outstanding: Outstanding; readonly buffer: Buffer };

export const synchronized: SyncState = Object.freeze({ kind: "Synchronized" });

/**
 * The most code units one submitted op inserts. Larger edits are sent as several ops, one after
 * another, so each stays well under the hub's 1 MiB message limit even at 3 UTF-8 bytes per
 * code unit.
 */
export const maxInsertPerOp = 200_000;

/** Makes `op` the outstanding op, splitting it when it is too large to send at once. */
function send(op: TextOperation, edits: number, newOpId: () => number): SyncState {
  const parts = split(op, maxInsertPerOp);
  if (parts.length === 1) return { kind: "AwaitingConfirm", outstanding: { op, opId: newOpId(), edits } };
  let rest = parts[1];
  for (let i = 2; i < parts.length; i++) rest = compose(rest, parts[i]);
  return {
    kind: "AwaitingWithBuffer",
    outstanding: { op: parts[0], opId: newOpId(), edits: 0 },
    buffer: { op: rest, edits },
  };
}

/** A local edit: returns the next state. */
export function applyClient(state: SyncState, op: TextOperation, newOpId: () => number): SyncState {
  switch (state.kind) {
    case "Synchronized":
      return send(op, 1, newOpId);
    case "AwaitingConfirm":
      return { kind: "AwaitingWithBuffer", outstanding: state.outstanding, buffer: { op, edits: 1 } };
    case "AwaitingWithBuffer":
      return {
        kind: "AwaitingWithBuffer",
        outstanding: state.outstanding,
        buffer: { op: compose(state.buffer.op, op), edits: state.buffer.edits + 1 },
      };
  }
}

/** A server op from another member: returns the next state and the op to apply to the local text. */
export function applyServer(state: SyncState, op: TextOperation): { state: SyncState; op: TextOperation } {
  switch (state.kind) {
    case "Synchronized":
      return { state, op };
    case "AwaitingConfirm": {
      const outstanding = transform(state.outstanding.op, op, true);
      return {
        state: { kind: "AwaitingConfirm", outstanding: { ...state.outstanding, op: outstanding } },
        op: transform(op, state.outstanding.op, false),
      };
    }
    case "AwaitingWithBuffer": {
      const outstanding = transform(state.outstanding.op, op, true);
      const op1 = transform(op, state.outstanding.op, false);
      const buffer = transform(state.buffer.op, op1, true);
      return {
        state: {
          kind: "AwaitingWithBuffer",
          outstanding: { ...state.outstanding, op: outstanding },
          buffer: { ...state.buffer, op: buffer },
        },
        op: transform(op1, state.buffer.op, false),
      };
    }
  }
}

/** The server confirmed the outstanding op: returns the next state (with the buffer, if any, now outstanding). */
export function serverAck(state: SyncState, newOpId: () => number): SyncState {
  switch (state.kind) {
    case "Synchronized":
      throw new Error("There is no outstanding operation to confirm.");
    case "AwaitingConfirm":
      return synchronized;
    case "AwaitingWithBuffer":
      return send(state.buffer.op, state.buffer.edits, newOpId);
  }
}

/**
 * The server's text moved on by `serverChange` (a whole-text join: the difference between the
 * text we last knew and the server's), and no outstanding op can be in it. Returns the next state,
 * with every pending edit rebased over the change as one new op (a new opId), and the op to apply
 * to the local text.
 */
export function rebase(state: SyncState, serverChange: TextOperation, newOpId: () => number): { state: SyncState; op: TextOperation } {
  const pending = pendingOp(state);
  const op = transform(serverChange, pending, false);
  const rebased = transform(pending, serverChange, true);
  return { state: rebased.length === 0 ? synchronized : send(rebased, pendingEdits(state), newOpId), op };
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
export function reconcile(
  state: SyncState,
  serverText: string,
  localText: string,
  newOpId: () => number,
): { state: SyncState; op: TextOperation } {
  const restore = new Builder();
  const local = new Builder();
  let pos = 0;
  for (const c of diff(serverText, localText)) {
    if (typeof c === "string") {
      restore.insert(c);
      local.retain(c.length);
    } else if (c > 0) {
      restore.retain(c);
      local.retain(c);
      pos += c;
    } else {
      restore.retain(-c);
      local.insert(serverText.slice(pos, pos - c));
      pos -= c;
    }
  }
  const op = restore.build();
  return { state: op.length === 0 ? synchronized : send(op, Math.max(1, pendingEdits(state)), newOpId), op: local.build() };
}

/** Everything not yet confirmed, as one op from the last known server state to the local text. */
export function pendingOp(state: SyncState): TextOperation {
  switch (state.kind) {
    case "Synchronized":
      return [];
    case "AwaitingConfirm":
      return state.outstanding.op;
    case "AwaitingWithBuffer":
      return compose(state.outstanding.op, state.buffer.op);
  }
}

/** How many local edits are not yet confirmed. */
export function pendingEdits(state: SyncState): number {
  switch (state.kind) {
    case "Synchronized":
      return 0;
    case "AwaitingConfirm":
      return state.outstanding.edits;
    case "AwaitingWithBuffer":
      return state.outstanding.edits + state.buffer.edits;
  }
}
