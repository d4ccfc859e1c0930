// One shared document as a client sees it: the local text, the version of the server state it
// is based on, the edits not yet confirmed (sync.ts) and the other members' presence. It does
// no I/O of its own: a HubInvoker sends its requests and CollabClient feeds it what arrives.

import type { Text } from "@codemirror/state";
import { Emitter } from "./events.js";
import {
  errorCode,
  type ErrorCode,
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
import { isBeforeDuplicateCheck, retryOf } from "./error-codes.js";
import * as ot from "./ot.js";
import type { TextOperation } from "./ot.js";
import * as sync from "./sync.js";
import type { SyncState } from "./sync.js";

/** The hub methods a document calls; CollabClient implements it over one SignalR connection. */
export interface HubInvoker {
  join(request: JoinRequest): Promise<JoinResult>;
  submit(request: SubmitRequest): Promise<SubmitResult>;
  setPresence(request: PresenceRequest): Promise<void>;
  leave(docId: string): Promise<void>;
}

/** What a document asks of the client that owns it. */
export interface DocumentHost {
  readonly clientId: string;
  user(): UserInfo | undefined;
  nextOpId(): number;
  /** The document must be joined on the node at `url` instead. */
  redirect(doc: CollabDocument, url: string): void;
}

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
  /** After a reconnect the server could not send the missed ops, so the text was reconciled with its whole text. */
  | "resync"
  /** Local edits the server refused (read-only, invalid) were taken back. */
  | "revert";

export interface DocumentEvents {
  /** The local text changed by something other than `applyLocal`: apply `op` to the text you show. */
  change: { readonly op: TextOperation; readonly origin: ChangeOrigin; readonly clientId: string | undefined };
  /** The members or their selections changed. */
  presence: { readonly members: readonly Member[] };
  /** The number of local edits not yet confirmed by the server changed. */
  pending: { readonly pendingEdits: number };
  /** The document was joined (again). */
  joined: { readonly version: number; readonly readOnly: boolean; readonly resumed: boolean };
  /** The server refused something; the document has recovered as well as it could. */
  error: { readonly code: ErrorCode | undefined; readonly message: string };
}

type Queued = { readonly kind: "op"; readonly message: OpMessage } | { readonly kind: "ack"; readonly opId: number };

/** How many recent server ops are kept to map presence that refers to an older version. */
const presenceHistory = 256;
/** How long a gap in the version sequence may last before the document resumes to fill it. */
const gapTimeoutMs = 5_000;
/** How often presence is sent at most: under the server's default 20 a second (PROTOCOL §6), which refuses more with rate_limited. */
const presenceIntervalMs = 60;

/**
 * A document opened with `CollabClient.open`. Make local edits with `applyLocal` (or `insert`,
 * `delete`); listen to `change` for everyone else's. All positions are UTF-16 code units.
 */
export class CollabDocument extends Emitter<DocumentEvents> {
  // Both texts are ropes (ot.ts), so applying an op costs O(op size + log n), not a copy of the
  // document; they share every part the pending edits do not touch.
  private _text: Text = ot.toText("");
  /** `_text` as a string: made by the first `text` read after a change, dropped by the next change. */
  private textString: string | undefined = "";
  /** The server's text at `_version`: `_text` without the pending edits. */
  private serverText: Text = this._text;
  private _version = -1;
  private _readOnly = false;
  private state: SyncState = sync.synchronized;
  private readonly queue = new Map<number, Queued>();
  private readonly recent: { version: number; op: TextOperation }[] = [];
  private readonly _members = new Map<string, Member>();
  private readonly futurePresence = new Map<string, PresenceMessage>();
  private invoker: HubInvoker | undefined;
  /** Increases on every attach and detach, so the results of an older session are ignored. */
  private session = 0;
  private joined = false;
  private sentOpId: number | undefined;
  /** The last op submitted on any connection: until confirmed it may or may not be committed. */
  private everSentOpId: number | undefined;
  private selection: SelectionRange[] | undefined;
  private presenceTimer: ReturnType<typeof setTimeout> | undefined;
  private presenceApproximate = false;
  private lastPresenceSent = 0;
  private gapTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDelay = 0;
  private closed = false;
  private firstJoin: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /** @internal How many redirects in a row; reset by a join that sticks. */
  redirects = 0;

  /** @internal Created by CollabClient.open. */
  constructor(
    readonly docId: string,
    private readonly host: DocumentHost,
  ) {
    super();
  }

  /**
   * The local text: the server's text at `version` with the pending local edits applied. The
   * first read after a change builds the string, O(length); later reads return it until the
   * next change. To follow changes, apply each `change` event's op rather than reading this.
   */
  get text(): string {
    return (this.textString ??= this._text.toString());
  }

  /** The version of the server state the local text is based on; -1 before the first join. */
  get version(): number {
    return this._version;
  }

  /** Whether the server allows this member to read only. */
  get readOnly(): boolean {
    return this._readOnly;
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
    return [...this._members.values()];
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
   * A local edit: applies `op` to the local text and sends it when it can. `op` must apply to
   * the current `text`: its retains and deletes must not run past the end, and it must leave no
   * lone surrogate (it may not split a surrogate pair nor insert half of one). Otherwise it
   * throws a RangeError, changing and sending nothing: the server would refuse it as
   * `invalid_op` (PROTOCOL §1).
   */
  applyLocal(op: TextOperation): void {
    if (this.closed) throw new Error(`Document ${this.docId} is closed.`);
    if (this._readOnly) throw new Error(`Document ${this.docId} is read-only.`);
    const reason = ot.validate(this._text, op);
    if (reason !== null) throw new RangeError(`The edit does not apply to document ${this.docId}: ${reason}.`);
    if (op.length === 0) return;
    this.setText(ot.applyToText(this._text, op));
    this.mapMembers(op, undefined);
    this.state = sync.applyClient(this.state, op, () => this.host.nextOpId());
    this.emit("pending", { pendingEdits: this.pendingEdits });
    this.flush();
  }

  /** Inserts `text` at `position`; throws a RangeError if `text` has a lone surrogate. */
  insert(position: number, text: string): void {
    this.applyLocal(ot.insert(position, text));
  }

  /** Deletes `length` code units at `position`. */
  delete(position: number, length: number): void {
    this.applyLocal(ot.del(position, length));
  }

  /** Sets this member's selection (positions in the local text); sent to the others, throttled. */
  setSelection(selection: readonly SelectionRange[]): void {
    this.selection = selection.map((r) => ({ anchor: r.anchor, head: r.head }));
    this.schedulePresence();
  }

  /** @internal The user's name or color changed: tell the others. */
  userChanged(): void {
    this.schedulePresence();
  }

  /** Leaves the document; it cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const invoker = this.joined ? this.invoker : undefined;
    this.detach();
    this.firstJoin?.reject(new Error(`Document ${this.docId} was closed before it was joined.`));
    if (invoker) await invoker.leave(this.docId).catch(() => undefined);
  }

  /** @internal Whether close was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal Resolves after the first join, rejects if it fails for good. */
  opened(): Promise<void> {
    if (this._version >= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.firstJoin = { resolve, reject };
    });
  }

  /**
   * @internal A connection is up: join on it, resuming from `version` (with `sinceVersion`)
   * unless `resume` is false.
   */
  attach(invoker: HubInvoker, resume = true): void {
    if (this.closed) return;
    this.detach();
    this.invoker = invoker;
    const session = this.session;
    void this.join(invoker, session, resume);
  }

  /** @internal The connection is gone; what is unconfirmed is sent again after the next attach. */
  detach(): void {
    this.session++;
    this.invoker = undefined;
    this.joined = false;
    this.sentOpId = undefined;
    clearTimeout(this.gapTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.presenceTimer);
    this.gapTimer = this.retryTimer = this.presenceTimer = undefined;
  }

  /** @internal An `Op` message for this document. */
  receiveOp(message: OpMessage): void {
    if (this.closed || message.version <= this._version) return;
    if (!this.queue.has(message.version) || this.queue.get(message.version)?.kind === "ack") {
      this.queue.set(message.version, { kind: "op", message });
    }
    if (this.joined) this.drain();
  }

  /** @internal A `Presence` message for this document. */
  receivePresence(message: PresenceMessage): void {
    if (this.closed || message.clientId === this.host.clientId) return;
    if (message.selection === null) {
      this.futurePresence.delete(message.clientId);
      if (this._members.delete(message.clientId)) this.emitPresence();
      return;
    }
    if (message.version > this._version) {
      this.futurePresence.set(message.clientId, message);
      return;
    }
    this.placePresence(message);
    this.emitPresence();
  }

  /**
   * @internal A `Reset` message for this document: join again, without `sinceVersion`. After a
   * delete the document starts a new history, whose ops after our version are not ops on our text.
   */
  receiveReset(_message: ResetMessage): void {
    const invoker = this.invoker;
    if (this.closed || !invoker) return;
    this.attach(invoker, false);
  }

  private async join(invoker: HubInvoker, session: number, resume: boolean): Promise<void> {
    const user = this.host.user();
    const request: JoinRequest = { docId: this.docId, clientId: this.host.clientId };
    if (resume && this._version >= 0) request.sinceVersion = this._version;
    if (user) request.user = user;
    let result: JoinResult;
    try {
      result = await invoker.join(request);
    } catch (error) {
      if (session !== this.session) return;
      const code = errorCode(error);
      if (code === "unknown_version" && resume) {
        void this.join(invoker, session, false);
      } else if (code !== undefined && retryOf(code) !== "never") {
        this.retryLater(() => void this.join(invoker, session, resume));
      } else if (code !== undefined) {
        // Refused for good (invalid_doc_id, forbidden, unauthorized): nothing to retry.
        const message = error instanceof Error ? error.message : String(error);
        this.firstJoin?.reject(new Error(message));
        this.firstJoin = undefined;
        this.emit("error", { code, message });
      }
      // Otherwise the connection failed: the client attaches again when it is back.
      return;
    }
    if (session !== this.session) return;
    if (result.redirect) {
      this.detach();
      this.host.redirect(this, result.redirect);
      return;
    }
    this.redirects = 0;
    this.retryDelay = 0;
    this._readOnly = result.readOnly;
    const resumed = this._version >= 0;
    if (!resumed) {
      const text = result.text ?? "";
      this.serverText = ot.toText(text);
      this.setText(this.serverText, text);
      this._version = result.version;
    } else if (result.ops) {
      for (const message of result.ops) this.receiveOp(message);
      this.applyQueued();
    } else if (result.text !== undefined) {
      if (this.state.kind !== "Synchronized" && this.everSentOpId === this.state.outstanding.opId) {
        // The outstanding op may have been committed before the connection dropped, and the
        // whole text cannot tell. Submitting it again with its opId settles it: the server
        // either finds it committed or applies it now; either way it is in the server's text.
        const outstanding = this.state.outstanding;
        try {
          await invoker.submit({ docId: this.docId, baseVersion: this._version, op: outstanding.op, opId: outstanding.opId });
        } catch (error) {
          if (session !== this.session) return;
          const code = errorCode(error);
          if (code === undefined) return; // The connection failed again.
          if (isBeforeDuplicateCheck(code)) {
            // Refused before the server looked for it: it may still be committed. Ask again later.
            this.retryLater(() => void this.join(invoker, session, false));
            return;
          }
          // Refused after the duplicate check, so not committed: it goes with the other pending edits.
          this.everSentOpId = undefined;
          void this.join(invoker, session, false);
          return;
        }
        if (session !== this.session) return;
        this.serverText = ot.applyToText(this.serverText, outstanding.op);
        this.state = sync.serverAck(this.state, () => this.host.nextOpId());
        this.emit("pending", { pendingEdits: this.pendingEdits });
        void this.join(invoker, session, false);
        return;
      }
      this.resync(result.text, result.version);
    }
    // Whatever was queued up to the joined version is in the text now.
    for (const version of this.queue.keys()) if (version <= result.version) this.queue.delete(version);
    if (this._version < result.version) {
      // The ops we were given did not reach the version joined: start again from the whole text.
      void this.join(invoker, session, false);
      return;
    }
    this._members.clear();
    this.futurePresence.clear();
    for (const p of result.presence) this.receivePresence(p);
    this.joined = true;
    this.emitPresence();
    this.emit("joined", { version: this._version, readOnly: this._readOnly, resumed });
    this.emit("pending", { pendingEdits: this.pendingEdits });
    if (this._readOnly && this.state.kind !== "Synchronized") this.revert();
    this.firstJoin?.resolve();
    this.firstJoin = undefined;
    this.drain();
    this.flush();
    if (this.selection) this.schedulePresence();
  }

  /**
   * The server sent its whole text instead of the missed ops. Reconcile the local edits with it
   * as if the server's changes were one edit: the difference between the text we last knew
   * and the server's. Edits in the same place may then merge less neatly than with real ops,
   * but none is lost.
   */
  private resync(serverText: string, version: number): void {
    // O(length), as receiving the whole text is.
    const serverChange = ot.diff(this.serverText.toString(), serverText);
    const { state, op } = sync.rebase(this.state, serverChange, () => this.host.nextOpId());
    for (const v of this.queue.keys()) if (v <= version) this.queue.delete(v);
    this.recent.length = 0;
    this._version = version;
    this.serverText = ot.toText(serverText);
    this.state = state;
    this.applyRemote(op, "resync", undefined);
    this.emit("pending", { pendingEdits: this.pendingEdits });
  }

  /** Local edits the server will never accept: take them back so the text matches the server's. */
  private revert(): void {
    const pending = sync.pendingOp(this.state);
    this.state = sync.synchronized;
    this.applyRemote(ot.invert(pending, this.serverText), "revert", undefined);
    this.emit("pending", { pendingEdits: 0 });
  }

  /** `after` is the local text after `op` when the caller has it already. */
  private applyRemote(op: TextOperation, origin: ChangeOrigin, clientId: string | undefined, after?: Text): void {
    if (op.length === 0) return;
    this.setText(after ?? ot.applyToText(this._text, op));
    // Our own selection is kept in local positions too: move it with the text (the others
    // map it themselves, so this is not news to send).
    this.selection = this.selection?.map((r) => ({
      anchor: ot.transformPosition(op, r.anchor),
      head: ot.transformPosition(op, r.head),
    }));
    this.mapMembers(op, clientId);
    this.emit("change", { op, origin, clientId });
  }

  private setText(text: Text, asString?: string): void {
    this._text = text;
    this.textString = asString;
  }

  /** Applies queued ops and acknowledgements in version order while the next one is there. */
  private drain(): void {
    const edits = this.pendingEdits;
    const kind = this.state.kind;
    this.applyQueued();
    if (this.pendingEdits !== edits || this.state.kind !== kind) this.emit("pending", { pendingEdits: this.pendingEdits });
    this.placeFuturePresence();
    clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
    if (this.queue.size > 0 && this.invoker) {
      // A version is missing: it should arrive, but if it does not, resume to fetch it.
      const invoker = this.invoker;
      this.gapTimer = setTimeout(() => this.attach(invoker), gapTimeoutMs);
    }
  }

  private applyQueued(): void {
    for (;;) {
      const next = this.queue.get(this._version + 1);
      if (!next) return;
      this.queue.delete(this._version + 1);
      const outstanding = this.state.kind === "Synchronized" ? undefined : this.state.outstanding;
      const own =
        next.kind === "ack"
          ? next.opId === outstanding?.opId
          : next.message.clientId === this.host.clientId && next.message.opId === outstanding?.opId;
      if (own && outstanding) {
        this._version++;
        const state = sync.serverAck(this.state, () => this.host.nextOpId());
        // With nothing left pending the local text is the server's: share it rather than apply the op again.
        this.serverText = state.kind === "Synchronized" ? this._text : ot.applyToText(this.serverText, outstanding.op);
        this.remember(this._version, outstanding.op);
        this.state = state;
        this.sentOpId = undefined;
        this.flush();
        if (this.presenceApproximate && this.synchronized) this.schedulePresence();
      } else if (next.kind === "op") {
        const wasSynchronized = this.state.kind === "Synchronized";
        const { state, op } = sync.applyServer(this.state, next.message.op);
        this.state = state;
        this._version++;
        this.serverText = ot.applyToText(this.serverText, next.message.op);
        this.remember(this._version, next.message.op);
        // Nothing pending: the local text was the server's and `op` is the server's op, so the
        // local text is the new server text and need not be built a second time.
        this.applyRemote(op, "remote", next.message.clientId, wasSynchronized ? this.serverText : undefined);
      } else {
        // An acknowledgement of an op that is not outstanding: the session guards make this
        // unreachable, but if it happens the text is no longer known, so start again from the server's.
        this.queue.clear();
        if (this.invoker) void this.join(this.invoker, this.session, false);
        return;
      }
    }
  }

  private remember(version: number, op: TextOperation): void {
    this.recent.push({ version, op });
    if (this.recent.length > presenceHistory) this.recent.splice(0, this.recent.length - presenceHistory);
  }

  /** Sends the outstanding op if it has not been sent on this connection yet. */
  private flush(): void {
    if (!this.joined || !this.invoker || this.state.kind === "Synchronized") return;
    const outstanding = this.state.outstanding;
    if (this.sentOpId === outstanding.opId) return;
    this.sentOpId = this.everSentOpId = outstanding.opId;
    const invoker = this.invoker;
    const session = this.session;
    const request: SubmitRequest = {
      docId: this.docId,
      baseVersion: this._version,
      op: outstanding.op,
      opId: outstanding.opId,
    };
    invoker.submit(request).then(
      (result) => {
        if (session !== this.session || this.closed) return;
        this.retryDelay = 0;
        if (result.version > this._version && !this.queue.has(result.version)) {
          this.queue.set(result.version, { kind: "ack", opId: request.opId });
        } else if (result.version <= this._version && this.state.kind !== "Synchronized" && this.state.outstanding.opId === request.opId) {
          // Still outstanding, yet its version is one we applied as another op: our idea of the
          // server's text is wrong. Only the whole text can fix it.
          void this.join(invoker, session, false);
          return;
        }
        this.drain();
      },
      (error: unknown) => {
        if (session !== this.session || this.closed) return;
        const code = errorCode(error);
        if (code === undefined) return; // The connection failed; the op is sent again after the next attach.
        const retry = retryOf(code);
        if (retry === "later") {
          this.retryLater(() => {
            this.sentOpId = undefined;
            this.flush();
          });
        } else if (retry === "rejoin") {
          // not_joined: the server forgot the membership. unknown_version: it has no version we
          // can name, which the application hears of, as from the .NET client. Either way: resume.
          if (code === "unknown_version") this.emit("error", { code, message: error instanceof Error ? error.message : String(error) });
          this.attach(invoker);
        } else {
          // forbidden, invalid_op, too_large: these edits will never be accepted.
          if (code === "forbidden") this._readOnly = true;
          this.revert();
          this.emit("error", { code, message: error instanceof Error ? error.message : String(error) });
          this.attach(invoker);
        }
      },
    );
  }

  private retryLater(action: () => void): void {
    clearTimeout(this.retryTimer);
    this.retryDelay = Math.min(Math.max(this.retryDelay * 2, 200), 5_000);
    this.retryTimer = setTimeout(action, this.retryDelay * (0.5 + Math.random() / 2));
  }

  private schedulePresence(): void {
    if (this.presenceTimer !== undefined || !this.joined) return;
    const wait = Math.max(0, this.lastPresenceSent + presenceIntervalMs - Date.now());
    this.presenceTimer = setTimeout(() => {
      this.presenceTimer = undefined;
      this.sendPresence();
    }, wait);
  }

  private sendPresence(): void {
    const invoker = this.invoker;
    if (!invoker || !this.joined || this.closed) return;
    this.lastPresenceSent = Date.now();
    const pending = sync.pendingOp(this.state);
    this.presenceApproximate = pending.length > 0;
    const selection = (this.selection ?? []).map((r) => ({
      anchor: ot.transformPositionBack(pending, r.anchor),
      head: ot.transformPositionBack(pending, r.head),
    }));
    const request: PresenceRequest = { docId: this.docId, version: this._version, selection };
    const user = this.host.user();
    if (user) request.user = user;
    invoker.setPresence(request).catch(() => undefined);
  }

  private placeFuturePresence(): void {
    if (this.futurePresence.size === 0) return;
    let changed = false;
    for (const [clientId, message] of this.futurePresence) {
      if (message.version <= this._version) {
        this.futurePresence.delete(clientId);
        this.placePresence(message);
        changed = true;
      }
    }
    if (changed) this.emitPresence();
  }

  /** Maps a presence message's selection from its version to the local text and stores it. */
  private placePresence(message: PresenceMessage): void {
    const ops: TextOperation[] = [];
    const oldest = this.recent.length > 0 ? this.recent[0].version : this._version + 1;
    if (message.version >= oldest - 1) {
      for (const r of this.recent) if (r.version > message.version) ops.push(r.op);
    }
    ops.push(sync.pendingOp(this.state));
    const length = this._text.length;
    const map = (p: number) => {
      for (const op of ops) p = ot.transformPosition(op, p);
      return Math.max(0, Math.min(p, length));
    };
    const previous = this._members.get(message.clientId);
    this._members.set(message.clientId, {
      clientId: message.clientId,
      user: message.user ?? previous?.user ?? { name: "", color: "" },
      selection: (message.selection ?? []).map((r) => ({ anchor: map(r.anchor), head: map(r.head) })),
    });
  }

  /** Moves the members' selections through a change of the local text. The author's cursor moves past its own insert. */
  private mapMembers(op: TextOperation, author: string | undefined): void {
    if (this._members.size === 0) return;
    for (const [clientId, m] of this._members) {
      if (m.selection.length === 0) continue;
      const stick = clientId === author;
      this._members.set(clientId, {
        ...m,
        selection: m.selection.map((r) => ({
          anchor: ot.transformPosition(op, r.anchor, stick),
          head: ot.transformPosition(op, r.head, stick),
        })),
      });
    }
    this.emitPresence();
  }

  private emitPresence(): void {
    this.emit("presence", { members: this.members });
  }
}
