// One shared document as a client sees it. The decisions are the sync engine's (engine.ts): this
// class holds the engine's state and is its shell, turning method calls, hub messages, call
// results and timer firings into engine events, and carrying out the commands each event gives
// (calling the HubInvoker, setting timers, raising events) in order. It does no I/O of its own:
// a HubInvoker sends its requests and CollabClient feeds it what arrives.
//
// SyncedDocument is that shell for a document of any type (doctype.ts); CollabDocument adds the
// text API, RichTextDocument (rich-document.ts) the Delta API.

import type { Text } from "@codemirror/state";
import { textType, type DocType } from "./doctype.js";
import {
  initialStateOf,
  opIdReserve,
  step,
  type Command,
  type DocumentEvents,
  type EngineEvent,
  type EngineState,
  type Member,
  type TimerName,
} from "./engine.js";
import { CollabError, reasonOfCode } from "./errors.js";
import { Emitter } from "./events.js";
import {
  errorCode,
  type JoinResult,
  type OpMessage,
  type PresenceMessage,
  type ResetMessage,
  type SelectionRange,
  type SubmitRequest,
  type SubmitResult,
  type JoinRequest,
  type PresenceRequest,
  type UserInfo,
} from "./messages.js";
import * as ot from "./ot.js";
import type { TextOperation } from "./ot.js";
import * as sync from "./sync.js";
import type { SyncState } from "./sync.js";
import { restoredState, unsentOf, type AnyUnsentEdits, type UnsentEdits } from "./unsent.js";

export type { ChangeOrigin, DocumentEvents, Member } from "./engine.js";

/** The hub methods a document calls; CollabClient implements it over one SignalR connection. */
export interface HubInvoker {
  /** The result's ops and document are read by its `type` (readJoinResult). */
  join(request: JoinRequest): Promise<JoinResult<unknown>>;
  /** `request.op` is in its wire form: a TextOperation, or an array of Delta ops. */
  submit(request: SubmitRequest<unknown>): Promise<SubmitResult>;
  setPresence(request: PresenceRequest): Promise<void>;
  leave(docId: string): Promise<void>;
}

/** What a document asks of the client that owns it. */
export interface DocumentHost {
  readonly clientId: string;
  user(): UserInfo | undefined;
  nextOpId(): number;
  /** The last op id `nextOpId` handed out (0 before the first). */
  lastOpId(): number;
  /** The document must be joined on the node at `url` instead. */
  redirect(doc: AnySyncedDocument, url: string): void;
}

/** A document of any type. */
export type AnySyncedDocument = SyncedDocument<any, any, any>;

/**
 * A document opened with `CollabClient.open`, of any type: `Doc` its documents, `Op` its ops,
 * `Snapshot` a document as `reset` gives it. Its subclasses add the edits of their type; listen
 * to `change` for everyone else's.
 */
export class SyncedDocument<Doc, Op, Snapshot> extends Emitter<DocumentEvents<Op, Snapshot>> {
  /** Everything the document knows; replaced by each engine step, never changed in place. */
  protected engine: EngineState<Doc, Op>;
  /** The connection attached, if any: the engine's send commands go to it. */
  private invoker: HubInvoker | undefined;
  private readonly timers = new Map<TimerName, ReturnType<typeof setTimeout>>();
  /** The shell's clock: Date.now(), but never before a timer that has fired, nor before an earlier reading. */
  private clock = 0;
  /** Commands not carried out yet: an event raised while carrying out a step may cause another step, whose commands wait their turn. */
  private readonly work: Command<Op>[] = [];
  private working = false;
  private firstJoin: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private leaving: Promise<void> | undefined;
  /** @internal How many redirects in a row; reset by a join that sticks. */
  redirects = 0;

  /**
   * @internal Created by CollabClient.open; `unsent` (checked by then, of `docType`) starts it
   * from edits another client instance left unsent. `snapshot` gives a document as `reset` does.
   */
  constructor(
    readonly docId: string,
    private readonly host: DocumentHost,
    /** The document's type, fixed when the document was created. */
    readonly docType: DocType<Doc, Op>,
    private readonly snapshot: (doc: Doc) => Snapshot,
    unsent?: AnyUnsentEdits,
  ) {
    super();
    if (unsent) {
      this.engine = restoredState(unsent, host.user(), docType);
    } else {
      this.engine = initialStateOf(docType);
      this.dispatch({ type: "open", docId, clientId: host.clientId, user: host.user(), nowMs: this.now() });
    }
  }

  /**
   * The local edits the server has not confirmed, as plain data to keep (in IndexedDB, a file)
   * and give to `CollabClient.open` after a reload or a crash; undefined when there are none.
   * Keep the newest: each one holds every unconfirmed edit. See UnsentEdits.
   */
  unsent(): AnyUnsentEdits | undefined {
    return unsentOf(this.engine, this.host.lastOpId(), this.now());
  }

  /** The clientId this document joins with: the client's, or that of the unsent edits it was opened with. */
  get clientId(): string {
    return this.engine.clientId;
  }

  /** The version of the server state the local text is based on; -1 before the first join. */
  get version(): number {
    return this.engine.version;
  }

  /** Whether the server allows this member to read only. */
  get readOnly(): boolean {
    return this.engine.readOnly;
  }

  /** Local edits not yet confirmed by the server. */
  get pendingEdits(): number {
    return sync.pendingEdits(this.state);
  }

  /** Whether every local edit has been confirmed. */
  get synchronized(): boolean {
    return this.state.kind === "Synchronized";
  }

  /** The other members, with their selections mapped to the local text. */
  get members(): readonly Member[] {
    return [...this.engine.members.values()];
  }

  /** The unconfirmed edits (sync.ts); the shared sync scenarios read it. */
  private get state(): SyncState<Op> {
    return this.engine.sync;
  }

  /** Resolves when every local edit made so far has been confirmed by the server. */
  whenSynchronized(): Promise<void> {
    if (this.synchronized) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.on("pending", (e) => {
        if (e.pendingEdits === 0 && this.synchronized) {
          off();
          resolve();
        }
      });
    });
  }

  /**
   * A local edit, `raw` in any wire form, which `op` reads into the type's canonical op: applies
   * it and sends it when it can. Throws an Error when the document is closed or read-only, and a RangeError, changing
   * and sending nothing, when `raw` does not apply to the local document (the server would refuse
   * it as `invalid_op`, PROTOCOL §1).
   */
  protected edit(raw: unknown, op: (raw: unknown) => Op): void {
    if (this.engine.closed) throw new Error(`Document ${this.docId} is closed.`);
    if (this.engine.readOnly) throw new Error(`Document ${this.docId} is read-only.`);
    const reason = this.docType.validate(this.engine.text, raw);
    if (reason !== null) throw new RangeError(`The edit does not apply to document ${this.docId}: ${reason}.`);
    const canonical = op(raw);
    if (this.docType.isNoop(canonical)) return;
    this.dispatch({ type: "localEdit", op: canonical, nowMs: this.now() });
  }

  /** Sets this member's selection (positions in the local text); sent to the others, throttled. */
  setSelection(selection: readonly SelectionRange[]): void {
    this.dispatch({ type: "presenceLocal", selection, nowMs: this.now() });
  }

  /** @internal The user's name or color changed: tell the others. */
  userChanged(): void {
    this.dispatch({ type: "userChanged", user: this.host.user(), nowMs: this.now() });
  }

  /** Leaves the document; it cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.engine.closed) return;
    this.dispatch({ type: "leave", nowMs: this.now() });
    this.invoker = undefined;
    this.firstJoin?.reject(new Error(`Document ${this.docId} was closed before it was joined.`));
    this.firstJoin = undefined;
    await this.leaving;
  }

  /** @internal Whether close was called. */
  get isClosed(): boolean {
    return this.engine.closed;
  }

  /** @internal The first join cannot happen (the connection or the join was refused for good): `open` rejects. */
  failOpen(error: CollabError): void {
    this.firstJoin?.reject(error);
    this.firstJoin = undefined;
  }

  /** @internal Resolves after the first join, rejects if it fails for good. */
  opened(): Promise<void> {
    // A document restored from unsent edits has its text already: it joins in the background.
    if (this.engine.version >= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.firstJoin = { resolve, reject };
    });
  }

  /**
   * @internal A connection is up: join on it, resuming from `version` (with `sinceVersion`)
   * unless `resume` is false.
   */
  attach(invoker: HubInvoker, resume = true): void {
    if (this.engine.closed) return;
    this.invoker = invoker;
    // The user may have changed while the document was on no connection (between redirects).
    const user = this.host.user();
    if (user !== this.engine.user) this.dispatch({ type: "userChanged", user, nowMs: this.now() });
    this.dispatch({ type: "connected", resume, nowMs: this.now() });
  }

  /** @internal The connection is gone; what is unconfirmed is sent again after the next attach. */
  detach(): void {
    this.invoker = undefined;
    this.dispatch({ type: "disconnected", nowMs: this.now() });
  }

  /** @internal An `Op` message for this document, its op read by the document's type. */
  receiveOp(message: OpMessage<Op>): void {
    this.dispatch({ type: "serverOp", message, nowMs: this.now() });
  }

  /** @internal A `Presence` message for this document. */
  receivePresence(message: PresenceMessage): void {
    this.dispatch({ type: "presenceRemote", message, nowMs: this.now() });
  }

  /**
   * @internal A `Reset` message for this document: tells the `reset` listeners (who may close it),
   * then joins again, without `sinceVersion`.
   */
  receiveReset(message: ResetMessage): void {
    if (this.engine.closed) return;
    this.emitReset(message.reason, message.movedTo);
    if (this.engine.closed) return;
    this.dispatch({ type: "reset", nowMs: this.now() });
  }

  /** Raises `reset` with the unconfirmed local edits; a listener may close the document. */
  private emitReset(reason: string, movedTo: string | undefined): void {
    const pending = sync.pendingOp(this.state, this.docType);
    const unconfirmed = this.docType.isNoop(pending) ? undefined : { op: pending, serverText: this.snapshot(this.engine.serverText) };
    this.emit("reset", { reason, movedTo, unconfirmed });
  }

  /**
   * Runs one engine step at the shell's time, then its commands; while an earlier step's
   * commands are being carried out (an event handler made another change), after those.
   */
  private dispatch(event: EngineEvent<Op>): void {
    if (this.engine.opIds.length < opIdReserve) {
      const ids: number[] = [];
      while (this.engine.opIds.length + ids.length < opIdReserve) ids.push(this.host.nextOpId());
      this.engine = step(this.engine, { type: "opIds", ids }).state;
    }
    const { state, commands } = step(this.engine, event);
    this.engine = state;
    if (this.working) {
      for (const command of commands) this.work.push(command);
      return;
    }
    this.working = true;
    try {
      for (const command of commands) this.run(command);
      for (let i = 0; i < this.work.length; i++) this.run(this.work[i]!);
    } finally {
      this.work.length = 0;
      this.working = false;
    }
  }

  private run(command: Command<Op>): void {
    switch (command.type) {
      case "sendJoin":
        return this.sendJoin(command.session, command.request);
      case "sendSubmit":
        return this.sendSubmit(command.session, command.request);
      case "sendPresence":
        if (this.invoker) call(() => this.invoker!.setPresence(command.request)).catch(() => undefined);
        return;
      case "sendLeave":
        if (this.invoker) this.leaving = call(() => this.invoker!.leave(command.docId)).catch(() => undefined);
        return;
      case "applyRemote":
        this.emit("change", { op: command.op, origin: command.origin, clientId: command.clientId });
        return;
      case "emit":
        if (command.event === "joined") {
          this.firstJoin?.resolve();
          this.firstJoin = undefined;
        }
        this.emit(command.event, command.payload as never);
        return;
      case "setTimer":
        return this.setTimer(command.name, command.dueMs);
      case "clearTimer":
        clearTimeout(this.timers.get(command.name));
        this.timers.delete(command.name);
        return;
      case "redirect":
        this.invoker = undefined;
        this.host.redirect(this, command.url);
        return;
      case "failOpen":
        this.failOpen(new CollabError(command.code, reasonOfCode(command.code), command.message.replace(/^.*HubException: /, "")));
        return;
    }
  }

  private sendJoin(session: number, request: JoinRequest): void {
    const invoker = this.invoker;
    if (!invoker) return;
    call(() => invoker.join(request)).then(
      (result) => {
        const current = session === this.engine.session && this.engine.phase === "joining";
        if (current && result.movedTo && !result.redirect && this.engine.version >= 0) {
          // Renamed away while this document was not joined (it missed the Reset): said as that
          // Reset would have. A listener that closes the document leaves the new, empty one.
          this.emitReset("renamed", result.movedTo);
          if (this.engine.closed) {
            call(() => invoker.leave(request.docId)).catch(() => undefined);
            return;
          }
        }
        // A join the engine takes (this session's, while joining) and that stays on this node ends a run of redirects.
        if (!result.redirect && current) this.redirects = 0;
        // Its ops and document were read by its own type, which the engine checks is this one's.
        this.dispatch({ type: "joinResult", session, result: result as JoinResult<Op>, nowMs: this.now() });
      },
      (error: unknown) =>
        this.dispatch({ type: "joinFailed", session, code: errorCode(error), message: messageOf(error), random: Math.random(), nowMs: this.now() }),
    );
  }

  private sendSubmit(session: number, request: SubmitRequest<unknown>): void {
    const invoker = this.invoker;
    if (!invoker) return;
    const opId = request.opId;
    call(() => invoker.submit(request)).then(
      (result) => this.dispatch({ type: "submitResult", session, opId, version: result.version, nowMs: this.now() }),
      (error: unknown) =>
        this.dispatch({ type: "submitFailed", session, opId, code: errorCode(error), message: messageOf(error), random: Math.random(), nowMs: this.now() }),
    );
  }

  /** A timer of `name` (replacing any) that sends a tick at `dueMs`. */
  private setTimer(name: TimerName, dueMs: number): void {
    clearTimeout(this.timers.get(name));
    const timer = setTimeout(() => {
      this.timers.delete(name);
      // A timer that fires has come due, whatever Date.now() says (a timer may fire a little early).
      this.clock = Math.max(this.clock, dueMs);
      this.dispatch({ type: "tick", nowMs: this.now() });
    }, Math.max(0, dueMs - this.now()));
    this.timers.set(name, timer);
  }

  private now(): number {
    this.clock = Math.max(this.clock, Date.now());
    return this.clock;
  }
}

/**
 * A text document opened with `CollabClient.open`. Make local edits with `applyLocal` (or
 * `insert`, `delete`); listen to `change` for everyone else's. All positions are UTF-16 code units.
 */
export class CollabDocument extends SyncedDocument<Text, TextOperation, string> {
  /** `text` as a string: made by the first read after a change. */
  private textString: { readonly of: Text; readonly string: string } | undefined;

  /** @internal Created by CollabClient.open; `unsent` (checked by then) starts it from edits another client instance left unsent. */
  constructor(docId: string, host: DocumentHost, unsent?: UnsentEdits) {
    super(docId, host, textType, (text) => text.toString(), unsent);
  }

  /** The unconfirmed edits as plain data (see SyncedDocument.unsent); undefined when there are none. */
  override unsent(): UnsentEdits | undefined {
    return super.unsent() as UnsentEdits | undefined;
  }

  /**
   * The local text: the server's text at `version` with the pending local edits applied. The
   * first read after a change builds the string, O(length); later reads return it until the
   * next change. To follow changes, apply each `change` event's op rather than reading this.
   */
  get text(): string {
    const text = this.engine.text;
    if (this.textString?.of !== text) this.textString = { of: text, string: text.toString() };
    return this.textString.string;
  }

  /**
   * A local edit: applies `op` to the local text and sends it when it can. `op` must apply to
   * the current `text`: its retains and deletes must not run past the end, and it must leave no
   * lone surrogate (it may not split a surrogate pair nor insert half of one). Otherwise it
   * throws a RangeError, changing and sending nothing: the server would refuse it as
   * `invalid_op` (PROTOCOL §1).
   */
  applyLocal(op: TextOperation): void {
    this.edit(op, () => op);
  }

  /** Inserts `text` at `position`; throws a RangeError if `text` has a lone surrogate. */
  insert(position: number, text: string): void {
    this.applyLocal(ot.insert(position, text));
  }

  /** Deletes `length` code units at `position`. */
  delete(position: number, length: number): void {
    this.applyLocal(ot.del(position, length));
  }
}

/** Calls `invoke`, turning a synchronous throw into a rejected promise. */
function call<T>(invoke: () => Promise<T>): Promise<T> {
  try {
    return Promise.resolve(invoke());
  } catch (error) {
    return Promise.reject(error);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
