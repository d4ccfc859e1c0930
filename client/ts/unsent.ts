// Unsent edits outside the client: what a document has not had confirmed, as plain data that an
// application may keep (the editor page keeps it in IndexedDB) and give to `CollabClient.open`
// in another client instance after a reload, a crash or a killed tab.
//
// A restored document is the same document as one whose connection dropped: it joins with
// `sinceVersion` from the version its edits were made on and sends them again, the op that was
// already sent under its own `clientId` and `opId`, so the server recognizes it if it was
// committed (PROTOCOL §3, deduplication) and nothing is applied twice.

import { docTypeOf, type DocType, type DocTypeName } from "./doctype.js";
import { initialStateOf, type EngineState } from "./engine.js";
import type { UserInfo } from "./messages.js";
import * as ot from "./ot.js";
import type { TextOperation } from "./ot.js";
import type { DeltaOp } from "./rich-text.js";
import * as sync from "./sync.js";

/** What unsent edits of every type hold; `Op` is the type's op as plain data. */
export interface UnsentFields<Op> {
  readonly docId: string;
  /** The clientId the edits were made under: the restored document joins with it, so the server recognizes their op ids. */
  readonly clientId: string;
  /** The server version the edits were made on. */
  readonly version: number;
  /** The first edits, sent (or about to be) under `opId`: it may have been committed, and is sent again with the same id. */
  readonly outstanding: { readonly op: Op; readonly opId: number; readonly edits: number };
  /** Whether `outstanding` was sent: if so it may be committed already. */
  readonly sent: boolean;
  /** Later edits, not sent yet (they get an op id when they are). */
  readonly buffer?: { readonly op: Op; readonly edits: number };
  /** Every op id the client had handed out when this was taken is at most this: the restoring client counts on from above it. */
  readonly opIdsThrough: number;
  /** When this was taken (milliseconds since the epoch). */
  readonly savedAt: number;
}

/** A text document's unconfirmed local edits, with what is needed to send them again. Plain data (JSON or structured clone). */
export interface UnsentEdits extends UnsentFields<TextOperation> {
  /** Absent (or `text`): a text document. */
  readonly type?: "text";
  /** The server's text at `version`. */
  readonly serverText: string;
}

/** A rich-text document's unconfirmed local edits: as UnsentEdits, with Deltas as arrays of ops. */
export interface RichTextUnsentEdits extends UnsentFields<readonly DeltaOp[]> {
  readonly type: "rich-text";
  /** The server's document at `version`: Delta inserts. */
  readonly serverDelta: readonly DeltaOp[];
}

/** Unsent edits of a document of any type; `type` tells which. */
export type AnyUnsentEdits = UnsentEdits | RichTextUnsentEdits;

/** The unsent edits of `state`, or undefined when every edit is confirmed (or the document was never joined). */
export function unsentOf<Doc, Op>(state: EngineState<Doc, Op>, opIdsThrough: number, nowMs: number): AnyUnsentEdits | undefined {
  const s = state.sync;
  if (s.kind === "Synchronized" || state.version < 0) return undefined;
  const t = state.docType;
  const server = t.docToWire(state.serverText);
  return {
    docId: state.docId,
    clientId: state.clientId,
    version: state.version,
    ...(t.name === "text" ? { serverText: server } : { type: t.name, serverDelta: server }),
    outstanding: { op: t.opToWire(s.outstanding.op), opId: s.outstanding.opId, edits: s.outstanding.edits },
    sent: state.everSentOpId === s.outstanding.opId,
    ...(s.kind === "AwaitingWithBuffer" ? { buffer: { op: t.opToWire(s.buffer.op), edits: s.buffer.edits } } : {}),
    opIdsThrough,
    savedAt: nowMs,
  } as AnyUnsentEdits;
}

/** The type of unsent edits, and their server document as plain data and by the name it has in them. */
function partsOf(unsent: AnyUnsentEdits): { type: DocType<unknown, unknown> | undefined; name: string; server: unknown; field: string } {
  const name = unsent.type ?? "text";
  const field = name === "text" ? "serverText" : "serverDelta";
  return { type: docTypeOf(name), name, server: (unsent as unknown as Record<string, unknown>)[field], field };
}

/**
 * Why `unsent` cannot be restored (its ops do not fit its document, it is of another type than
 * `type` when that is given, or a field is not what it must be: it came from storage, which
 * anything may have written), or null if it can.
 */
export function checkUnsent(unsent: AnyUnsentEdits, docId: string, type?: DocTypeName): string | null {
  if (typeof unsent !== "object" || unsent === null) return "the unsent edits are not an object";
  if (unsent.docId !== docId) return `the unsent edits are for "${String(unsent.docId)}", not "${docId}"`;
  const { type: t, name, server, field } = partsOf(unsent);
  if (!t) return `the unsent edits are of an unknown type "${String(name)}"`;
  if (type !== undefined && name !== type) return `the unsent edits are of a ${name} document, not ${type}`;
  if (typeof unsent.clientId !== "string" || unsent.clientId === "" || !ot.isWellFormed(unsent.clientId)) return "clientId is not a well-formed string";
  if (!Number.isSafeInteger(unsent.version) || unsent.version < 0) return "version is not a version";
  const serverDoc = t.docFromWire(server);
  if (typeof serverDoc === "string") return `${field} is not a ${name} document: ${serverDoc}`;
  if (!Number.isSafeInteger(unsent.opIdsThrough) || unsent.opIdsThrough < 0) return "opIdsThrough is not an op id";
  const outstanding = unsent.outstanding;
  if (typeof outstanding !== "object" || outstanding === null) return "outstanding is missing";
  if (!Number.isSafeInteger(outstanding.opId) || outstanding.opId < 1 || outstanding.opId > unsent.opIdsThrough) return "outstanding.opId is not an op id the client had handed out";
  const first = t.validate(serverDoc, outstanding.op);
  if (first !== null) return `outstanding.op does not fit ${field}: ${first}`;
  if (unsent.buffer !== undefined) {
    const later = t.validate(t.apply(serverDoc, t.parse(outstanding.op)), unsent.buffer.op);
    if (later !== null) return `buffer.op does not fit the text after outstanding.op: ${later}`;
  }
  return null;
}

/**
 * The engine state of a document opened with `unsent` (checked with checkUnsent): offline, at the
 * version the edits were made on, with them pending, as if its connection had just dropped. The
 * shell then sends `connected` as for any reconnect.
 */
export function restoredState<Doc, Op>(unsent: AnyUnsentEdits, user: UserInfo | undefined, docType: DocType<Doc, Op>): EngineState<Doc, Op> {
  const { server } = partsOf(unsent);
  const op = (raw: unknown) => docType.parse(raw) as Op;
  const edits = (n: number) => (Number.isSafeInteger(n) && n > 0 ? n : 1);
  const outstanding: sync.Outstanding<Op> = { op: op(unsent.outstanding.op), opId: unsent.outstanding.opId, edits: edits(unsent.outstanding.edits) };
  const state: sync.SyncState<Op> =
    unsent.buffer === undefined
      ? { kind: "AwaitingConfirm", outstanding }
      : { kind: "AwaitingWithBuffer", outstanding, buffer: { op: op(unsent.buffer.op), edits: edits(unsent.buffer.edits) } };
  const serverText = docType.docFromWire(server) as Doc;
  return {
    ...initialStateOf(docType),
    docId: unsent.docId,
    clientId: unsent.clientId,
    user,
    serverText,
    text: docType.apply(serverText, sync.pendingOp(state, docType)),
    version: unsent.version,
    sync: state,
    everSentOpId: unsent.sent ? outstanding.opId : undefined,
    queue: new Map(),
    members: new Map(),
    futurePresence: new Map(),
  };
}
