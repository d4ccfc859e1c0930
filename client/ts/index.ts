// The CollabServer TypeScript client: the OT of PROTOCOL §1 (`ot`), the client states
// (`sync`), and a protocol client with typed events that any editor can be bound to.

export * as ot from "./ot.js";
export type { OpComponent, TextOperation } from "./ot.js";
export * as sync from "./sync.js";
export { Emitter, type Listener } from "./events.js";
export {
  CollabDocument,
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
  type ConnectionStatus,
} from "./client.js";
export { checkUnsent, type UnsentEdits } from "./unsent.js";
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
