// The wire types of PROTOCOL §3–4 (C#: client/CollabProtocol/Messages/Messages.cs) and the
// reading of what arrives: MessagePack sends absent optional fields as nil, so null and
// undefined are treated alike, and every op is checked and canonicalized on the way in, by the
// document's type (text unless a join result names another).

import { errorCodeInfo, type ErrorCode } from "./error-codes.js";
import { parse, type TextOperation } from "./ot.js";
import { parse as parseDelta, parseDocument, type Delta } from "./rich-text.js";

export type { ErrorCode } from "./error-codes.js";

/** A member's name and color (a CSS color, usually `#rrggbb`). */
export interface UserInfo {
  readonly name: string;
  readonly color: string;
}

/** One selection range; `anchor` and `head` are positions in the document. */
export interface SelectionRange {
  readonly anchor: number;
  readonly head: number;
}

export interface JoinRequest {
  docId: string;
  clientId: string;
  /** The type of a document the join creates (`text` when absent); another type than an existing document's is refused with `invalid_op`. */
  type?: string;
  sinceVersion?: number;
  user?: UserInfo;
}

/** An op of another member; `Op` is the document type's (text: TextOperation, rich text: a Delta). */
export interface OpMessage<Op = TextOperation> {
  readonly docId: string;
  readonly version: number;
  readonly op: Op;
  readonly clientId: string;
  readonly opId: number;
}

export interface PresenceMessage {
  readonly docId: string;
  readonly clientId: string;
  readonly user: UserInfo | undefined;
  readonly version: number;
  /** `null` means the member left; `[]` that it is present without a cursor. */
  readonly selection: readonly SelectionRange[] | null;
}

export interface JoinResult<Op = TextOperation> {
  readonly docId: string;
  readonly version: number;
  /** The document's type; absent: `text`. */
  readonly type?: string;
  /** A text document's whole text (a join without a resume, or one too far behind). */
  readonly text: string | undefined;
  /** A rich-text document's whole contents, instead of `text`. */
  readonly delta?: Delta;
  readonly ops: readonly OpMessage<Op>[] | undefined;
  readonly readOnly: boolean;
  readonly redirect: string | undefined;
  readonly presence: readonly PresenceMessage[];
  /** Set when the document did not exist and its id was renamed away: the id its text went to. */
  readonly movedTo?: string;
}

/** `Wire`: the op as sent (text: a TextOperation; rich text: an array of Delta ops). */
export interface SubmitRequest<Wire = TextOperation> {
  docId: string;
  baseVersion: number;
  op: Wire;
  opId: number;
}

export interface SubmitResult {
  readonly version: number;
}

export interface PresenceRequest {
  docId: string;
  version: number;
  selection: SelectionRange[];
  user?: UserInfo;
}

export interface ResetMessage {
  readonly docId: string;
  /** `deleted`, `moved`, `renamed` (PROTOCOL §4); treat any other as a reason to join again. */
  readonly reason: string;
  /** With `renamed`: the document's new id. */
  readonly movedTo?: string;
}

/** Names of the hub's methods and messages, as in C# `HubNames`. */
export const HubNames = {
  path: "/hubs/collab",
  join: "Join",
  submit: "Submit",
  leave: "Leave",
  setPresence: "SetPresence",
  op: "Op",
  presence: "Presence",
  reset: "Reset",
} as const;

/**
 * The protocol error code of a failed hub call, or undefined for anything else (such as a lost
 * connection, or a code only clients raise). The SignalR client prefixes the server's message with its own text; the code
 * follows the last "HubException: ".
 */
export function errorCode(error: unknown): ErrorCode | undefined {
  const message = error instanceof Error ? error.message : typeof error === "string" ? error : "";
  const marker = "HubException: ";
  const start = message.lastIndexOf(marker);
  const body = start >= 0 ? message.slice(start + marker.length) : message;
  const colon = body.indexOf(":");
  const code = colon > 0 ? body.slice(0, colon).trim() : "";
  // A code the clients raise themselves never comes from the server.
  return Object.hasOwn(errorCodeInfo, code) && !errorCodeInfo[code as ErrorCode].clientOnly ? (code as ErrorCode) : undefined;
}

/** A message from the server that does not have the shape the protocol promises. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

type Raw = Record<string, unknown>;

function object(value: unknown, what: string): Raw {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ProtocolError(`${what} is not an object`);
  }
  return value as Raw;
}

function int(value: unknown, what: string): number {
  // MessagePack may decode a 64-bit integer as a bigint.
  const n = typeof value === "bigint" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n)) throw new ProtocolError(`${what} is not an integer`);
  return n;
}

function str(value: unknown, what: string): string {
  if (typeof value !== "string") throw new ProtocolError(`${what} is not a string`);
  return value;
}

function optionalStr(value: unknown, what: string): string | undefined {
  return value === null || value === undefined ? undefined : str(value, what);
}

function readUser(value: unknown): UserInfo | undefined {
  if (value === null || value === undefined) return undefined;
  const o = object(value, "user");
  const name = optionalStr(o.name, "user.name");
  const color = optionalStr(o.color, "user.color");
  return { name: name ?? "", color: color ?? "" };
}

function readSelection(value: unknown): SelectionRange[] | null {
  if (value === null || value === undefined) return null;
  if (!Array.isArray(value)) throw new ProtocolError("selection is not an array");
  return value.map((r, i) => {
    const o = object(r, `selection[${i}]`);
    return { anchor: int(o.anchor, "anchor"), head: int(o.head, "head") };
  });
}

/** Reads an `Op` message, its op with `parseOp` (the document type's; text by default). */
export function readOpMessage(value: unknown): OpMessage;
export function readOpMessage<Op>(value: unknown, parseOp: (raw: unknown) => Op | string): OpMessage<Op>;
export function readOpMessage(value: unknown, parseOp: (raw: unknown) => unknown = parse): OpMessage<unknown> {
  const o = object(value, "Op message");
  const op = parseOp(o.op);
  if (typeof op === "string") throw new ProtocolError(`Op message: ${op}`);
  return {
    docId: str(o.docId, "docId"),
    version: int(o.version, "version"),
    op,
    clientId: optionalStr(o.clientId, "clientId") ?? "",
    opId: o.opId === null || o.opId === undefined ? 0 : int(o.opId, "opId"),
  };
}

/** Reads a `Presence` message. */
export function readPresenceMessage(value: unknown): PresenceMessage {
  const o = object(value, "Presence message");
  return {
    docId: str(o.docId, "docId"),
    clientId: str(o.clientId, "clientId"),
    user: readUser(o.user),
    version: int(o.version, "version"),
    selection: readSelection(o.selection),
  };
}

/** Reads a `Reset` message. */
export function readResetMessage(value: unknown): ResetMessage {
  const o = object(value, "Reset message");
  const movedTo = optionalStr(o.movedTo, "movedTo") || undefined;
  return { docId: str(o.docId, "docId"), reason: optionalStr(o.reason, "reason") ?? "", ...(movedTo ? { movedTo } : {}) };
}

/** The document id of a message, to find the document (and its type) before reading the rest; "" if it has none. */
export function docIdOf(value: unknown): string {
  return value !== null && typeof value === "object" && typeof (value as Raw).docId === "string" ? ((value as Raw).docId as string) : "";
}

/**
 * Reads the result of `Join`: its ops and whole document by its `type` (absent: text). A type this
 * client does not know is kept, without ops or document, for the document to refuse.
 */
export function readJoinResult(value: unknown): JoinResult<unknown> {
  const o = object(value, "JoinResult");
  const type = optionalStr(o.type, "type");
  const rich = type === "rich-text";
  const known = type === undefined || type === "text" || rich;
  const ops = o.ops === null || o.ops === undefined ? undefined : o.ops;
  if (ops !== undefined && !Array.isArray(ops)) throw new ProtocolError("JoinResult.ops is not an array");
  const presence = o.presence === null || o.presence === undefined ? [] : o.presence;
  if (!Array.isArray(presence)) throw new ProtocolError("JoinResult.presence is not an array");
  return {
    docId: optionalStr(o.docId, "docId") ?? "",
    version: int(o.version ?? 0, "version"),
    text: rich || !known ? undefined : optionalStr(o.text, "text"),
    ops: known ? ops?.map((m) => readOpMessage<unknown>(m, rich ? parseDelta : parse)) : undefined,
    readOnly: o.readOnly === true,
    redirect: optionalStr(o.redirect, "redirect") || undefined,
    presence: presence.map(readPresenceMessage),
    ...(typeof o.movedTo === "string" && o.movedTo !== "" ? { movedTo: o.movedTo } : {}),
    ...(type !== undefined ? { type } : {}),
    ...(rich && o.delta !== null && o.delta !== undefined ? { delta: readDelta(o.delta) } : {}),
  };
}

/** Reads the result of `Submit`. */
export function readSubmitResult(value: unknown): SubmitResult {
  return { version: int(object(value, "SubmitResult").version, "version") };
}

function readDelta(value: unknown): Delta {
  const delta = parseDocument(value);
  if (typeof delta === "string") throw new ProtocolError(`JoinResult.delta: ${delta}`);
  return delta;
}
