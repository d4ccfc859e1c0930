// The protocol client: one SignalR connection per server node, with reconnects (exponential
// backoff with jitter, forever, sooner when the browser says it is back online), documents that
// resume where they were after every reconnect, and redirects to the node that owns a document.

import {
  HubConnection,
  HubConnectionBuilder,
  HubConnectionState,
  HttpTransportType,
  LogLevel,
  type ILogger,
} from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { reconnectDelay, type ReconnectPolicy } from "./backoff.js";
import { CollabDocument, type AnySyncedDocument, type DocumentHost, type HubInvoker } from "./document.js";
import { CollabError, diagnoseHandshake } from "./errors.js";
import { Emitter } from "./events.js";
import { checkUnsent, type RichTextUnsentEdits, type UnsentEdits } from "./unsent.js";
import { isWellFormed, toWellFormed } from "./ot.js";
import { RichTextDocument } from "./rich-document.js";
import {
  HubNames,
  docIdOf,
  readJoinResult,
  readOpMessage,
  readPresenceMessage,
  readResetMessage,
  readSubmitResult,
  type JoinRequest,
  type JoinResult,
  type PresenceRequest,
  type SubmitRequest,
  type SubmitResult,
  type UserInfo,
} from "./messages.js";

/** The state of the connection, as a person would describe it. */
export type ConnectionStatus =
  /** The first connection is being made. */
  | "connecting"
  /** Connected; edits are sent as they are made. */
  | "connected"
  /** The connection dropped and is being made again. */
  | "reconnecting"
  /** A reconnect failed (or the browser is offline); edits are kept and sent once back. */
  | "offline"
  /**
   * The server refused the connection for a reason retrying cannot change (`error` says which:
   * `unauthorized`, `forbidden` or a refused origin). Edits are kept; nothing is retried until
   * `reconnectNow` (say, once a new token is at hand).
   */
  | "failed"
  /** `close` was called. */
  | "closed";

export interface ClientEvents {
  /**
   * The connection status changed. `retryInMs` is set while offline and waiting to retry; `error`
   * says why the last attempt failed, while offline or failed.
   */
  status: { readonly status: ConnectionStatus; readonly retryInMs: number | undefined; readonly error: CollabError | undefined };
}

export interface CollabClientOptions {
  /** The server's base URL, such as `https://collab.example.com` (the hub is at `/hubs/collab`). */
  readonly serverUrl: string;
  /** This member's name and color, shown to the others. */
  readonly user?: UserInfo;
  /** Identifies this client across reconnects; random by default. */
  readonly clientId?: string;
  /** The SignalR hub protocol. Default "messagepack". */
  readonly protocol?: "messagepack" | "json";
  /** A bearer token for servers that require one. */
  readonly accessTokenFactory?: () => string | Promise<string>;
  readonly reconnect?: ReconnectPolicy;
  /** Where SignalR's own log goes; by default warnings and worse go to the console as warnings. */
  readonly logger?: ILogger;
}

export interface OpenOptions {
  /** The document's type: `text` (the default) is the only one a text document has. */
  readonly type?: "text";
  /**
   * Edits another instance of this client left unsent (`doc.unsent()`, kept by the application):
   * the document starts from them and sends them again under their clientId and op ids. Restore
   * them in one client only, and only once the instance that made them is gone (the editor page
   * holds a Web Lock named after its clientId while it lives).
   */
  readonly unsent?: UnsentEdits;
}

/** How to open a rich-text document (`RichTextDocument`). */
export interface RichTextOpenOptions {
  /**
   * Used if the document does not exist yet, which creates it as rich text; an existing document
   * of another type is refused (`invalid_op`).
   */
  readonly type: "rich-text";
  /** As OpenOptions' `unsent`: `doc.unsent()` of a rich-text document. */
  readonly unsent?: RichTextUnsentEdits;
}

/** How many times the client asks a node for the cluster's nodes before it leaves that to redirects. */
const learnNodesAttempts = 6;

/** Most redirects followed in a row for one document before giving up. */
const maxRedirects = 5;

/** A random id for this client instance. */
function randomId(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * SignalR logs a dropped connection as an error; for this client it is expected and handled,
 * so it goes to the console as a warning.
 */
const consoleWarnings: ILogger = {
  log(level: LogLevel, message: string) {
    if (level >= LogLevel.Warning && level !== LogLevel.None) console.warn(`[collab] ${message}`);
  },
};

/**
 * Connects to a CollabServer and opens documents on it.
 *
 * ```ts
 * const client = new CollabClient({ serverUrl: location.origin, user: { name: "Ada", color: "#d33" } });
 * const doc = await client.open("notes");
 * doc.on("change", ({ op }) => showChange(op)); // the op: reading doc.text builds the whole string
 * doc.insert(0, "Hello");
 * ```
 */
export class CollabClient extends Emitter<ClientEvents> implements DocumentHost {
  readonly clientId: string;
  private _user: UserInfo | undefined;
  private readonly links = new Map<string, Link>();
  private readonly primaryUrl: string;
  /** Every node this client has heard of (its own, redirects, `GET /api/cluster`): where documents go when their node stops answering. */
  private readonly knownUrls = new Set<string>();
  private opIds = 0;
  private closed = false;
  private _status: ConnectionStatus = "connecting";
  private retryAt: number | undefined;
  private _error: CollabError | undefined;
  private readonly onOnline = () => {
    for (const link of this.links.values()) link.retryNow();
  };
  private readonly onOffline = () => {
    for (const link of this.links.values()) link.dropForOffline();
  };

  constructor(private readonly options: CollabClientOptions) {
    super();
    this.clientId = options.clientId ?? randomId();
    // Every string sent must be well-formed: MessagePack would encode a lone surrogate as bytes
    // that the server refuses, failing the join.
    if (!isWellFormed(this.clientId)) throw new RangeError("The clientId has a lone surrogate.");
    this._user = wellFormedUser(options.user);
    this.primaryUrl = normalizeUrl(options.serverUrl);
    this.knownUrls.add(this.primaryUrl);
    if (typeof window !== "undefined") {
      window.addEventListener("online", this.onOnline);
      window.addEventListener("offline", this.onOffline);
    }
  }

  /** The connection status (of the worst connection, when documents live on several nodes). */
  get status(): ConnectionStatus {
    return this._status;
  }

  /** Why the last connection attempt failed, while the status is offline or failed. */
  get error(): CollabError | undefined {
    return this._error;
  }

  /** This member's name and color. */
  user(): UserInfo | undefined {
    return this._user;
  }

  /** Changes this member's name or color; the others see it with the next presence update. */
  setUser(user: UserInfo): void {
    this._user = wellFormedUser(user);
    for (const link of this.links.values()) for (const doc of link.docs) doc.userChanged();
  }

  /** Tries to reconnect now instead of waiting for the next retry; after `failed`, tries again (the token is asked for again). */
  reconnectNow(): void {
    this.onOnline();
  }

  /** @internal */
  nextOpId(): number {
    return ++this.opIds;
  }

  /** @internal */
  lastOpId(): number {
    return this.opIds;
  }

  /**
   * Opens a document, creating it if it does not exist, and resolves once it is joined. While
   * the server cannot be reached it keeps trying; reject it yourself with a timeout if you must.
   * It rejects with a `CollabError` when the server refuses for good: the connection
   * (`unauthorized`, `forbidden`, a refused origin) or the join (`forbidden`, `invalid_doc_id`).
   *
   * With `unsent` (a `doc.unsent()` kept from another client instance), it resolves at once with
   * those edits' text and sends them as the connection allows; a refusal then comes as `error`.
   * It throws a RangeError if they are not for this document or do not fit their text.
   *
   * With `type: "rich-text"` it opens a RichTextDocument, creating the document as rich text if
   * it does not exist. A document of another type than the one asked for is refused with
   * `invalid_op`: `open` rejects with a `CollabError` of that code.
   */
  open(docId: string, options?: OpenOptions): Promise<CollabDocument>;
  open(docId: string, options: RichTextOpenOptions): Promise<RichTextDocument>;
  async open(docId: string, options: OpenOptions | RichTextOpenOptions = {}): Promise<CollabDocument | RichTextDocument> {
    if (this.closed) throw new Error("The client is closed.");
    if (!isWellFormed(docId)) throw new RangeError("The document id has a lone surrogate.");
    const unsent = options.unsent;
    if (unsent !== undefined) {
      const problem = checkUnsent(unsent, docId, options.type ?? "text");
      if (problem !== null) throw new RangeError(`These unsent edits cannot be restored: ${problem}.`);
      // Its op ids were this client's or another's under its clientId: count on from above them.
      this.opIds = Math.max(this.opIds, unsent.opIdsThrough);
    }
    const doc =
      options.type === "rich-text"
        ? new RichTextDocument(docId, this, options.unsent)
        : new CollabDocument(docId, this, (options as OpenOptions).unsent);
    const opened = doc.opened();
    this.link(this.primaryUrl).add(doc);
    try {
      await opened;
    } catch (error) {
      for (const link of this.links.values()) link.docs.delete(doc);
      void doc.close();
      this.linkStatusChanged();
      throw error;
    }
    return doc;
  }

  /** Closes every document and connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (typeof window !== "undefined") {
      window.removeEventListener("online", this.onOnline);
      window.removeEventListener("offline", this.onOffline);
    }
    const links = [...this.links.values()];
    this.links.clear();
    await Promise.all(links.map((l) => l.close()));
    this.setStatus("closed", undefined);
  }

  /** @internal */
  redirect(doc: AnySyncedDocument, url: string): void {
    for (const link of this.links.values()) link.docs.delete(doc);
    const usable = this.usableNodeUrl(url);
    if (!usable) {
      console.warn(`[collab] "${doc.docId}" was redirected to "${url}", which is not a usable node URL; trying again later.`);
    }
    if (!usable || ++doc.redirects > maxRedirects) {
      doc.redirects = 0;
      // Nowhere usable, or redirected in a circle: back to the node we were given, later.
      setTimeout(() => this.link(this.primaryUrl).add(doc), 1_000);
      return;
    }
    this.knownUrls.add(normalizeUrl(url));
    this.link(normalizeUrl(url)).add(doc);
  }

  /**
   * @internal A link that could not connect hands its documents to the next node this client
   * knows, which sends them to their owner, or takes them over once a dead owner's lease has run
   * out. With no other node known, the link keeps retrying by itself.
   */
  failOver(from: Link): void {
    if (this.closed || from.docs.size === 0) return;
    const urls = [...this.knownUrls];
    if (urls.length < 2) return;
    const next = urls[(urls.indexOf(from.url) + 1) % urls.length]!;
    const docs = [...from.docs];
    from.docs.clear();
    if (from.url !== this.primaryUrl) {
      this.links.delete(from.url);
      void from.close();
    }
    for (const doc of docs) this.link(next).add(doc);
  }

  /** An http(s) node URL, and never plain http when this client was given https (the token would travel in the clear). */
  private usableNodeUrl(url: string): boolean {
    return /^https?:\/\//.test(url) && !(this.primaryUrl.startsWith("https:") && !url.startsWith("https:"));
  }

  /**
   * @internal A node answered: learn the cluster's other nodes from it. A failed ask (no answer,
   * or a 5xx: the node busy, Redis slow to answer it) is asked again after 0.5, 1, 2, … s, at most
   * `learnNodesAttempts` times in all; redirects teach the nodes too.
   */
  async learnNodes(url: string): Promise<void> {
    for (let attempt = 1, delay = 500; attempt <= learnNodesAttempts && !this.closed; attempt++, delay *= 2) {
      if (await this.tryLearnNodes(url)) return;
      await new Promise((resolve) => {
        // In Node, a wait for a hint must not keep the process alive.
        const timer: unknown = setTimeout(resolve, delay);
        (timer as { unref?: () => void }).unref?.();
      });
    }
  }

  /** False when the node should be asked again. */
  private async tryLearnNodes(url: string): Promise<boolean> {
    try {
      const token = await this.options.accessTokenFactory?.();
      const response = await fetch(`${url}/api/cluster`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
      // A refusal (4xx) is an answer too: only a node in trouble (5xx) is asked again.
      if (!response.ok) return response.status < 500;
      const nodes: unknown = await response.json();
      if (!Array.isArray(nodes)) return true;
      for (const node of nodes) {
        const nodeUrl = (node as { url?: unknown } | null)?.url;
        if (typeof nodeUrl === "string" && this.usableNodeUrl(nodeUrl)) this.knownUrls.add(normalizeUrl(nodeUrl));
      }
      return true;
    } catch {
      return false;
    }
  }

  /** @internal Called by a link whose status changed. */
  linkStatusChanged(): void {
    if (this.closed) return;
    const order: ConnectionStatus[] = ["connected", "connecting", "reconnecting", "offline", "failed"];
    let worst: ConnectionStatus = "connected";
    let retryAt: number | undefined;
    let error: CollabError | undefined;
    // The links that carry documents decide; the primary one only while none does.
    const carrying = [...this.links.values()].some((l) => l.docs.size > 0);
    for (const link of this.links.values()) {
      if (link.docs.size === 0 && (carrying || link.url !== this.primaryUrl)) continue;
      if (order.indexOf(link.status) > order.indexOf(worst)) worst = link.status;
      if (link.retryAt !== undefined) retryAt = Math.min(retryAt ?? Infinity, link.retryAt);
      if (link.error && (link.status === "offline" || link.status === "failed") && (!error || !link.error.retryable)) error = link.error;
    }
    this.setStatus(worst, retryAt, worst === "offline" || worst === "failed" ? error : undefined);
  }

  private setStatus(status: ConnectionStatus, retryAt: number | undefined, error?: CollabError): void {
    if (status === this._status && retryAt === this.retryAt && error === this._error) return;
    this._status = status;
    this.retryAt = retryAt;
    this._error = error;
    this.emit("status", { status, retryInMs: retryAt === undefined ? undefined : Math.max(0, retryAt - Date.now()), error });
  }

  private link(url: string): Link {
    let link = this.links.get(url);
    if (!link) {
      link = new Link(url, this, this.options);
      this.links.set(url, link);
      link.start();
    }
    return link;
  }
}

function normalizeUrl(url: string): string {
  return url.replace(/\/+$/, "");
}

/** One SignalR connection to one node and the documents joined over it. */
class Link implements HubInvoker {
  readonly docs = new Set<AnySyncedDocument>();
  status: ConnectionStatus = "connecting";
  retryAt: number | undefined;
  /** Why the last attempt failed; cleared once connected. */
  error: CollabError | undefined;
  private readonly connection: HubConnection;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private connecting = false;
  private everConnected = false;

  constructor(
    readonly url: string,
    private readonly client: CollabClient,
    private readonly options: CollabClientOptions,
  ) {
    const builder = new HubConnectionBuilder()
      .withUrl(url + HubNames.path, {
        transport: HttpTransportType.WebSockets,
        skipNegotiation: true,
        accessTokenFactory: options.accessTokenFactory,
      })
      .configureLogging(options.logger ?? consoleWarnings);
    if ((options.protocol ?? "messagepack") === "messagepack") builder.withHubProtocol(new MessagePackHubProtocol());
    this.connection = builder.build();
    this.connection.on(HubNames.op, (raw: unknown) => {
      // The op is read by the type of the document it is for.
      const doc = this.find(docIdOf(raw));
      doc?.receiveOp(readOpMessage(raw, doc.docType.parse));
    });
    this.connection.on(HubNames.presence, (raw: unknown) => {
      const message = readPresenceMessage(raw);
      this.find(message.docId)?.receivePresence(message);
    });
    this.connection.on(HubNames.reset, (raw: unknown) => {
      const message = readResetMessage(raw);
      this.find(message.docId)?.receiveReset(message);
    });
    this.connection.onclose(() => this.lost());
  }

  add(doc: AnySyncedDocument): void {
    this.docs.add(doc);
    if (this.connection.state === HubConnectionState.Connected) doc.attach(this);
    this.client.linkStatusChanged();
  }

  start(): void {
    void this.connect();
  }

  /** The browser says it is online again, or the user asks: stop waiting (after `failed`, try again). */
  retryNow(): void {
    if (this.closed) return;
    if (this.status === "failed" && !this.connecting) {
      this.attempt = 0;
      void this.connect();
      return;
    }
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.attempt = 0;
    void this.connect();
  }

  /** The browser says it is offline: the socket is dead even if it has not noticed yet. */
  dropForOffline(): void {
    if (this.connection.state === HubConnectionState.Connected) void this.connection.stop();
    else this.setStatus("offline");
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await Promise.all([...this.docs].map((d) => d.close()));
    await this.connection.stop();
  }

  private find(docId: string): AnySyncedDocument | undefined {
    for (const doc of this.docs) if (doc.docId === docId && !doc.isClosed) return doc;
    return undefined;
  }

  private async connect(): Promise<void> {
    if (this.closed || this.connecting) return;
    this.connecting = true;
    this.retryAt = undefined;
    if (this.status !== "offline") this.setStatus(this.everConnected ? "reconnecting" : "connecting");
    try {
      await this.connection.start();
    } catch {
      // A browser does not say why a socket was refused: ask the hub's URL over HTTP.
      const error = await this.diagnose();
      this.connecting = false;
      if (this.closed) return;
      this.error = error;
      if (!error.retryable) {
        // Refused for good (no valid token, no access, an origin not allowed): retrying cannot help.
        console.warn(`[collab] ${error.message}`);
        for (const doc of this.docs) doc.failOpen(error);
        this.setStatus("failed");
        return;
      }
      // This node does not answer: its documents try another one meanwhile.
      this.client.failOver(this);
      this.scheduleRetry();
      return;
    }
    this.connecting = false;
    this.error = undefined;
    if (this.closed) {
      await this.connection.stop();
      return;
    }
    this.attempt = 0;
    if (!this.everConnected) void this.client.learnNodes(this.url);
    this.everConnected = true;
    this.setStatus("connected");
    for (const doc of this.docs) doc.attach(this);
  }

  private async diagnose(): Promise<CollabError> {
    let token: string | undefined;
    try {
      token = await this.options.accessTokenFactory?.();
    } catch (error) {
      return new CollabError("unauthorized", "unauthorized", `No access token: ${error instanceof Error ? error.message : String(error)}`);
    }
    return diagnoseHandshake(this.url + HubNames.path, token);
  }

  private lost(): void {
    for (const doc of this.docs) doc.detach();
    if (this.closed) return;
    const offline = typeof navigator !== "undefined" && navigator.onLine === false;
    this.setStatus(offline ? "offline" : "reconnecting");
    // The first retry comes quickly: most drops are a blip.
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    const delay = reconnectDelay(this.attempt, this.options.reconnect);
    if (this.attempt > 0) this.setStatus("offline", Date.now() + delay);
    this.attempt++;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, delay);
  }

  private setStatus(status: ConnectionStatus, retryAt?: number): void {
    this.status = status;
    this.retryAt = status === "offline" ? retryAt : undefined;
    if (status === "connected") this.error = undefined;
    this.client.linkStatusChanged();
  }

  async join(request: JoinRequest): Promise<JoinResult<unknown>> {
    return readJoinResult(await this.connection.invoke(HubNames.join, request));
  }

  async submit(request: SubmitRequest<unknown>): Promise<SubmitResult> {
    return readSubmitResult(await this.connection.invoke(HubNames.submit, request));
  }

  async setPresence(request: PresenceRequest): Promise<void> {
    await this.connection.send(HubNames.setPresence, request);
  }

  async leave(docId: string): Promise<void> {
    await this.connection.invoke(HubNames.leave, docId);
  }
}

/** A user's name and color with any lone surrogate (say, an emoji cut in half) replaced by U+FFFD. */
function wellFormedUser(user: UserInfo | undefined): UserInfo | undefined {
  return user && { ...user, name: toWellFormed(user.name), color: toWellFormed(user.color) };
}
