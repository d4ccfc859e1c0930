// The CollabServer TypeScript client: the OT of PROTOCOL §1 (`ot`), rich text's over Quill's Delta
// (`richText`), the document types (`textType`, `richTextType`), the client states (`sync`), and
// a protocol client with typed events that any editor can be bound to.

export * as ot from "./ot.js";
export type { OpComponent, TextOperation } from "./ot.js";
export * as richText from "./rich-text.js";
export { Delta, type DeltaOp } from "./rich-text.js";
export { docTypes, richTextType, textType, type DocType, type DocTypeName, type OpType } from "./doctype.js";
export * as sync from "./sync.js";
export { Emitter, type Listener } from "./events.js";
export {
  CollabDocument,
  SyncedDocument,
  type AnySyncedDocument,
  type ChangeOrigin,
  type DocumentEvents,
  type DocumentHost,
  type HubInvoker,
  type Member,
} from "./document.js";
export {
  CollabClient,
  type ClientEvents,
  type CollabClientOptions,
  type OpenOptions,
  type RichTextOpenOptions,
  type ConnectionStatus,
} from "./client.js";
export { RichTextDocument, type RichTextEvents } from "./rich-document.js";
export { checkUnsent, type AnyUnsentEdits, type RichTextUnsentEdits, type UnsentEdits } from "./unsent.js";
export { CollabError, classifyHandshake, type FailureReason } from "./errors.js";
export { reconnectDelay, type ReconnectPolicy } from "./backoff.js";
export { errorCodeInfo, isBeforeDuplicateCheck, retryOf, type ErrorRetry } from "./error-codes.js";
export {
  HubNames,
  ProtocolError,
  errorCode,
  type ErrorCode,
  type JoinRequest,
  type JoinResult,
  type OpMessage,
  type PresenceMessage,
  type PresenceRequest,
  type ResetMessage,
  type SelectionRange,
  type SubmitRequest,
  type SubmitResult,
  type UserInfo,
} from "./messages.js";
