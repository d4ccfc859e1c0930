// Clients (CollabDocument) converge with a server that has the real server's rules, over a
// simulated network that delays and drops connections (sim.mjs). Seeded; a failure names its seed.

import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import { CollabDocument, ot, rng } from "./lib.mjs";
import { Connection, World, docId, simulate } from "./sim.mjs";

function checkConverged(seed, { world, peers }, tokens) {
  const server = world.server;
  for (const [i, peer] of peers.entries()) {
    const where = `seed ${seed}, client ${i}`;
    assert.equal(peer.doc.pendingEdits, 0, `${where}: edits still pending`);
    assert.equal(peer.doc.version, server.version, `${where}: version`);
    assert.equal(peer.doc.text, server.text, `${where}: text differs from the server's`);
    assert.equal(peer.mirror, peer.doc.text, `${where}: the change events do not rebuild the text`);
    if (tokens === "characters") {
      // Resuming from the whole text merges by a diff, which may interleave concurrent inserts
      // at character level: every character still arrives exactly once.
      const all = peers.flatMap((p) => p.made).join("");
      assert.equal([...server.text].sort().join(""), [...all].sort().join(""), `${where}: characters lost or doubled`);
    } else if (tokens) {
      for (const token of peer.made) {
        const count = server.text.split(token).length - 1;
        assert.equal(count, 1, `${where}: ${token} is in the text ${count} times`);
      }
    }
  }
  for (const peer of peers) peer.doc.detach();
}

describe("clients converge with the server", () => {
  mock.timers.enable({ apis: ["setTimeout"] });

  const cases = [
    ["every edit is applied exactly once despite dropped connections", { tokens: true }],
    ["random inserts and deletes converge despite dropped connections", { tokens: false }],
    ["a server that echoes a member's own ops back to it", { tokens: true, echo: true }],
    ["resuming from the whole text when the missed ops are not sent", { tokens: "characters", maxResumeOps: 2 }],
    ["resuming from the whole text with deletes", { tokens: false, maxResumeOps: 2 }],
    ["many clients, frequent drops", { tokens: true, clients: 5, cutEvery: 60 }],
  ];
  for (const [name, options] of cases) {
    test(name, async () => {
      for (let seed = 1; seed <= 25; seed++) {
        const result = await simulate(seed, options);
        checkConverged(seed, result, options.tokens);
        assert.ok(result.world.server.version > 0);
      }
    });
  }

  test("every member sees the others' cursors where they are, through concurrent edits and drops", async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const world = new World(seed, { maxResumeOps: 1000, echo: false });
      const r = rng(seed + 1000);
      const peers = [];
      let opIds = 0;
      for (let i = 0; i < 3; i++) {
        const host = { clientId: `p${i}`, user: () => ({ name: `p${i}`, color: "#000000" }), nextOpId: () => ++opIds, redirect() {} };
        const doc = new CollabDocument(docId, host);
        // The cursor as an editor keeps it: after its own inserts, and mapped through everyone else's.
        const peer = { doc, conn: new Connection(world, doc), cursor: 0 };
        doc.on("change", ({ op }) => {
          peer.cursor = ot.transformPosition(op, peer.cursor);
        });
        const opened = doc.opened();
        doc.attach(peer.conn);
        await world.run(world.now + 100);
        await opened;
        peers.push(peer);
      }
      for (let n = 0; n < 60; n++) {
        const peer = r.pick(peers);
        world.at(world.now + r.int(1200), () => {
          if (r.int(5) === 0) peer.cursor = r.int(peer.doc.text.length + 1);
          const text = r.pick(["a", "bc", "def", "\n"]);
          peer.doc.insert(peer.cursor, text);
          peer.cursor += text.length;
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
        assert.equal(viewer.doc.text, world.server.text, `seed ${seed}: text`);
        for (const other of peers) {
          if (other === viewer) continue;
          const member = viewer.doc.members.find((m) => m.clientId === other.doc.host.clientId);
          assert.ok(member, `seed ${seed}: ${viewer.doc.host.clientId} does not see ${other.doc.host.clientId}`);
          assert.deepEqual(member.selection, [{ anchor: other.cursor, head: other.cursor }], `seed ${seed}: ${viewer.doc.host.clientId} sees ${other.doc.host.clientId}'s cursor`);
        }
      }
      for (const peer of peers) peer.doc.detach();
    }
  });

  test("the server's tie rule holds through the client: the later op goes left", async () => {
    const world = new World(1, { maxResumeOps: 1000, echo: false });
    const peers = [];
    for (let i = 0; i < 2; i++) {
      const host = { clientId: `t${i}`, user: () => undefined, nextOpId: (() => { let n = 0; return () => ++n; })(), redirect() {} };
      const doc = new CollabDocument(docId, host);
      const opened = doc.opened();
      doc.attach(new Connection(world, doc));
      await world.run(world.now + 100);
      await opened;
      peers.push(doc);
    }
    // Both insert at 0 against version 0: whichever reaches the server later goes left.
    peers[0].insert(0, "A");
    peers[1].insert(0, "B");
    await world.run(world.now + 1000);
    const first = world.server.history[0].clientId === "t0" ? "A" : "B";
    const expected = first === "A" ? "BA" : "AB";
    assert.equal(world.server.text, expected);
    assert.equal(peers[0].text, expected);
    assert.equal(peers[1].text, expected);
  });
});
