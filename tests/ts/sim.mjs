// The simulation behind convergence.test.mjs: clients (CollabDocument) against a small
// in-memory server with the real server's rules, over a simulated network with random delays
// and dropped connections: ops in flight and buffered, resubmission with the same opId after a
// reconnect, resume from sinceVersion or from the whole text.
//
// The server holds a document of one type (`type`: text by default, or rich-text, sequenced with
// quill-delta through rich-text.ts as the real server sequences with its Delta); a join naming
// another type is refused with invalid_op. Rich text travels in its wire form (arrays of Delta
// ops) and is read on arrival as the client's Link reads it.

import assert from "node:assert/strict";
import { mock } from "node:test";
import { CollabDocument, Delta, RichTextDocument, boundaries, ot, readJoinResult, readOpMessage, richText, rng } from "./lib.mjs";

export const docId = "sim";

/** The rich-text server's op functions, named as ot's, over Deltas. */
const richOps = {
  canonicalize: (op) => {
    const delta = richText.parse(op);
    if (typeof delta === "string") throw new Error(`invalid_op: ${delta}`);
    return delta;
  },
  transform: richText.transform,
  validate: richText.validate,
  apply: richText.apply,
  transformPosition: richText.transformPosition,
  length: (doc) => doc.length(),
};

const textOps = { ...ot, length: (doc) => doc.length };

/** The server's rules (PROTOCOL §3–4): dedupe by (clientId, opId), transform from the base, broadcast to the other connections. */
export class DummyServer {
  constructor({ maxResumeOps, echo, type = "text" }) {
    this.type = type;
    this.ops = type === "rich-text" ? richOps : textOps;
    this.text = type === "rich-text" ? new Delta() : "";
    this.history = [];
    this.committed = new Map();
    this.members = new Set();
    this.maxResumeOps = maxResumeOps;
    this.echo = echo;
  }
  get version() {
    return this.history.length;
  }
  join(conn, request) {
    if ((request.type ?? "text") !== this.type) throw new Error(`invalid_op: document '${docId}' is ${this.type}, not ${request.type ?? "text"}`);
    this.members.add(conn);
    conn.clientId = request.clientId;
    conn.presence = { version: this.version, selection: [] };
    const presence = [...this.members].filter((m) => m !== conn && m.presence).map((m) => this.presenceOf(m));
    const since = request.sinceVersion;
    const result = { docId, version: this.version, text: null, ops: null, readOnly: false, redirect: null, presence };
    if (this.type !== "text") result.type = this.type;
    const joined = this.presenceOf(conn);
    for (const member of this.members) if (member !== conn) member.deliver("Presence", joined);
    if (since !== undefined && since <= this.version && this.version - since <= this.maxResumeOps) {
      result.ops = this.history.slice(since).map((m) => this.wire(m));
    } else if (this.type === "rich-text") {
      result.delta = this.text.ops;
    } else {
      result.text = this.text;
    }
    return result;
  }
  /** A member's presence, mapped to the current version as the real server does. */
  presenceOf(conn) {
    const { version, selection } = conn.presence;
    const map = (p) => {
      for (const applied of this.history.slice(version)) p = this.ops.transformPosition(applied.op, p);
      return Math.min(p, this.ops.length(this.text));
    };
    const mapped = selection.map((r) => ({ anchor: map(r.anchor), head: map(r.head) }));
    conn.presence = { version: this.version, selection: mapped };
    return { docId, clientId: conn.clientId, user: { name: conn.clientId, color: "#000000" }, version: this.version, selection: mapped };
  }
  setPresence(conn, request) {
    if (!this.members.has(conn)) throw new Error("not_joined: join first");
    if (request.version > this.version) throw new Error("unknown_version: presence from the future");
    conn.presence = { version: request.version, selection: request.selection };
    const message = this.presenceOf(conn);
    for (const member of this.members) if (member !== conn) member.deliver("Presence", message);
  }
  leave(conn) {
    if (!this.members.delete(conn)) return;
    for (const member of this.members) member.deliver("Presence", { docId, clientId: conn.clientId, user: null, version: this.version, selection: null });
  }
  submit(conn, request) {
    if (!this.members.has(conn)) throw new Error(`not_joined: join document '${docId}' before submitting to it`);
    const key = `${conn.clientId}/${request.opId}`;
    if (this.committed.has(key)) return { version: this.committed.get(key) };
    if (request.baseVersion < 0 || request.baseVersion > this.version) throw new Error("unknown_version: bad base");
    let op = this.ops.canonicalize(request.op);
    for (const applied of this.history.slice(request.baseVersion)) op = this.ops.transform(op, applied.op, true);
    const problem = this.ops.validate(this.text, op);
    if (problem) throw new Error(`invalid_op: ${problem}`);
    this.text = this.ops.apply(this.text, op);
    const message = { docId, version: this.version + 1, op, clientId: conn.clientId, opId: request.opId };
    this.history.push(message);
    this.committed.set(key, message.version);
    for (const member of this.members) if (member !== conn || this.echo) member.deliver("Op", this.wire(message));
    return { version: message.version };
  }
  /** A message as it travels: a rich-text op as its array of Delta ops. */
  wire(message) {
    return this.type === "rich-text" ? { ...message, op: message.op.ops } : message;
  }
}

/** A simulated world: one event queue in simulated time, with node's mock timers following it. */
export class World {
  constructor(seed, serverOptions) {
    this.r = rng(seed);
    this.server = new DummyServer(serverOptions);
    this.now = 0;
    this.events = [];
    this.seq = 0;
  }
  at(time, action) {
    this.events.push({ time, seq: this.seq++, action });
  }
  async run(until) {
    for (;;) {
      this.events.sort((a, b) => a.time - b.time || a.seq - b.seq);
      const next = this.events[0];
      if (next && next.time <= until) {
        this.events.shift();
        // Timers due by now fire first; what they schedule counts from now (close enough: the
        // network delays are random anyway).
        const elapsed = next.time - this.now;
        this.now = next.time;
        mock.timers.tick(elapsed);
        next.action();
      } else if (this.now < until) {
        // Nothing on the network: let time pass for the timers, which may send something.
        const step = Math.min(10, until - this.now);
        this.now += step;
        mock.timers.tick(step);
      } else {
        break;
      }
      // Let the promise continuations of this step run before the next one.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/** One connection: invocations and messages travel in order each way, with random delays. */
export class Connection {
  constructor(world, doc) {
    this.world = world;
    this.doc = doc;
    this.alive = true;
    this.up = 0;
    this.down = 0;
    this.inflight = new Set();
  }
  delay() {
    return 1 + this.world.r.int(30);
  }
  /** The server sends `method` to this client. */
  deliver(method, payload) {
    if (!this.alive) return;
    this.down = Math.max(this.down, this.world.now) + this.delay();
    this.world.at(this.down, () => {
      if (!this.alive) return;
      if (method === "Op") this.doc.receiveOp(this.rich ? readOpMessage(structuredClone(payload), richText.parse) : payload);
      else if (method === "Presence") this.doc.receivePresence(payload);
    });
  }
  invoke(call) {
    return new Promise((resolve, reject) => {
      const entry = { reject, lost: false };
      this.inflight.add(entry);
      this.up = Math.max(this.up, this.world.now) + this.delay();
      this.world.at(this.up, () => {
        // A request sent before the cut may still reach the server; its answer never comes back.
        if (entry.lost) return;
        let outcome;
        try {
          outcome = { ok: call() };
        } catch (error) {
          outcome = { error };
        }
        if (!this.alive) return;
        this.down = Math.max(this.down, this.world.now) + this.delay();
        this.world.at(this.down, () => {
          if (!this.alive) return;
          this.inflight.delete(entry);
          if (outcome.error) reject(outcome.error);
          else resolve(outcome.ok);
        });
      });
    });
  }
  get rich() {
    return this.world.server.type === "rich-text";
  }
  join(request) {
    const joined = this.invoke(() => this.world.server.join(this, structuredClone(request)));
    return this.rich ? joined.then((result) => readJoinResult(structuredClone(result))) : joined;
  }
  submit(request) {
    return this.invoke(() => this.world.server.submit(this, structuredClone(request)));
  }
  setPresence(request) {
    return this.invoke(() => this.world.server.setPresence(this, structuredClone(request)));
  }
  leave() {
    return Promise.resolve();
  }
  cut() {
    this.alive = false;
    this.world.server.leave(this);
    for (const entry of this.inflight) {
      entry.lost = this.world.r.int(2) === 0;
      entry.reject(new Error("Invocation canceled due to the underlying connection being closed."));
    }
    this.inflight.clear();
    this.doc.detach();
  }
}

/** Runs `clients` clients making `edits` edits each, with cuts; returns the world and the docs. */
export async function simulate(seed, { clients = 3, edits = 40, maxResumeOps = 1000, echo = false, tokens = true, cutEvery = 150 }) {
  const world = new World(seed, { maxResumeOps, echo });
  const r = world.r;
  const peers = [];
  let opIds = 0;
  for (let i = 0; i < clients; i++) {
    const host = { clientId: `c${i}`, user: () => undefined, nextOpId: () => ++opIds, redirect: () => assert.fail("no redirects here") };
    const doc = new CollabDocument(docId, host);
    const peer = { doc, conn: undefined, mirror: "", made: [] };
    doc.on("change", ({ op }) => {
      peer.mirror = ot.apply(peer.mirror, op);
    });
    const opened = doc.opened();
    peer.conn = new Connection(world, doc);
    doc.attach(peer.conn);
    peers.push(peer);
    await world.run(world.now + 100);
    await opened;
  }
  const reconnect = (peer) => {
    peer.conn = new Connection(world, peer.doc);
    peer.doc.attach(peer.conn);
  };
  const edit = (peer, i, n) => {
    const text = peer.doc.text;
    if (tokens) {
      // Unique tokens, inserted between tokens, so each can be counted at the end.
      const token = `<${i}.${n}>`;
      const cuts = [0, ...[...text.matchAll(/>/g)].map((m) => m.index + 1)];
      peer.doc.insert(r.pick(cuts), token);
      peer.made.push(token);
    } else if (text.length > 0 && r.int(3) === 0) {
      const cuts = boundaries(text);
      const from = r.pick(cuts);
      const to = r.pick(cuts.filter((c) => c >= from && c <= from + 5));
      if (to > from) peer.doc.delete(from, to - from);
    } else {
      peer.doc.insert(r.pick(boundaries(text)), r.pick(["a", "bc", "é", "😀", "\n", "xyz"]));
    }
    peer.mirror = ot.apply(peer.mirror, ot.diff(peer.mirror, peer.doc.text));
  };
  for (let i = 0; i < clients; i++) {
    for (let n = 0; n < edits; n++) {
      const peer = peers[i];
      world.at(world.now + r.int(edits * 20), () => edit(peer, i, n));
    }
  }
  const end = world.now + edits * 20 + 50;
  for (let t = world.now + r.int(cutEvery); t < end; t += 1 + r.int(cutEvery)) {
    const peer = r.pick(peers);
    world.at(t, () => {
      if (!peer.conn.alive) return;
      peer.conn.cut();
      world.at(world.now + 1 + r.int(cutEvery), () => reconnect(peer));
    });
  }
  await world.run(end + 10_000);
  for (const peer of peers) if (!peer.conn.alive) reconnect(peer);
  await world.run(world.now + 30_000);
  return { world, peers };
}


/** A rich-text document's content as a string: each embed one U+FFFC, so string positions are the document's. */
export function plainOf(delta) {
  return delta.ops.map((c) => (typeof c.insert === "string" ? c.insert : "\ufffc")).join("");
}

const attributeChoices = [{ bold: true }, { bold: null }, { italic: true }, { color: "#cc0000" }, { color: null }, { header: 1 }, { link: "https://example.com/" }];

/**
 * Runs `clients` rich-text clients (RichTextDocument) making `edits` random edits each, with cuts:
 * inserts with and without attributes, embeds, formatting, and (unless `tokens`) deletes. With
 * `tokens`, each text insert is a unique token and each embed unique, placed between tokens, so
 * each can be counted at the end. Returns the world and the peers, each with `mirror`: its
 * contents rebuilt from its own edits and its change events.
 */
export async function simulateRich(seed, { clients = 3, edits = 30, maxResumeOps = 1000, echo = false, tokens = true, cutEvery = 150 }) {
  const world = new World(seed, { maxResumeOps, echo, type: "rich-text" });
  const r = world.r;
  const peers = [];
  let opIds = 0;
  for (let i = 0; i < clients; i++) {
    const host = { clientId: `r${i}`, user: () => undefined, nextOpId: () => ++opIds, lastOpId: () => opIds, redirect: () => assert.fail("no redirects here") };
    const doc = new RichTextDocument(docId, host);
    const peer = { doc, conn: undefined, mirror: new Delta(), made: [], embeds: [] };
    doc.on("change", ({ op }) => {
      peer.mirror = richText.apply(peer.mirror, op);
    });
    const opened = doc.opened();
    peer.conn = new Connection(world, doc);
    doc.attach(peer.conn);
    peers.push(peer);
    await world.run(world.now + 100);
    await opened;
  }
  const reconnect = (peer) => {
    peer.conn = new Connection(world, peer.doc);
    peer.doc.attach(peer.conn);
  };
  const edit = (peer, i, n) => {
    const plain = plainOf(peer.doc.contents);
    const cuts = tokens ? [0, ...[...plain.matchAll(/[>\ufffc]/g)].map((m) => m.index + 1)] : boundaries(plain);
    const at = r.pick(cuts);
    const attributes = r.int(2) === 0 ? undefined : { ...r.pick(attributeChoices.filter((a) => !Object.values(a).includes(null))) };
    const kind = r.int(tokens ? 4 : 5);
    let change;
    if (kind === 0) {
      const embed = { image: `e${i}.${n}` };
      peer.embeds.push(embed.image);
      change = new Delta().retain(at).insert(embed, attributes);
    } else if (kind === 1 && plain.length > 0) {
      const from = r.pick(boundaries(plain));
      const to = r.pick(boundaries(plain).filter((c) => c >= from && c <= from + 8));
      change = new Delta().retain(from).retain(to - from, { ...r.pick(attributeChoices) });
    } else if (kind === 4 && plain.length > 0) {
      const from = r.pick(boundaries(plain));
      const to = r.pick(boundaries(plain).filter((c) => c >= from && c <= from + 5));
      change = new Delta().retain(from).delete(to - from);
    } else {
      const text = tokens ? `<${i}.${n}>` : r.pick(["a", "bc", "é", "😀", "\n", "xyz"]);
      if (tokens) peer.made.push(text);
      change = new Delta().retain(at).insert(text, attributes);
    }
    peer.doc.applyDelta(change);
    peer.mirror = richText.apply(peer.mirror, richText.parse(change));
  };
  for (let i = 0; i < clients; i++) {
    for (let n = 0; n < edits; n++) {
      const peer = peers[i];
      world.at(world.now + r.int(edits * 20), () => edit(peer, i, n));
    }
  }
  const end = world.now + edits * 20 + 50;
  for (let t = world.now + r.int(cutEvery); t < end; t += 1 + r.int(cutEvery)) {
    const peer = r.pick(peers);
    world.at(t, () => {
      if (!peer.conn.alive) return;
      peer.conn.cut();
      world.at(world.now + 1 + r.int(cutEvery), () => reconnect(peer));
    });
  }
  await world.run(end + 10_000);
  for (const peer of peers) if (!peer.conn.alive) reconnect(peer);
  await world.run(world.now + 30_000);
  return { world, peers };
}
