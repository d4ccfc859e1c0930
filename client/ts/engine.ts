// The sync engine of one document: everything the client decides, as one pure function
//
//   step(state, event) -> { state, commands }
//
// It does no I/O, keeps no timer, reads no clock and draws no random number: time and chance
// come in with events (`nowMs`, `random`), and what is to happen outside comes out as commands,
// which a thin shell (document.ts here, CollabDocument in C#) carries out in order. The shell
// turns method calls, hub messages, call results and timer firings into events. The C# engine
// has the same events and commands in PascalCase (`serverOp` is `ServerOp`), and
// tests/vectors/engine-scenarios.json drives both.
//
// Events (each may carry `nowMs`, the shell's clock; the engine's clock never goes back):
//   open           { docId, clientId, user }  the document was opened; nothing is sent before `connected`
//   opIds          { ids }            fresh op ids from the client's counter (see "Op ids" below)
//   connected      { resume? }        a connection is up: join on it, with sinceVersion unless resume is false
//   disconnected   {}                 the connection is gone: unanswered calls are lost, unconfirmed edits kept
//   joinResult     { session, result }  a Join answered (a redirect too)
//   joinFailed     { session, code?, message, random }  a Join failed, with a protocol error code, or none
//                                     when the connection failed; `random` in [0, 1) places a retry in its window
//   localEdit      { op }             a local edit, checked against `state.text` by the shell, which sends it only
//                                     after the first join; ignored while read-only
//   serverOp       { message }        an Op message
//   submitResult   { session, opId, version }  a Submit answered
//   submitFailed   { session, opId, code?, message, random }  a Submit failed (as joinFailed)
//   presenceLocal  { selection }      this member's selection, in positions of `state.text`
//   presenceRemote { message }        a Presence message
//   userChanged    { user }           this member's name or color changed
//   reset          {}                 a Reset message: join again without sinceVersion (ignored while offline)
//   tick           {}                 time passed: every timer due by `nowMs` fires, earliest first
//   leave          {}                 the document is closed; every later event is ignored
//
// Commands:
//   sendJoin     { session, request }  invoke Join; answer with joinResult or joinFailed naming `session`
//   sendSubmit   { session, request }  invoke Submit; answer with submitResult or submitFailed naming
//                                      `session` and the request's opId
//   sendPresence { request }           send SetPresence; its outcome is not reported
//   sendLeave    { docId }             invoke Leave; its outcome is not reported
//   applyRemote  { op, origin, clientId }  `state.text` changed by `op` (origin remote, resync or revert):
//                                      the document's `change` event
//   emit         { event, payload }    raise a document event: presence, pending, joined or error
//   setTimer     { name, dueMs }       send a tick at `dueMs` (or later); replaces the timer of that name
//   clearTimer   { name }              that timer is no longer wanted (a timer that fired needs none)
//   redirect     { url }               join the document on the node at `url`: the engine is offline
//                                      already; the shell moves the document, then sends `connected`
//   failOpen     { code, message }     the first join was refused for good: fail the pending open
//
// Divergence: a resume answered with a version below the one known, a whole text at the version
// known that is not the text known, or a server op that does not fit the text (retains or deletes
// past its end) means the server lost or changed edits it had acknowledged. Nothing throws: the
// engine raises `error` with the code `diverged`, and joins again for the whole text, which becomes
// the base; the local text the server lacks is sent as one new edit (sync.reconcile), so no text
// is removed, neither the server's nor the client's.
//
// Timers: gap (a version is missing: resume, 5 s after the last op or result that found it
// missing), retry (a refused Join or Submit: send it again, after 200 ms doubling up to 5 s), and
// presence (send this member's selection, at most every 60 ms).
//
// Sessions: every attach (a connection, a reset, a resume after a gap or an error) starts a new
// session, numbered from 1; results naming another session, or coming while offline, are
// ignored, so nothing from an earlier connection acts on the current one. Within a session one
// Join is in flight at a time, and at most one Submit per op id.
//
// Op ids must be unique per clientId across all of a client's documents, so they come from the
// client's counter: before every other event the shell tops `state.opIds` up to `opIdReserve`
// with an `opIds` event, and the engine takes them in order, at most one per event. A document
// alone on its client numbers its ops as the counter does (the vectors count from 1).
//
// Document types: the state holds its type (doctype.ts, fixed by initialStateOf), and every
// document and op passes through it, so one engine syncs text (`text`, `serverText` are CodeMirror
// `Text`s, ops those of PROTOCOL §1) and rich text (Quill Deltas). Joins name the type (a text
// join names none: absent means text) and a join result of another type is refused with
// `invalid_op`, as the server refuses a join naming the wrong type: the shell's `failOpen` on the
// first join, an `error` otherwise, and the document leaves.

import type { Text } from "@codemirror/state";
import { textType, type DocType } from "./doctype.js";
import { isBeforeDuplicateCheck, retryOf, type ErrorCode } from "./error-codes.js";
import type {
  JoinRequest,
  JoinResult,
  OpMessage,
  PresenceMessage,
  PresenceRequest,
  SelectionRange,
  SubmitRequest,
  UserInfo,
} from "./messages.js";
import type { TextOperation } from "./ot.js";
import * as sync from "./sync.js";
import type { SyncState } from "./sync.js";

/** Another member of the document, with its selection in the local text. */
export interface Member {
  readonly clientId: string;
  readonly user: UserInfo;
  /** Empty when the member is present without a cursor. */
  readonly selection: readonly SelectionRange[];
}

/** Why a remote change happened. */
export type ChangeOrigin =
  /** An op another member made. */
  | "remote"
  /**
   * After a reconnect the server could not send the missed ops, so the text was reconciled with its
   * whole text; or the server diverged (`diverged`) and its text the local text lacked was inserted.
   */
  | "resync"
  /** Local edits the server refused (read-only, invalid) were taken back. */
  | "revert";

/**
 * A document's events; `Op` is its type's op and `Snapshot` its documents as plain data (text:
 * TextOperation and string; rich text: Delta and Delta).
 */
export interface DocumentEvents<Op = TextOperation, Snapshot = string> {
  /** The local text changed by something other than `applyLocal`: apply `op` to the text you show. */
  change: { readonly op: Op; readonly origin: ChangeOrigin; readonly clientId: string | undefined };
  /** The members or their selections changed. */
  presence: { readonly members: readonly Member[] };
  /** The number of local edits not yet confirmed by the server changed. */
  pending: { readonly pendingEdits: number };
  /** The document was joined (again). */
  joined: { readonly version: number; readonly readOnly: boolean; readonly resumed: boolean };
  /**
   * The server refused something, or (code `diverged`) lost or changed edits this client had seen
   * acknowledged; the document has recovered as well as it could and goes on syncing.
   */
  error: { readonly code: ErrorCode | undefined; readonly message: string };
  /**
   * A `Reset` (PROTOCOL §4), raised before the document joins again, so a listener may `close` it
   * instead (reason `renamed`: open `movedTo`). `unconfirmed`: the local edits the server has not
   * confirmed, as one op on `serverText` (the server's text at the version held), if there are any.
   */
  reset: {
    readonly reason: string;
    readonly movedTo: string | undefined;
    readonly unconfirmed: { readonly op: Op; readonly serverText: Snapshot } | undefined;
  };
}

/** How many recent server ops are kept to map presence that refers to an older version. */
export const presenceHistory = 256;
/** How long a gap in the version sequence may last before the document resumes to fill it. */
export const gapTimeoutMs = 5_000;
/** How often presence is sent at most: under the server's default 20 a second (PROTOCOL §6), which refuses more with rate_limited. */
export const presenceIntervalMs = 60;
/** The wait before a retry doubles from this … */
export const minRetryDelayMs = 200;
/**
 * … up to this. A retry waits between half of the wait and all of it, placed by the failure's
 * `random`, so that clients refused together do not retry together.
 */
export const maxRetryDelayMs = 5_000;
/** How many op ids the shell keeps in `state.opIds` before each event: at least the one an event may take. */
export const opIdReserve = 2;

export type TimerName = "gap" | "retry" | "presence";

/**
 * Where the document stands with the server:
 * offline (no connection), joining (connected, not joined: a Join is in flight or waits for the
 * retry timer), settling (a whole-text join came while an op sent before may be committed: that
 * op is submitted again to learn so, before joining again), joined (ops apply, edits are sent).
 */
export type Phase = "offline" | "joining" | "settling" | "joined";

/** An op or an acknowledgement waiting for its version's turn. */
export type Queued<Op = TextOperation> = { readonly kind: "op"; readonly message: OpMessage<Op> } | { readonly kind: "ack"; readonly opId: number };

/** A server op kept to map presence made at an older version. */
export interface RecentOp<Op = TextOperation> {
  readonly version: number;
  readonly op: Op;
}

/**
 * The last `presenceHistory` server ops, oldest first: `entries[start..end)`. Successive states
 * share one array: a step appends in place only when no other state appended past its `end`,
 * else it copies, so the range a state sees never changes. (Any persistent list will do.)
 */
export interface RecentOps<Op = TextOperation> {
  readonly entries: readonly RecentOp<Op>[];
  readonly start: number;
  readonly end: number;
}

/** `Doc` and `Op`: the document type's (text: CodeMirror `Text` and TextOperation). */
export interface EngineState<Doc = Text, Op = TextOperation> {
  /** The document's type, fixed by initialStateOf. */
  readonly docType: DocType<Doc, Op>;
  readonly docId: string;
  readonly clientId: string;
  readonly user: UserInfo | undefined;
  /** The latest `nowMs` an event carried. */
  readonly nowMs: number;
  readonly closed: boolean;
  /** The local document: `serverText` with the pending edits (`sync`) applied. */
  readonly text: Doc;
  /** The server's document at `version`. */
  readonly serverText: Doc;
  /** The version `serverText` is; -1 before the first join. */
  readonly version: number;
  readonly readOnly: boolean;
  /** The unconfirmed local edits (sync.ts); the outstanding op applies to `serverText`. */
  readonly sync: SyncState<Op>;
  /** Op ids given by the shell, not used yet; taken from the front. */
  readonly opIds: readonly number[];
  readonly session: number;
  readonly phase: Phase;
  /** Whether this session's Join resumes (asks with sinceVersion once a version is known); a retry asks the same. */
  readonly resume: boolean;
  /** The op id submitted on this session, so it is not sent twice. */
  readonly sentOpId: number | undefined;
  /** The last op id submitted on any session: until confirmed it may or may not be committed. */
  readonly everSentOpId: number | undefined;
  /** Ops and acknowledgements after `version`, by version, applied once the versions before them are. */
  readonly queue: ReadonlyMap<number, Queued<Op>>;
  readonly recent: RecentOps<Op>;
  /** The other members, by client id, their selections in `text`. */
  readonly members: ReadonlyMap<string, Member>;
  /** Presence made at a version after `version`, placed once it is reached. */
  readonly futurePresence: ReadonlyMap<string, PresenceMessage>;
  /** This member's selection in `text`, once set. */
  readonly selection: readonly SelectionRange[] | undefined;
  /** Whether the last presence sent was mapped back through pending edits (and is to be sent again once they are confirmed). */
  readonly presenceApproximate: boolean;
  readonly lastPresenceMs: number | undefined;
  /** The due time of each timer that is set. */
  readonly timers: Readonly<Partial<Record<TimerName, number>>>;
  readonly retryDelayMs: number;
  /** What the retry timer does: join again (with `resume`), or submit the outstanding op again. */
  readonly retry: "join" | "resubmit" | undefined;
  /**
   * The server has lost or changed edits this client had seen acknowledged, so its text is not
   * `serverText`: the next join asks for the whole text and merges the local text into it
   * (sync.reconcile) instead of rebasing onto the difference from `serverText`.
   */
  readonly diverged: boolean;
  /**
   * The outstanding op was settled (its resubmission answered) and is in `serverText`, while
   * `version` is still the one before it: ops since `version` would bring it again, so until a
   * whole text is adopted every join asks for the whole text.
   */
  readonly settled: boolean;
}

export type EngineEvent<Op = TextOperation> = { readonly nowMs?: number } & (
  | { readonly type: "open"; readonly docId: string; readonly clientId: string; readonly user: UserInfo | undefined }
  | { readonly type: "opIds"; readonly ids: readonly number[] }
  | { readonly type: "connected"; readonly resume?: boolean }
  | { readonly type: "disconnected" }
  | { readonly type: "joinResult"; readonly session: number; readonly result: JoinResult<Op> }
  | { readonly type: "joinFailed"; readonly session: number; readonly code: ErrorCode | undefined; readonly message: string; readonly random: number }
  | { readonly type: "localEdit"; readonly op: Op }
  | { readonly type: "serverOp"; readonly message: OpMessage<Op> }
  | { readonly type: "submitResult"; readonly session: number; readonly opId: number; readonly version: number }
  | {
      readonly type: "submitFailed";
      readonly session: number;
      readonly opId: number;
      readonly code: ErrorCode | undefined;
      readonly message: string;
      readonly random: number;
    }
  | { readonly type: "presenceLocal"; readonly selection: readonly SelectionRange[] }
  | { readonly type: "presenceRemote"; readonly message: PresenceMessage }
  | { readonly type: "userChanged"; readonly user: UserInfo | undefined }
  | { readonly type: "reset" }
  | { readonly type: "tick" }
  | { readonly type: "leave" }
);

/** The document events the engine raises through `emit`; `change` comes as `applyRemote`. */
export type EmittedEvent = Exclude<keyof DocumentEvents, "change">;

/** `request.op` of `sendSubmit` is the op in its wire form (the type's `opToWire`). */
export type Command<Op = TextOperation> =
  | { readonly type: "sendJoin"; readonly session: number; readonly request: JoinRequest }
  | { readonly type: "sendSubmit"; readonly session: number; readonly request: SubmitRequest<unknown> }
  | { readonly type: "sendPresence"; readonly request: PresenceRequest }
  | { readonly type: "sendLeave"; readonly docId: string }
  | { readonly type: "applyRemote"; readonly op: Op; readonly origin: ChangeOrigin; readonly clientId: string | undefined }
  | { [K in EmittedEvent]: { readonly type: "emit"; readonly event: K; readonly payload: DocumentEvents<Op, unknown>[K] } }[EmittedEvent]
  | { readonly type: "setTimer"; readonly name: TimerName; readonly dueMs: number }
  | { readonly type: "clearTimer"; readonly name: TimerName }
  | { readonly type: "redirect"; readonly url: string }
  | { readonly type: "failOpen"; readonly code: ErrorCode; readonly message: string };

export interface StepResult<Doc = Text, Op = TextOperation> {
  readonly state: EngineState<Doc, Op>;
  readonly commands: readonly Command<Op>[];
}

const noRecent: RecentOps<never> = { entries: [], start: 0, end: 0 };
const noCommands: readonly Command<never>[] = [];

/** The state of a document of `docType` before `open`. */
export function initialStateOf<Doc, Op>(docType: DocType<Doc, Op>): EngineState<Doc, Op> {
  return {
    ...initialState,
    docType,
    text: docType.empty,
    serverText: docType.empty,
  } as EngineState<Doc, Op>;
}

/** The state of a text document before `open`. */
export const initialState: EngineState = {
  docType: textType,
  docId: "",
  clientId: "",
  user: undefined,
  nowMs: 0,
  closed: false,
  text: textType.empty,
  serverText: textType.empty,
  version: -1,
  readOnly: false,
  sync: sync.synchronized,
  opIds: [],
  session: 0,
  phase: "offline",
  resume: true,
  sentOpId: undefined,
  everSentOpId: undefined,
  queue: new Map(),
  recent: noRecent,
  members: new Map(),
  futurePresence: new Map(),
  selection: undefined,
  presenceApproximate: false,
  lastPresenceMs: undefined,
  timers: {},
  retryDelayMs: 0,
  retry: undefined,
  diverged: false,
  settled: false,
};

/** The next state after `event`, and what the shell is to do, in order. Never changes `state`. */
export function step<Doc = Text, Op = TextOperation>(state: EngineState<Doc, Op>, event: EngineEvent<Op>): StepResult<Doc, Op> {
  const run = new Step(state, event.nowMs);
  run.handle(event);
  return { state: run.s, commands: run.out ?? noCommands };
}

/** Every server op kept in `recent`, oldest first. */
export function recentOps<Op>(state: EngineState<unknown, Op>): readonly RecentOp<Op>[] {
  return state.recent.entries.slice(state.recent.start, state.recent.end);
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A shallow copy, field by field: V8 copies a literal of this shape an order of magnitude faster
 * than a spread of so many fields, and a step makes one for every event (every received op).
 */
function copyState<Doc, Op>(s: EngineState<Doc, Op>): Mutable<EngineState<Doc, Op>> {
  return {
    docType: s.docType,
    docId: s.docId,
    clientId: s.clientId,
    user: s.user,
    nowMs: s.nowMs,
    closed: s.closed,
    text: s.text,
    serverText: s.serverText,
    version: s.version,
    readOnly: s.readOnly,
    sync: s.sync,
    opIds: s.opIds,
    session: s.session,
    phase: s.phase,
    resume: s.resume,
    sentOpId: s.sentOpId,
    everSentOpId: s.everSentOpId,
    queue: s.queue,
    recent: s.recent,
    members: s.members,
    futurePresence: s.futurePresence,
    selection: s.selection,
    presenceApproximate: s.presenceApproximate,
    lastPresenceMs: s.lastPresenceMs,
    timers: s.timers,
    retryDelayMs: s.retryDelayMs,
    retry: s.retry,
    diverged: s.diverged,
    settled: s.settled,
  };
}

/**
 * One step's work on a shallow copy of the state. Collections are copied the first time the
 * step changes them, so the state it started from stays as it was.
 */
class Step<Doc, Op> {
  readonly s: Mutable<EngineState<Doc, Op>>;
  /** The document's type. */
  private readonly t: DocType<Doc, Op>;
  /** The commands so far; most events give one or none, so the list starts at its first. */
  out: Command<Op>[] | undefined;
  private queue: Map<number, Queued<Op>> | undefined;
  private members: Map<string, Member> | undefined;
  private future: Map<string, PresenceMessage> | undefined;

  constructor(state: EngineState<Doc, Op>, nowMs: number | undefined) {
    this.s = copyState(state);
    this.t = state.docType;
    if (nowMs !== undefined && nowMs > state.nowMs) this.s.nowMs = nowMs;
  }

  handle(event: EngineEvent<Op>): void {
    const s = this.s;
    if (event.type === "opIds") {
      s.opIds = [...s.opIds, ...event.ids];
      return;
    }
    if (s.closed) return;
    switch (event.type) {
      case "open":
        s.docId = event.docId;
        s.clientId = event.clientId;
        s.user = event.user;
        return;
      case "connected":
        this.attach(event.resume ?? true);
        return;
      case "disconnected":
        this.detach();
        return;
      case "reset":
        // After a delete the document starts a new history, whose ops after our version are not ops on our text.
        if (s.phase !== "offline") this.attach(false);
        return;
      case "leave": {
        const joined = s.phase === "joined";
        this.detach();
        s.closed = true;
        if (joined) this.command({ type: "sendLeave", docId: s.docId });
        return;
      }
      case "localEdit":
        this.localEdit(event.op);
        return;
      case "serverOp":
        if (s.phase === "joined" && event.message.version === s.version + 1 && s.queue.size === 0) {
          // The next op, with nothing queued: apply it without queueing it.
          this.drain(event.message);
        } else {
          this.queueOp(event.message);
          if (s.phase === "joined") this.drain();
        }
        return;
      case "joinResult":
        if (event.session === s.session && s.phase === "joining") this.joined(event.result);
        return;
      case "joinFailed":
        if (event.session === s.session && s.phase === "joining") this.joinFailed(event.code, event.message, event.random);
        return;
      case "submitResult":
        if (event.session !== s.session) return;
        if (s.phase === "settling") this.settled(event.opId);
        else if (s.phase === "joined") this.submitted(event.opId, event.version);
        return;
      case "submitFailed":
        if (event.session !== s.session || event.code === undefined) return; // No code: the connection failed; a reconnect resumes.
        if (s.phase === "settling") this.settleRefused(event.code, event.random);
        else if (s.phase === "joined") this.submitRefused(event.code, event.message, event.random);
        return;
      case "presenceLocal":
        s.selection = event.selection.map((r) => ({ anchor: r.anchor, head: r.head }));
        this.schedulePresence();
        return;
      case "presenceRemote":
        if (this.takePresence(event.message)) this.emitPresence();
        return;
      case "userChanged":
        s.user = event.user;
        this.schedulePresence();
        return;
      case "tick":
        this.fireTimers();
        return;
    }
  }

  // --- Connection and join ---

  /** Starts a session on the connection: join, resuming from `version` unless `resume` is false. */
  private attach(resume: boolean): void {
    this.detach();
    this.s.session++;
    this.join(resume);
  }

  /** Ends the session: what is unconfirmed is sent again after the next join. No result is taken while offline. */
  private detach(): void {
    const s = this.s;
    s.phase = "offline";
    s.sentOpId = undefined;
    s.retry = undefined;
    this.clearTimer("gap");
    this.clearTimer("retry");
    this.clearTimer("presence");
  }

  private join(resume: boolean): void {
    const s = this.s;
    s.phase = "joining";
    s.resume = resume && !s.settled;
    const request: JoinRequest = { docId: s.docId, clientId: s.clientId };
    if (this.t.name !== "text") request.type = this.t.name;
    if (s.resume && s.version >= 0 && !s.diverged) request.sinceVersion = s.version;
    if (s.user) request.user = s.user;
    this.command({ type: "sendJoin", session: s.session, request });
  }

  private joinFailed(code: ErrorCode | undefined, message: string, random: number): void {
    const s = this.s;
    if (code === "unknown_version" && s.resume) {
      this.join(false);
    } else if (code !== undefined && retryOf(code) !== "never") {
      this.retryLater("join", random);
    } else if (code !== undefined) {
      // Refused for good (invalid_doc_id, forbidden, unauthorized): nothing to retry until the next connection.
      if (s.version < 0) this.command({ type: "failOpen", code, message });
      this.emit("error", { code, message });
    }
    // Without a code the connection failed: the shell sends `connected` when it is back.
  }

  private joined(result: JoinResult<Op>): void {
    const s = this.s;
    const t = this.t;
    if (result.redirect) {
      this.detach();
      this.command({ type: "redirect", url: result.redirect });
      return;
    }
    const type = result.type ?? "text";
    if (type !== t.name) {
      this.refuseType(type);
      return;
    }
    s.retryDelayMs = 0;
    s.readOnly = result.readOnly;
    const resumed = s.version >= 0;
    const whole = t.joined(result);
    if (!resumed) {
      s.serverText = s.text = whole ?? t.empty;
      s.version = result.version;
    } else if (s.diverged) {
      // Only the whole text can be merged (a join without sinceVersion gets it).
      if (whole === undefined) {
        this.join(false);
        return;
      }
      this.reconcile(whole, result.version);
    } else if (s.resume && result.version < s.version) {
      this.diverge(`The server answered a resume from version ${s.version} with version ${result.version}`);
      return;
    } else if (result.ops) {
      for (const message of result.ops) this.queueOp(message);
      if (!this.applyQueued()) return;
    } else if (whole !== undefined) {
      if (s.resume && result.version === s.version && !t.docEquals(whole, s.serverText)) {
        this.diverge(`The server's text at version ${s.version} is not the one this client knew`);
        return;
      }
      if (s.sync.kind !== "Synchronized" && s.everSentOpId === s.sync.outstanding.opId) {
        // The outstanding op may have been committed before the connection dropped, and the
        // whole text cannot tell. Submitting it again with its opId settles it: the server
        // either finds it committed or applies it now; either way it is in the server's text.
        const outstanding = s.sync.outstanding;
        s.phase = "settling";
        this.command({
          type: "sendSubmit",
          session: s.session,
          request: { docId: s.docId, baseVersion: s.version, op: t.opToWire(outstanding.op), opId: outstanding.opId },
        });
        return;
      }
      this.resync(whole, result.version);
    }
    // Whatever was queued up to the joined version is in the text now.
    this.dropQueuedThrough(result.version);
    if (s.version < result.version) {
      // The ops we were given did not reach the version joined: start again from the whole text.
      this.join(false);
      return;
    }
    this.members = new Map();
    this.future = new Map();
    s.members = this.members;
    s.futurePresence = this.future;
    for (const message of result.presence) this.takePresence(message);
    s.phase = "joined";
    this.emitPresence();
    this.emit("joined", { version: s.version, readOnly: s.readOnly, resumed });
    this.emit("pending", { pendingEdits: sync.pendingEdits(s.sync) });
    if (s.readOnly && s.sync.kind !== "Synchronized") this.revert();
    this.drain();
    this.flush();
    if (s.selection) this.schedulePresence();
  }

  /** The document joined is of another type than this one: leave it, and say so as the server would. */
  private refuseType(type: string): void {
    const s = this.s;
    const message = `invalid_op: Document ${s.docId} is of type ${type}, not ${this.t.name}; a document's type is fixed when it is created.`;
    this.detach();
    this.command({ type: "sendLeave", docId: s.docId });
    if (s.version < 0) this.command({ type: "failOpen", code: "invalid_op", message });
    this.emit("error", { code: "invalid_op", message });
  }

  /**
   * The server sent its whole text instead of the missed ops. Reconcile the local edits with it
   * as if the server's changes were one edit: the difference between the text we last knew
   * and the server's. Edits in the same place may then merge less neatly than with real ops,
   * but none is lost.
   */
  private resync(serverText: Doc, version: number): void {
    const s = this.s;
    // O(length), as receiving the whole text is.
    const serverChange = this.t.diff(s.serverText, serverText);
    const { state, op } = sync.rebase(s.sync, serverChange, () => this.newOpId(), this.t);
    this.adopt(serverText, version, state, op);
  }

  /** The server's whole text at `version` becomes the base, with `state` pending and `op` taking the local text there. */
  private adopt(serverText: Doc, version: number, state: SyncState<Op>, op: Op): void {
    const s = this.s;
    this.dropQueuedThrough(version);
    s.recent = noRecent;
    s.version = version;
    s.serverText = serverText;
    s.settled = false;
    s.sync = state;
    this.applyRemote(op, "resync", undefined);
    this.emit("pending", { pendingEdits: sync.pendingEdits(s.sync) });
  }

  /**
   * The server has lost or changed edits this client had seen acknowledged (it is behind the
   * version we know, or its text or ops do not fit ours). Say so, forget the queued ops (numbered
   * in a history that is not the server's), and join again for the whole text, to be merged with
   * the local text: nothing acknowledged is dropped and nothing throws.
   */
  private diverge(why: string): void {
    const s = this.s;
    this.emit("error", {
      code: "diverged",
      message: `${why}: the server has lost or changed edits this client had seen acknowledged. The document joins again and sends the text the server lacks as new edits.`,
    });
    s.diverged = true;
    if (s.queue.size > 0) this.queueMut().clear();
    this.attach(false);
  }

  /**
   * The whole text of a server that diverged from what we knew: it becomes the base, and the
   * local text it lacks (acknowledged edits it lost, and the pending edits) is sent again as one
   * new op (sync.reconcile). The outstanding op is not settled first: it was made on a text the
   * server does not have, and its text is in the local text anyway.
   */
  private reconcile(serverText: Doc, version: number): void {
    const s = this.s;
    const { state, op } = sync.reconcile(s.sync, serverText, s.text, () => this.newOpId(), this.t);
    s.diverged = false;
    s.everSentOpId = undefined;
    this.adopt(serverText, version, state, op);
  }

  /** The resubmission of `settling` was answered: the op is in the server's text; join again for that text. */
  private settled(opId: number): void {
    const s = this.s;
    if (s.sync.kind === "Synchronized" || s.sync.outstanding.opId !== opId) return;
    s.serverText = this.t.apply(s.serverText, s.sync.outstanding.op);
    s.settled = true;
    s.sync = sync.serverAck(s.sync, () => this.newOpId(), this.t);
    this.emit("pending", { pendingEdits: sync.pendingEdits(s.sync) });
    this.join(false);
  }

  private settleRefused(code: ErrorCode, random: number): void {
    const s = this.s;
    if (isBeforeDuplicateCheck(code)) {
      // Refused before the server looked for it: it may still be committed. Ask again later.
      s.phase = "joining";
      s.resume = false;
      this.retryLater("join", random);
      return;
    }
    // Refused after the duplicate check, so not committed: it goes with the other pending edits.
    s.everSentOpId = undefined;
    this.join(false);
  }

  // --- Local edits and submitting ---

  private localEdit(op: Op): void {
    const s = this.s;
    if (s.readOnly || this.t.isNoop(op)) return;
    s.text = this.t.apply(s.text, op);
    this.mapMembers(op, undefined);
    s.sync = sync.applyClient(s.sync, op, () => this.newOpId(), this.t);
    this.emit("pending", { pendingEdits: sync.pendingEdits(s.sync) });
    this.flush();
  }

  /** Sends the outstanding op if it has not been sent on this session yet. */
  private flush(): void {
    const s = this.s;
    if (s.phase !== "joined" || s.sync.kind === "Synchronized") return;
    const outstanding = s.sync.outstanding;
    if (s.sentOpId === outstanding.opId) return;
    s.sentOpId = s.everSentOpId = outstanding.opId;
    this.command({
      type: "sendSubmit",
      session: s.session,
      request: { docId: s.docId, baseVersion: s.version, op: this.t.opToWire(outstanding.op), opId: outstanding.opId },
    });
  }

  private submitted(opId: number, version: number): void {
    const s = this.s;
    s.retryDelayMs = 0;
    if (version > s.version && !s.queue.has(version)) {
      this.queueMut().set(version, { kind: "ack", opId });
    } else if (version <= s.version && s.sync.kind !== "Synchronized" && s.sync.outstanding.opId === opId) {
      // Still outstanding, yet its version is one we applied as another op: our idea of the
      // server's text is wrong. Only the whole text can fix it.
      this.attach(false);
      return;
    }
    this.drain();
  }

  private submitRefused(code: ErrorCode, message: string, random: number): void {
    const s = this.s;
    const retry = retryOf(code);
    if (retry === "later") {
      this.retryLater("resubmit", random);
    } else if (retry === "rejoin") {
      // not_joined: the server forgot the membership. unknown_version: it has no version we
      // can name, which the application hears of. Either way: resume, keeping the edits.
      if (code === "unknown_version") this.emit("error", { code, message });
      this.attach(true);
    } else {
      // forbidden, invalid_op, too_large: these edits will never be accepted.
      if (code === "forbidden") s.readOnly = true;
      this.revert();
      this.emit("error", { code, message });
      this.attach(true);
    }
  }

  /** Local edits the server will never accept: take them back so the text matches the server's. */
  private revert(): void {
    const s = this.s;
    const pending = sync.pendingOp(s.sync, this.t);
    s.sync = sync.synchronized;
    this.applyRemote(this.t.invert(pending, s.serverText), "revert", undefined);
    this.emit("pending", { pendingEdits: 0 });
  }

  private retryLater(action: "join" | "resubmit", random: number): void {
    const s = this.s;
    s.retryDelayMs = Math.min(Math.max(s.retryDelayMs * 2, minRetryDelayMs), maxRetryDelayMs);
    s.retry = action;
    this.setTimer("retry", s.nowMs + s.retryDelayMs * (0.5 + random / 2));
  }

  /** Takes the next op id the shell gave. */
  private newOpId(): number {
    const s = this.s;
    if (s.opIds.length === 0) throw new Error("The engine has no op id left: the shell must keep opIdReserve of them in state.opIds.");
    const [id, ...rest] = s.opIds;
    s.opIds = rest;
    return id!;
  }

  // --- Server ops, in version order ---

  private queueOp(message: OpMessage<Op>): void {
    const s = this.s;
    if (message.version <= s.version) return;
    // An op replaces an acknowledgement of the same version: it says whose op it is.
    if (s.queue.get(message.version)?.kind !== "op") this.queueMut().set(message.version, { kind: "op", message });
  }

  private dropQueuedThrough(version: number): void {
    if (this.s.queue.size === 0) return;
    const queue = this.queueMut();
    for (const v of queue.keys()) if (v <= version) queue.delete(v);
  }

  /** Applies queued ops and acknowledgements in version order while the next one is there; `next` is the op after `version`, if not queued. */
  private drain(next?: OpMessage<Op>): void {
    const s = this.s;
    const edits = sync.pendingEdits(s.sync);
    const kind = s.sync.kind;
    this.applyQueued(next);
    if (sync.pendingEdits(s.sync) !== edits || s.sync.kind !== kind) this.emit("pending", { pendingEdits: sync.pendingEdits(s.sync) });
    this.placeFuturePresence();
    // A version is missing: it should arrive, but if it does not, resume to fetch it.
    if (s.queue.size > 0 && s.phase !== "offline") this.setTimer("gap", s.nowMs + gapTimeoutMs);
    else this.clearTimer("gap");
  }

  /** False when the queue turned out wrong and a new session was started instead. */
  private applyQueued(first?: OpMessage<Op>): boolean {
    const s = this.s;
    const t = this.t;
    for (let given = first; ; given = undefined) {
      // The slot after `version`: another member's op, or ours (its Op, or the Submit result naming it).
      let message = given;
      let ackOpId: number | undefined;
      if (!message) {
        const queued = s.queue.get(s.version + 1);
        if (!queued) return true;
        this.queueMut().delete(s.version + 1);
        if (queued.kind === "op") message = queued.message;
        else ackOpId = queued.opId;
      }
      const outstanding = s.sync.kind === "Synchronized" ? undefined : s.sync.outstanding;
      const own = message ? message.clientId === s.clientId && message.opId === outstanding?.opId : ackOpId === outstanding?.opId;
      if (own && outstanding) {
        s.version++;
        const state = sync.serverAck(s.sync, () => this.newOpId(), t);
        // With nothing left pending the local text is the server's: share it rather than apply the op again.
        s.serverText = state.kind === "Synchronized" ? s.text : t.apply(s.serverText, outstanding.op);
        this.remember(s.version, outstanding.op);
        s.sync = state;
        s.sentOpId = undefined;
        this.flush();
        if (s.presenceApproximate && s.sync.kind === "Synchronized") this.schedulePresence();
      } else if (message) {
        const base = t.baseLength(message.op);
        const length = t.length(s.serverText);
        if (base > length) {
          this.diverge(`Op ${message.version} runs ${base} code units, past the end of the text of version ${s.version} (length ${length})`);
          return false;
        }
        const wasSynchronized = s.sync.kind === "Synchronized";
        const { state, op } = sync.applyServer(s.sync, message.op, t);
        s.sync = state;
        s.version++;
        s.serverText = t.apply(s.serverText, message.op);
        this.remember(s.version, message.op);
        // Nothing pending: the local text was the server's and `op` is the server's op, so the
        // local text is the new server text and need not be built a second time.
        this.applyRemote(op, "remote", message.clientId, wasSynchronized ? s.serverText : undefined);
      } else {
        // An acknowledgement of an op that is not outstanding (left from an older history, as
        // after a delete): the text is no longer known, so start again from the server's.
        this.queueMut().clear();
        if (s.phase !== "offline") this.attach(false);
        return false;
      }
    }
  }

  /** `after` is the local text after `op` when the caller has it already. */
  private applyRemote(op: Op, origin: ChangeOrigin, clientId: string | undefined, after?: Doc): void {
    const s = this.s;
    const t = this.t;
    if (t.isNoop(op)) return;
    s.text = after ?? t.apply(s.text, op);
    // Our own selection is kept in local positions too: move it with the text (the others
    // map it themselves, so this is not news to send).
    s.selection = s.selection?.map((r) => ({
      anchor: t.transformPosition(op, r.anchor),
      head: t.transformPosition(op, r.head),
    }));
    this.mapMembers(op, clientId);
    this.command({ type: "applyRemote", op, origin, clientId });
  }

  private remember(version: number, op: Op): void {
    const r = this.s.recent;
    let entries = r.entries as RecentOp<Op>[];
    let start = r.start;
    let end = r.end;
    if (end === 0 || entries.length !== end || start > 4 * presenceHistory) {
      // Nothing kept yet (the empty list is shared), another state appended past our end, or
      // the dead prefix grew: continue on a copy.
      entries = entries.slice(start, end);
      end -= start;
      start = 0;
    }
    entries.push({ version, op });
    end++;
    if (end - start > presenceHistory) start = end - presenceHistory;
    this.s.recent = { entries, start, end };
  }

  // --- Presence ---

  private schedulePresence(): void {
    const s = this.s;
    if (s.timers.presence !== undefined || s.phase !== "joined") return;
    const due = s.lastPresenceMs === undefined ? s.nowMs : Math.max(s.nowMs, s.lastPresenceMs + presenceIntervalMs);
    this.setTimer("presence", due);
  }

  private sendPresence(): void {
    const s = this.s;
    if (s.phase !== "joined") return;
    s.lastPresenceMs = s.nowMs;
    // The server reads positions in its text at `version`: map them back through the pending edits.
    const pending = sync.pendingOp(s.sync, this.t);
    s.presenceApproximate = !this.t.isNoop(pending);
    const selection = (s.selection ?? []).map((r) => ({
      anchor: this.t.transformPositionBack(pending, r.anchor),
      head: this.t.transformPositionBack(pending, r.head),
    }));
    const request: PresenceRequest = { docId: s.docId, version: s.version, selection };
    if (s.user) request.user = s.user;
    this.command({ type: "sendPresence", request });
  }

  /** Takes a member's presence; returns whether the members changed. */
  private takePresence(message: PresenceMessage): boolean {
    const s = this.s;
    if (message.clientId === s.clientId) return false;
    if (message.selection === null) {
      if (s.futurePresence.has(message.clientId)) this.futureMut().delete(message.clientId);
      if (!s.members.has(message.clientId)) return false;
      this.membersMut().delete(message.clientId);
      return true;
    }
    if (message.version > s.version) {
      this.futureMut().set(message.clientId, message);
      return false;
    }
    this.placePresence(message);
    return true;
  }

  private placeFuturePresence(): void {
    const s = this.s;
    if (s.futurePresence.size === 0) return;
    let changed = false;
    for (const [clientId, message] of s.futurePresence) {
      if (message.version <= s.version) {
        this.futureMut().delete(clientId);
        this.placePresence(message);
        changed = true;
      }
    }
    if (changed) this.emitPresence();
  }

  /** Maps a presence message's selection from its version to the local text and stores it. */
  private placePresence(message: PresenceMessage): void {
    const s = this.s;
    const t = this.t;
    const ops: Op[] = [];
    const { entries, start, end } = s.recent;
    const oldest = end > start ? entries[start]!.version : s.version + 1;
    if (message.version >= oldest - 1) {
      for (let i = start; i < end; i++) if (entries[i]!.version > message.version) ops.push(entries[i]!.op);
    }
    ops.push(sync.pendingOp(s.sync, t));
    const length = t.length(s.text);
    const map = (p: number) => {
      for (const op of ops) p = t.transformPosition(op, p);
      return Math.max(0, Math.min(p, length));
    };
    const previous = s.members.get(message.clientId);
    this.membersMut().set(message.clientId, {
      clientId: message.clientId,
      user: message.user ?? previous?.user ?? { name: "", color: "" },
      selection: (message.selection ?? []).map((r) => ({ anchor: map(r.anchor), head: map(r.head) })),
    });
  }

  /** Moves the members' selections through a change of the local text. The author's cursor moves past its own insert. */
  private mapMembers(op: Op, author: string | undefined): void {
    const s = this.s;
    if (s.members.size === 0) return;
    const members = this.membersMut();
    for (const [clientId, m] of members) {
      if (m.selection.length === 0) continue;
      const stick = clientId === author;
      members.set(clientId, {
        ...m,
        selection: m.selection.map((r) => ({
          anchor: this.t.transformPosition(op, r.anchor, stick),
          head: this.t.transformPosition(op, r.head, stick),
        })),
      });
    }
    this.emitPresence();
  }

  private emitPresence(): void {
    this.emit("presence", { members: [...this.s.members.values()] });
  }

  // --- Timers ---

  private setTimer(name: TimerName, dueMs: number): void {
    this.s.timers = { ...this.s.timers, [name]: dueMs };
    this.command({ type: "setTimer", name, dueMs });
  }

  private clearTimer(name: TimerName): void {
    if (this.s.timers[name] === undefined) return;
    this.unsetTimer(name);
    this.command({ type: "clearTimer", name });
  }

  private unsetTimer(name: TimerName): void {
    const timers = { ...this.s.timers };
    delete timers[name];
    this.s.timers = timers;
  }

  /** Fires every timer due by now, earliest first (one may clear the others). */
  private fireTimers(): void {
    const s = this.s;
    for (;;) {
      let name: TimerName | undefined;
      for (const candidate of ["gap", "retry", "presence"] as const) {
        const due = s.timers[candidate];
        if (due !== undefined && due <= s.nowMs && (name === undefined || due < s.timers[name]!)) name = candidate;
      }
      if (name === undefined) return;
      this.unsetTimer(name);
      if (name === "gap") {
        this.attach(true);
      } else if (name === "retry") {
        const action = s.retry;
        s.retry = undefined;
        if (action === "join") {
          this.join(s.resume);
        } else if (action === "resubmit") {
          s.sentOpId = undefined;
          this.flush();
        }
      } else {
        this.sendPresence();
      }
    }
  }

  // --- Copy on write ---

  private queueMut(): Map<number, Queued<Op>> {
    if (!this.queue) this.s.queue = this.queue = new Map(this.s.queue);
    return this.queue;
  }

  private membersMut(): Map<string, Member> {
    if (!this.members) this.s.members = this.members = new Map(this.s.members);
    return this.members;
  }

  private futureMut(): Map<string, PresenceMessage> {
    if (!this.future) this.s.futurePresence = this.future = new Map(this.s.futurePresence);
    return this.future;
  }

  private emit<K extends EmittedEvent>(event: K, payload: DocumentEvents<Op, unknown>[K]): void {
    this.command({ type: "emit", event, payload } as Command<Op>);
  }

  private command(command: Command<Op>): void {
    if (this.out) this.out.push(command);
    else this.out = [command];
  }
}
