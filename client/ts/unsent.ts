// Unsent edits outside the client: what a document has not had confirmed, as plain data that an
// application may keep (the editor page keeps it in IndexedDB) and give to `CollabClient.open`
// in another client instance after a reload, a crash or a killed tab.
//
// A restored document is the same document as one whose connection dropped: it joins with
// `sinceVersion` from the version its edits were made on and sends them again, the op that was
// already sent under its own `clientId` and `opId`, so the server recognizes it if it was
// committed (PROTOCOL §3, deduplication) and nothing is applied twice.

import { initialState, type EngineState } from "./engine.js";
import type { UserInfo } from "./messages.js";
import * as ot from "./ot.js";
import type { TextOperation } from "./ot.js";
import * as sync from "./sync.js";

/** A document's unconfirmed local edits, with what is needed to send them again. Plain data (JSON or structured clone). */
export interface UnsentEdits {
  readonly docId: string;
  /** The clientId the edits were made under: the restored document joins with it, so the server recognizes their op ids. */
  readonly clientId: string;
  /** The server version the edits were made on. */
  readonly version: number;
  /** The server's text at `version`. */
  readonly serverText: string;
  /** The first edits, sent (or about to be) under `opId`: it may have been committed, and is sent again with the same id. */
  readonly outstanding: { readonly op: TextOperation; readonly opId: number; readonly edits: number };
  /** Whether `outstanding` was sent: if so it may be committed already. */
  readonly sent: boolean;
  /** Later edits, not sent yet (they get an op id when they are). */
  readonly buffer?: { readonly op: TextOperation; readonly edits: number };
  /** Every op id the client had handed out when this was taken is at most this: the restoring client counts on from above it. */
  readonly opIdsThrough: number;
  /** When this was taken (milliseconds since the epoch). */
  readonly savedAt: number;
}

/** The unsent edits of `state`, or undefined when every edit is confirmed (or the document was never joined). */
export function unsentOf(state: EngineState, opIdsThrough: number, nowMs: number): UnsentEdits | undefined {
  const s = state.sync;
  if (s.kind === "Synchronized" || state.version < 0) return undefined;
  return {
    docId: state.docId,
    clientId: state.clientId,
    version: state.version,
    serverText: state.serverText.toString(),
    outstanding: { op: s.outstanding.op, opId: s.outstanding.opId, edits: s.outstanding.edits },
    sent: state.everSentOpId === s.outstanding.opId,
    ...(s.kind === "AwaitingWithBuffer" ? { buffer: { op: s.buffer.op, edits: s.buffer.edits } } : {}),
    opIdsThrough,
    savedAt: nowMs,
  };
}

/**
 * Why `unsent` cannot be restored (its ops do not fit its text, or a field is not what it must
 * be: it came from storage, which anything may have written), or null if it can.
 */
export function checkUnsent(unsent: UnsentEdits, docId: string): string | null {
  if (typeof unsent !== "object" || unsent === null) return "the unsent edits are not an object";
  if (unsent.docId !== docId) return `the unsent edits are for "${String(unsent.docId)}", not "${docId}"`;
  if (typeof unsent.clientId !== "string" || unsent.clientId === "" || !ot.isWellFormed(unsent.clientId)) return "clientId is not a well-formed string";
  if (!Number.isSafeInteger(unsent.version) || unsent.version < 0) return "version is not a version";
  if (typeof unsent.serverText !== "string") return "serverText is not a string";
  if (!Number.isSafeInteger(unsent.opIdsThrough) || unsent.opIdsThrough < 0) return "opIdsThrough is not an op id";
  const outstanding = unsent.outstanding;
  if (typeof outstanding !== "object" || outstanding === null) return "outstanding is missing";
  if (!Number.isSafeInteger(outstanding.opId) || outstanding.opId < 1 || outstanding.opId > unsent.opIdsThrough) return "outstanding.opId is not an op id the client had handed out";
  const first = ot.validate(unsent.serverText, outstanding.op);
  if (first !== null) return `outstanding.op does not fit serverText: ${first}`;
  if (unsent.buffer !== undefined) {
    const later = ot.validate(ot.apply(unsent.serverText, outstanding.op), unsent.buffer.op);
    if (later !== null) return `buffer.op does not fit the text after outstanding.op: ${later}`;
  }
  return null;
}

/**
 * The engine state of a document opened with `unsent` (checked with checkUnsent): offline, at the
 * version the edits were made on, with them pending, as if its connection had just dropped. The
 * shell then sends `connected` as for any reconnect.
 */
export function restoredState(unsent: UnsentEdits, user: UserInfo | undefined): EngineState {
  const edits = (n: number) => (Number.isSafeInteger(n) && n > 0 ? n : 1);
  const outstanding: sync.Outstanding = { op: ot.canonicalize(unsent.outstanding.op), opId: unsent.outstanding.opId, edits: edits(unsent.outstanding.edits) };
  const state: sync.SyncState =
    unsent.buffer === undefined
      ? { kind: "AwaitingConfirm", outstanding }
      : { kind: "AwaitingWithBuffer", outstanding, buffer: { op: ot.canonicalize(unsent.buffer.op), edits: edits(unsent.buffer.edits) } };
  const serverText = ot.toText(unsent.serverText);
  return {
    ...initialState,
    docId: unsent.docId,
    clientId: unsent.clientId,
    user,
    serverText,
    text: ot.applyToText(serverText, sync.pendingOp(state)),
    version: unsent.version,
    sync: state,
    everSentOpId: unsent.sent ? outstanding.opId : undefined,
    queue: new Map(),
    members: new Map(),
    futurePresence: new Map(),
  };
}
