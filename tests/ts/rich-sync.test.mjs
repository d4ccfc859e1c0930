// Rich-text documents (RichTextDocument) sync as text documents do: against sim.mjs's server in
// rich-text mode (sequencing with quill-delta, the incoming op winning ties) over a network that
// delays and drops connections, and against invokers whose answers each test gives. Seeded; a
// failure names its seed.

import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import { CollabDocument, Delta, RichTextDocument, checkUnsent, engine, readJoinResult, readOpMessage, richText, richTextType, rng } from "./lib.mjs";
import { Connection, World, docId, plainOf, simulateRich } from "./sim.mjs";

mock.timers.enable({ apis: ["setTimeout"] });

const show = (delta) => JSON.stringify(delta.ops);

function checkConverged(seed, { world, peers }, tokens) {
  const server = world.server;
  for (const [i, peer] of peers.entries()) {
    const where = `seed ${seed}, client ${i}`;
    assert.equal(peer.doc.pendingEdits, 0, `${where}: edits still pending`);
    assert.equal(peer.doc.version, server.version, `${where}: version`);
    assert.ok(richText.equals(peer.doc.contents, server.text), `${where}: ${show(peer.doc.contents)} differs from the server's ${show(server.text)}`);
    assert.ok(richText.equals(peer.mirror, peer.doc.contents), `${where}: the change events do not rebuild the contents`);
  }
  const plain = plainOf(server.text);
  const embeds = server.text.ops.filter((c) => typeof c.insert === "object").map((c) => c.insert.image);
  if (tokens === "characters") {
    // Resuming from the whole document merges by a diff, which may interleave concurrent inserts
    // at character level: every character and embed still arrives exactly once.
    const all = peers.flatMap((p) => p.made).join("");
    assert.equal([...plain.replace(/\ufffc/g, "")].sort().join(""), [...all].sort().join(""), `seed ${seed}: characters lost or doubled`);
  } else if (tokens) {
    for (const token of peers.flatMap((p) => p.made)) {
      assert.equal(plain.split(token).length - 1, 1, `seed ${seed}: ${token} is not in the document once: ${plain}`);
    }
  }
  if (tokens) assert.deepEqual(embeds.sort(), peers.flatMap((p) => p.embeds).sort(), `seed ${seed}: embeds lost or doubled`);
  for (const peer of peers) peer.doc.detach();
}

const host = (clientId = "me", from = 0) => {
  let n = from;
  return { clientId, user: () => undefined, nextOpId: () => ++n, lastOpId: () => n, redirect: () => assert.fail("no redirects here") };
};

/** An invoker whose answers the test gives, recording every request. */
function fakeInvoker(answer) {
  const calls = [];
  return {
    calls,
    join: async (request) => (calls.push(["join", request]), answer("join", request)),
    submit: async (request) => (calls.push(["submit", request]), answer("submit", request)),
    setPresence: async (request) => void calls.push(["presence", request]),
    leave: async (docId) => void calls.push(["leave", docId]),
  };
}

const richResult = (fields) => readJoinResult({ docId, type: "rich-text", version: 0, delta: [], ops: null, readOnly: false, redirect: null, presence: [], ...fields });

const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
};

async function openRich(world, clientId, unsent, from = 0) {
  const doc = new RichTextDocument(docId, host(clientId, unsent ? unsent.opIdsThrough : from), unsent && structuredClone(unsent));
  const opened = doc.opened();
  const conn = new Connection(world, doc);
  doc.attach(conn);
  await world.run(world.now + 200);
  await opened;
  return { doc, conn };
}

describe("rich-text documents converge with the server", () => {

  const cases = [
    ["every insert and embed is applied exactly once, with formatting, despite dropped connections", { tokens: true }],
    ["random inserts, deletes, embeds and formatting converge despite dropped connections", { tokens: false }],
    ["a server that echoes a member's own ops back to it", { tokens: true, echo: true }],
    ["resuming from the whole document when the missed ops are not sent", { tokens: "characters", maxResumeOps: 2 }],
    ["resuming from the whole document with deletes", { tokens: false, maxResumeOps: 2 }],
    ["many clients, frequent drops", { tokens: true, clients: 5, cutEvery: 60 }],
  ];
  for (const [name, options] of cases) {
    test(name, async () => {
      for (let seed = 1; seed <= 12; seed++) {
        const result = await simulateRich(seed, options);
        checkConverged(seed, result, options.tokens);
        assert.ok(result.world.server.version > 0);
        if (options.tokens) assert.ok(result.world.server.text.ops.some((c) => c.attributes), `seed ${seed}: some content is formatted`);
      }
    });
  }

  test("the server's tie rule holds through the client: the later op goes left, its attribute value stays", async () => {
    const world = new World(1, { maxResumeOps: 1000, echo: false, type: "rich-text" });
    const a = await openRich(world, "t0");
    const b = await openRich(world, "t1");
    a.doc.insert(0, "xx");
    await world.run(world.now + 500);
    a.doc.insert(1, "A");
    a.doc.format(0, 2, { color: "red" });
    b.doc.insert(1, "B");
    b.doc.format(0, 2, { color: "blue" });
    await world.run(world.now + 1000);
    // Each member's insert is sequenced before its formatting: the first concurrent op is an
    // insert, the last a formatting, and both formattings cover the first "x".
    const later = world.server.history[1].clientId === "t0" ? "B" : "A";
    assert.equal(plainOf(world.server.text), later === "A" ? "xABx" : "xBAx");
    assert.equal(world.server.text.ops[0].attributes.color, world.server.history.at(-1).clientId === "t0" ? "red" : "blue", show(world.server.text));
    assert.ok(richText.equals(a.doc.contents, world.server.text));
    assert.ok(richText.equals(b.doc.contents, world.server.text));
  });

  test("every member sees the others' cursors where they are, through embeds, formatting and drops", async () => {
    for (let seed = 1; seed <= 10; seed++) {
      const world = new World(seed, { maxResumeOps: 1000, echo: false, type: "rich-text" });
      const r = rng(seed + 1000);
      const peers = [];
      for (let i = 0; i < 3; i++) {
        const { doc, conn } = await openRich(world, `p${i}`, undefined, i * 1000);
        const peer = { doc, conn, cursor: 0, id: `p${i}` };
        doc.on("change", ({ op }) => {
          peer.cursor = richText.transformPosition(op, peer.cursor);
        });
        peers.push(peer);
      }
      for (let n = 0; n < 40; n++) {
        const peer = r.pick(peers);
        world.at(world.now + r.int(1200), () => {
          if (r.int(5) === 0) peer.cursor = r.int(peer.doc.length + 1);
          const kind = r.int(3);
          if (kind === 0) {
            peer.doc.insert(peer.cursor, { image: `${peer.id}.${n}` });
            peer.cursor += 1;
          } else if (kind === 1 && peer.cursor > 0) {
            peer.doc.format(0, peer.cursor, { bold: r.int(2) === 0 ? true : null });
          } else {
            const text = r.pick(["a", "bc", "def", "\n"]);
            peer.doc.insert(peer.cursor, text, r.int(2) ? { italic: true } : undefined);
            peer.cursor += text.length;
          }
          peer.doc.setSelection([{ anchor: peer.cursor, head: peer.cursor }]);
        });
      }
      for (let n = 0; n < 3; n++) {
        const peer = r.pick(peers);
        world.at(world.now + r.int(1200), () => {
          if (!peer.conn.alive) return;
          peer.conn.cut();
          world.at(world.now + 50 + r.int(200), () => {
            peer.conn = new Connection(world, peer.doc);
            peer.doc.attach(peer.conn);
          });
        });
      }
      await world.run(world.now + 30_000);
      for (const viewer of peers) {
        assert.ok(richText.equals(viewer.doc.contents, world.server.text), `seed ${seed}: contents`);
        for (const other of peers) {
          if (other === viewer) continue;
          const member = viewer.doc.members.find((m) => m.clientId === other.id);
          assert.ok(member, `seed ${seed}: ${viewer.id} does not see ${other.id}`);
          assert.deepEqual(member.selection, [{ anchor: other.cursor, head: other.cursor }], `seed ${seed}: ${viewer.id} sees ${other.id}'s cursor`);
        }
      }
      for (const peer of peers) peer.doc.detach();
    }
  });

  test("edits made offline wait in the buffer and reach the server over what others wrote meanwhile", async () => {
    const world = new World(5, { maxResumeOps: 1000, echo: false, type: "rich-text" });
    const other = await openRich(world, "other", undefined, 100);
    other.doc.insert(0, "hello");
    await world.run(world.now + 300);
    const me = await openRich(world, "me");
    me.conn.cut();
    me.doc.format(0, 5, { bold: true });
    me.doc.insert(5, { image: "cat" });
    me.doc.insert(6, "!");
    assert.equal(me.doc.pendingEdits, 3);
    assert.equal(me.doc.synchronized, false);
    other.doc.insert(0, ">");
    other.doc.delete(2, 1);
    await world.run(world.now + 500);
    assert.equal(me.doc.version, 1, "nothing arrives while offline");
    me.conn = new Connection(world, me.doc);
    me.doc.attach(me.conn);
    await world.run(world.now + 2000);
    const expected = [{ insert: ">" }, { insert: "hllo", attributes: { bold: true } }, { insert: { image: "cat" } }, { insert: "!" }];
    assert.deepEqual(world.server.text.ops, expected);
    assert.deepEqual(me.doc.contents.ops, expected);
    assert.deepEqual(other.doc.contents.ops, expected);
    assert.equal(me.doc.pendingEdits, 0);
  });

  test("a resume asks for the ops since the version known and resubmits the outstanding op with its opId", async () => {
    const doc = new RichTextDocument(docId, host());
    const opened = doc.opened();
    const first = fakeInvoker((kind) => (kind === "join" ? richResult({ version: 2, delta: [{ insert: "ab" }] }) : new Promise(() => undefined)));
    doc.attach(first);
    await opened;
    assert.deepEqual(first.calls[0][1], { docId, clientId: "me", type: "rich-text" });
    doc.format(0, 2, { bold: true });
    await settle();
    assert.deepEqual(first.calls[1][1], { docId, baseVersion: 2, op: [{ retain: 2, attributes: { bold: true } }], opId: 1 });
    doc.detach();
    doc.insert(2, { image: "u" });
    const theirs = { docId, version: 3, op: [{ insert: "X", attributes: { italic: true } }], clientId: "them", opId: 9 };
    const second = fakeInvoker((kind, request) => (kind === "join" ? richResult({ version: 3, delta: null, ops: [theirs] }) : { version: request.opId === 1 ? 4 : 5 }));
    const changes = [];
    doc.on("change", (e) => changes.push(e));
    doc.attach(second);
    await settle();
    assert.equal(second.calls[0][1].sinceVersion, 2);
    const resubmitted = second.calls.filter((c) => c[0] === "submit").map((c) => c[1]);
    assert.deepEqual(resubmitted, [
      { docId, baseVersion: 3, op: [{ retain: 1 }, { retain: 2, attributes: { bold: true } }], opId: 1 },
      { docId, baseVersion: 4, op: [{ retain: 3 }, { insert: { image: "u" } }], opId: 2 },
    ]);
    assert.deepEqual(changes.map((c) => [c.op.ops, c.origin, c.clientId]), [[[{ insert: "X", attributes: { italic: true } }], "remote", "them"]]);
    assert.ok(changes[0].op instanceof Delta, "change events carry a Delta, for quill.updateContents");
    assert.deepEqual(doc.contents.ops, [{ insert: "X", attributes: { italic: true } }, { insert: "ab", attributes: { bold: true } }, { insert: { image: "u" } }]);
    assert.equal(doc.version, 5);
    assert.equal(doc.pendingEdits, 0);
  });

  test("a server that lost acknowledged edits is diverged: the local contents it lacks are sent again, nothing removed", async () => {
    const doc = new RichTextDocument(docId, host());
    const opened = doc.opened();
    doc.attach(fakeInvoker((kind) => (kind === "join" ? richResult({ version: 2, delta: [{ insert: "ab", attributes: { bold: true } }] }) : new Promise(() => undefined))));
    await opened;
    doc.insert(2, "c");
    doc.detach();
    const errors = [];
    doc.on("error", (e) => errors.push(e.code));
    const server = [{ insert: "aZ" }];
    const second = fakeInvoker((kind, request) =>
      kind === "join" ? (request.sinceVersion === undefined ? richResult({ version: 1, delta: server }) : richResult({ version: 1, delta: null, ops: [] })) : { version: 2 },
    );
    doc.attach(second);
    await settle();
    assert.deepEqual(errors, ["diverged"]);
    assert.equal(second.calls[1][1].sinceVersion, undefined, "the second join asks for the whole document");
    const submit = second.calls.find((c) => c[0] === "submit")[1];
    assert.equal(submit.baseVersion, 1);
    assert.notEqual(submit.opId, 1, "a new op id: the old op was made on contents the server does not have");
    const merged = richText.apply(new Delta(server), richText.parse(submit.op));
    assert.ok(richText.equals(merged, doc.contents), `${show(merged)} vs ${show(doc.contents)}`);
    assert.equal(plainOf(merged).replace("Z", ""), "abc", "the local text is all there");
    assert.ok(plainOf(merged).includes("Z"), "and the server's");
    assert.equal(doc.version, 2);
  });

  test("an edit the server refuses for good is taken back as a Delta", async () => {
    const doc = new RichTextDocument(docId, host());
    const opened = doc.opened();
    doc.attach(fakeInvoker((kind) => (kind === "join" ? richResult({ version: 1, delta: [{ insert: "ab" }] }) : Promise.reject(new Error("HubException: invalid_op: no")))));
    await opened;
    const changes = [];
    const errors = [];
    doc.on("change", (e) => changes.push([e.op.ops, e.origin]));
    doc.on("error", (e) => errors.push(e.code));
    doc.format(0, 1, { bold: true });
    await settle();
    assert.deepEqual(changes, [[[{ retain: 1, attributes: { bold: null } }], "revert"]]);
    assert.deepEqual(errors, ["invalid_op"]);
    assert.deepEqual(doc.contents.ops, [{ insert: "ab" }]);
  });

  test("a Reset gives the unconfirmed edits as a Delta on the server's contents, then joins again for the whole document", async () => {
    const doc = new RichTextDocument(docId, host());
    const opened = doc.opened();
    const invoker = fakeInvoker((kind, request) =>
      kind === "join" ? richResult(request.sinceVersion === undefined && invoker.calls.length > 1 ? { version: 0, delta: [] } : { version: 3, delta: [{ insert: "abc" }] }) : new Promise(() => undefined),
    );
    doc.attach(invoker);
    await opened;
    doc.format(1, 1, { underline: true });
    const resets = [];
    doc.on("reset", (e) => resets.push(e));
    doc.receiveReset({ docId, reason: "deleted" });
    await settle();
    assert.equal(resets.length, 1);
    assert.ok(resets[0].unconfirmed.op instanceof Delta && resets[0].unconfirmed.serverText instanceof Delta);
    assert.deepEqual(resets[0].unconfirmed.op.ops, [{ retain: 1 }, { retain: 1, attributes: { underline: true } }]);
    assert.deepEqual(resets[0].unconfirmed.serverText.ops, [{ insert: "abc" }]);
    const joins = invoker.calls.filter((c) => c[0] === "join").map((c) => c[1]);
    assert.deepEqual(joins.at(-1), { docId, clientId: "me", type: "rich-text" }, "joins again without sinceVersion, naming its type");
  });

  test("local edits that do not apply throw and send nothing", async () => {
    const doc = new RichTextDocument(docId, host());
    const opened = doc.opened();
    const invoker = fakeInvoker((kind) => (kind === "join" ? richResult({ version: 1, delta: [{ insert: "a😀" }] }) : new Promise(() => undefined)));
    doc.attach(invoker);
    await opened;
    assert.throws(() => doc.applyDelta([{ retain: 4 }, { insert: "x" }]), RangeError);
    assert.throws(() => doc.insert(2, "x"), /splits a surrogate pair/);
    assert.throws(() => doc.applyDelta([{ insert: "\ud83d" }]), /lone surrogate/);
    assert.throws(() => doc.applyDelta([{ bogus: 1 }]), RangeError);
    doc.applyDelta([{ retain: 3 }]);
    await settle();
    assert.deepEqual(invoker.calls.map((c) => c[0]), ["join"]);
    assert.equal(doc.length, 3);
  });
});

describe("a document's type", () => {

  test("a rich-text document joins naming its type; a text document names none", async () => {
    const rich = new RichTextDocument(docId, host("a"));
    const richInvoker = fakeInvoker(() => new Promise(() => undefined));
    rich.attach(richInvoker);
    const text = new CollabDocument(docId, host("b"));
    const textInvoker = fakeInvoker(() => new Promise(() => undefined));
    text.attach(textInvoker);
    await settle();
    assert.deepEqual(richInvoker.calls, [["join", { docId, clientId: "a", type: "rich-text" }]]);
    assert.deepEqual(textInvoker.calls, [["join", { docId, clientId: "b" }]]);
  });

  for (const [name, serverType, Document] of [
    ["a rich-text open of a text document", "text", RichTextDocument],
    ["a text open of a rich-text document", "rich-text", CollabDocument],
  ]) {
    test(`${name} is refused by the server with invalid_op, which open rejects with`, async () => {
      const world = new World(2, { maxResumeOps: 1000, echo: false, type: serverType });
      const doc = new Document(docId, host());
      const opened = doc.opened();
      const errors = [];
      doc.on("error", (e) => errors.push(e.code));
      doc.attach(new Connection(world, doc));
      const outcome = opened.then(
        () => "opened",
        (error) => error,
      );
      await world.run(world.now + 500);
      const error = await outcome;
      assert.notEqual(error, "opened");
      assert.equal(error.code, "invalid_op");
      assert.deepEqual(errors, ["invalid_op"]);
      assert.equal(world.server.members.size, 0);
    });
  }

  test("a join answered with another type than the document's is refused by the client: open rejects, the document leaves", async () => {
    const doc = new RichTextDocument(docId, host());
    const opened = doc.opened();
    const errors = [];
    doc.on("error", (e) => errors.push(e.message));
    const invoker = fakeInvoker(() => readJoinResult({ docId, version: 3, text: "plain", ops: null, readOnly: false, redirect: null, presence: [] }));
    doc.attach(invoker);
    await assert.rejects(opened, (error) => error.code === "invalid_op" && /type text, not rich-text/.test(error.message));
    assert.equal(errors.length, 1);
    assert.deepEqual(invoker.calls.map((c) => c[0]), ["join", "leave"]);
    assert.equal(doc.version, -1);

    const text = new CollabDocument(docId, host());
    const textOpened = text.opened();
    text.attach(fakeInvoker(() => richResult({ version: 1, delta: [{ insert: "x" }] })));
    await assert.rejects(textOpened, (error) => error.code === "invalid_op");
  });

  test("join results and ops are read by their type", () => {
    const result = readJoinResult({ docId, type: "rich-text", version: 2, text: null, delta: [{ insert: "a" }, { insert: "b", attributes: { bold: true } }], ops: null, presence: null });
    assert.equal(result.type, "rich-text");
    assert.ok(result.delta instanceof Delta);
    assert.deepEqual(result.delta.ops, [{ insert: "a" }, { insert: "b", attributes: { bold: true } }]);
    const resumed = readJoinResult({ docId, type: "rich-text", version: 2, ops: [{ docId, version: 2, op: [{ retain: 1 }, { delete: 1 }], clientId: "c", opId: 1 }] });
    assert.deepEqual(resumed.ops[0].op.ops, [{ retain: 1 }, { delete: 1 }]);
    assert.throws(() => readJoinResult({ docId, type: "rich-text", version: 1, delta: [{ retain: 1 }] }), /inserts only/);
    assert.throws(() => readJoinResult({ docId, type: "rich-text", version: 1, ops: [{ docId, version: 1, op: [3], clientId: "c", opId: 1 }] }), /Op message/);
    const unknown = readJoinResult({ docId, type: "table", version: 1, text: "x", ops: [{ docId, version: 1, op: { rows: 1 }, clientId: "c", opId: 1 }] });
    assert.equal(unknown.type, "table");
    assert.equal(unknown.ops, undefined);
    assert.equal(unknown.text, undefined);
    assert.deepEqual(readOpMessage({ docId, version: 1, op: [{ insert: "x" }, { retain: 0 }], clientId: "c", opId: 1 }, richText.parse).op.ops, [{ insert: "x" }]);
    assert.throws(() => readOpMessage({ docId, version: 1, op: [{ insert: "" }], clientId: "c", opId: 1 }, richText.parse), /Op message/);
  });
});

describe("unsent rich-text edits restored in another client instance", () => {

  for (const [name, maxResumeOps] of [
    ["resuming from the missed ops", 1000],
    ["resuming from the whole document", 0],
  ]) {
    test(`an edit committed before its acknowledgement was lost is applied once (${name})`, async () => {
      const world = new World(1, { maxResumeOps, echo: false, type: "rich-text" });
      const other = await openRich(world, "other", undefined, 100);
      const first = await openRich(world, "first");
      first.doc.insert(0, "hello", { bold: true });
      const unsent = first.doc.unsent();
      assert.equal(unsent.type, "rich-text");
      assert.equal(unsent.sent, true);
      assert.deepEqual(unsent.serverDelta, []);
      assert.deepEqual(unsent.outstanding.op, [{ insert: "hello", attributes: { bold: true } }]);
      assert.deepEqual(JSON.parse(JSON.stringify(unsent)), unsent, "plain data");
      await world.run(world.now + 40);
      assert.equal(plainOf(world.server.text), "hello", "the submit has reached the server");
      first.conn.cut();
      other.doc.insert(5, { image: "w" });
      await world.run(world.now + 200);

      assert.equal(checkUnsent(unsent, docId, "rich-text"), null);
      const second = await openRich(world, "second", JSON.parse(JSON.stringify(unsent)));
      assert.equal(second.doc.clientId, "first");
      await world.run(world.now + 2000);
      const expected = [{ insert: "hello", attributes: { bold: true } }, { insert: { image: "w" } }];
      assert.deepEqual(world.server.text.ops, expected, "applied once");
      assert.deepEqual(second.doc.contents.ops, expected);
      assert.deepEqual(other.doc.contents.ops, expected);
      assert.equal(second.doc.unsent(), undefined);
    });
  }

  test("edits made offline, never sent, are restored with their contents before any join and reach the server", async () => {
    const world = new World(2, { maxResumeOps: 1000, echo: false, type: "rich-text" });
    const other = await openRich(world, "other", undefined, 100);
    other.doc.insert(0, "abc");
    await world.run(world.now + 200);
    const first = await openRich(world, "first");
    first.conn.cut();
    first.doc.format(0, 3, { italic: true });
    first.doc.insert(3, { image: "i" });
    const unsent = first.doc.unsent();
    assert.equal(unsent.sent, false);
    assert.deepEqual(unsent.serverDelta, [{ insert: "abc" }]);
    assert.ok(unsent.buffer, "the second edit waits in the buffer");
    other.doc.insert(1, "X");
    await world.run(world.now + 200);

    const restored = new RichTextDocument(docId, host("second", unsent.opIdsThrough), structuredClone(unsent));
    assert.deepEqual(restored.contents.ops, [{ insert: "abc", attributes: { italic: true } }, { insert: { image: "i" } }]);
    assert.equal(restored.pendingEdits, 2);
    const second = await openRich(world, "second", unsent);
    await world.run(world.now + 2000);
    // The formatting covers the text it was made on, not an insert made into it meanwhile.
    const expected = [{ insert: "a", attributes: { italic: true } }, { insert: "X" }, { insert: "bc", attributes: { italic: true } }, { insert: { image: "i" } }];
    assert.deepEqual(world.server.text.ops, expected);
    assert.deepEqual(second.doc.contents.ops, expected);
    assert.deepEqual(other.doc.contents.ops, expected);
  });

  test("unsent edits of another type, or that do not fit their document, are refused", async () => {
    const world = new World(4, { maxResumeOps: 1000, echo: false, type: "rich-text" });
    const first = await openRich(world, "first");
    first.conn.cut();
    first.doc.insert(0, "abc");
    first.doc.format(0, 1, { bold: true });
    const unsent = first.doc.unsent();
    assert.equal(checkUnsent(unsent, docId), null);
    assert.equal(checkUnsent(unsent, docId, "rich-text"), null);
    assert.match(checkUnsent(unsent, docId, "text"), /rich-text document, not text/);
    assert.match(checkUnsent({ ...unsent, type: "table" }, docId), /unknown type/);
    assert.match(checkUnsent({ ...unsent, serverDelta: [{ retain: 1 }] }, docId), /serverDelta is not a rich-text document/);
    assert.match(checkUnsent({ ...unsent, outstanding: { ...unsent.outstanding, op: [{ retain: 1 }, { delete: 1 }] } }, docId), /outstanding.op does not fit serverDelta/);
    assert.match(checkUnsent({ ...unsent, buffer: { op: [{ retain: 9, attributes: { bold: true } }], edits: 1 } }, docId), /buffer.op does not fit/);
    const text = { docId, clientId: "t", version: 0, serverText: "", outstanding: { op: ["x"], opId: 1, edits: 1 }, sent: false, opIdsThrough: 1, savedAt: 0 };
    assert.equal(checkUnsent(text, docId, "text"), null);
    assert.match(checkUnsent(text, docId, "rich-text"), /text document, not rich-text/);
  });
});

describe("the engine over rich text", () => {
  /** Everything a state holds that a step could change by mistake, Deltas included, as a string. */
  const snapshot = (s) =>
    JSON.stringify({ ...s, docType: s.docType.name, queue: [...s.queue], members: [...s.members], futurePresence: [...s.futurePresence], recent: engine.recentOps(s) });

  test("is pure: each step returns the next state and its commands, the state it was given unchanged", () => {
    let state = engine.initialStateOf(richTextType);
    assert.equal(state.text.length(), 0);
    let nextId = 1;
    const commands = [];
    const run = (event) => {
      if (state.opIds.length < engine.opIdReserve) state = engine.step(state, { type: "opIds", ids: [nextId++, nextId++] }).state;
      const before = snapshot(state);
      const result = engine.step(state, { nowMs: 1000, ...event });
      assert.equal(snapshot(state), before, `${event.type} changed the state it was given`);
      state = result.state;
      commands.push(...result.commands.filter((c) => c.type !== "setTimer" && c.type !== "clearTimer" && c.type !== "emit"));
      return result.commands;
    };
    run({ type: "open", docId, clientId: "me", user: undefined });
    run({ type: "connected" });
    run({ type: "joinResult", session: 1, result: richResult({ version: 4, delta: [{ insert: "hello" }] }) });
    run({ type: "localEdit", op: new Delta().retain(5).insert({ image: "u" }) });
    run({ type: "localEdit", op: new Delta().retain(1, { bold: true }) });
    run({ type: "serverOp", message: { docId, version: 5, op: new Delta().insert("X", { italic: true }), clientId: "them", opId: 3 } });
    run({ type: "presenceLocal", selection: [{ anchor: 7, head: 7 }] });
    run({ type: "submitResult", session: 1, opId: 1, version: 6 });
    run({ type: "presenceRemote", message: { docId, clientId: "them", user: undefined, version: 6, selection: [{ anchor: 6, head: 7 }] } });
    run({ type: "submitResult", session: 1, opId: 2, version: 7 });
    run({ type: "tick", nowMs: 2000 });
    assert.deepEqual(
      JSON.parse(JSON.stringify(commands)),
      [
        { type: "sendJoin", session: 1, request: { docId, clientId: "me", type: "rich-text" } },
        { type: "sendSubmit", session: 1, request: { docId, baseVersion: 4, op: [{ retain: 5 }, { insert: { image: "u" } }], opId: 1 } },
        { type: "applyRemote", op: { ops: [{ insert: "X", attributes: { italic: true } }] }, origin: "remote", clientId: "them" },
        { type: "sendSubmit", session: 1, request: { docId, baseVersion: 6, op: [{ retain: 1 }, { retain: 1, attributes: { bold: true } }], opId: 2 } },
        { type: "sendPresence", request: { docId, version: 7, selection: [{ anchor: 7, head: 7 }] } },
      ],
    );
    assert.deepEqual(state.text.ops, [{ insert: "X", attributes: { italic: true } }, { insert: "h", attributes: { bold: true } }, { insert: "ello" }, { insert: { image: "u" } }]);
    assert.ok(richText.equals(state.serverText, state.text));
    assert.equal(state.sync.kind, "Synchronized");
    assert.deepEqual(state.members.get("them").selection, [{ anchor: 6, head: 7 }]);
  });
});
