// The shared sync engine scenarios (tests/vectors/engine-scenarios.json), replayed against the
// pure engine (client/ts/engine.ts) directly: after every event, the exact commands it gave and
// the state it left. The C# engine replays the same file under the same event and command names.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Delta, engine, richTextType, sync, repoRoot as root } from "./lib.mjs";

const vectors = JSON.parse(readFileSync(join(root, "tests/vectors/engine-scenarios.json"), "utf8"));
const docId = "doc";

/**
 * An event from the file as the engine takes it: what the file leaves out put back (see its
 * description), and in a rich-text scenario each op and document as a Delta.
 */
function toEvent(e, rich) {
  const delta = (ops) => (rich && ops !== undefined ? new Delta(ops) : ops);
  const message = (m) => ({ docId, ...m, op: delta(m.op) });
  switch (e.type) {
    case "joinResult": {
      const r = e.result;
      return {
        ...e,
        result: {
          docId,
          version: r.version,
          text: r.text,
          ...(r.type !== undefined ? { type: r.type } : {}),
          ...(r.delta !== undefined ? { delta: delta(r.delta) } : {}),
          ops: r.ops?.map(message),
          readOnly: r.readOnly ?? false,
          redirect: r.redirect,
          presence: (r.presence ?? []).map((p) => ({ user: undefined, ...message(p) })),
        },
      };
    }
    case "localEdit":
      return { ...e, op: delta(e.op) };
    case "serverOp":
      return { ...e, message: message(e.message) };
    case "presenceRemote":
      return { ...e, message: { user: undefined, ...message(e.message) } };
    case "joinFailed":
    case "submitFailed":
      return { code: undefined, ...e };
    default:
      return e;
  }
}

/** What the file's `expect` keys say about a state. */
const projections = {
  text: (s) => s.docType.docToWire(s.text),
  version: (s) => s.version,
  syncState: (s) => s.sync.kind,
  pendingEdits: (s) => sync.pendingEdits(s.sync),
  phase: (s) => s.phase,
  readOnly: (s) => s.readOnly,
  members: (s) => [...s.members.values()],
  timers: (s) => s.timers,
};

/** Values as JSON has them: fields without a value left out, a Delta as its array of ops. */
const plain = (value) => JSON.parse(JSON.stringify(value, (_, v) => (v instanceof Delta ? v.ops : v)));

/** Everything a state holds that a step could change by mistake, as a string. */
const snapshot = (s) =>
  JSON.stringify({
    ...Object.fromEntries(Object.entries(projections).map(([k, f]) => [k, f(s)])),
    serverText: s.docType.docToWire(s.serverText),
    sync: s.sync,
    opIds: s.opIds,
    session: s.session,
    queue: [...s.queue],
    recent: engine.recentOps(s),
    futurePresence: [...s.futurePresence],
    selection: s.selection,
  });

describe("shared sync engine scenarios", () => {
  test("the file holds the scenarios, each with a name of its own", () => {
    assert.ok(vectors.scenarios.length >= 24);
    assert.equal(new Set(vectors.scenarios.map((s) => s.name)).size, vectors.scenarios.length);
  });

  for (const scenario of vectors.scenarios) {
    test(scenario.name, () => {
      const rich = scenario.type === "rich-text";
      const initial = rich ? engine.initialStateOf(richTextType) : engine.initialState;
      const opened = engine.step(initial, { type: "open", docId, clientId: "me", user: scenario.open?.user });
      assert.deepEqual(opened.commands, [], "open gives no command");
      let state = opened.state;
      let nextOpId = 1;
      for (const [index, { event, expect }] of scenario.steps.entries()) {
        const where = `step ${index} (${event.type})`;
        if (state.opIds.length < engine.opIdReserve) {
          const ids = [];
          while (state.opIds.length + ids.length < engine.opIdReserve) ids.push(nextOpId++);
          const given = engine.step(state, { type: "opIds", ids });
          assert.deepEqual(given.commands, [], `${where}: opIds gives no command`);
          state = given.state;
        }
        const before = snapshot(state);
        const result = engine.step(state, toEvent(event, rich));
        assert.equal(snapshot(state), before, `${where}: step changed the state it was given`);
        assert.deepEqual(plain(result.commands), expect.commands, `${where}: commands`);
        state = result.state;
        for (const [key, value] of Object.entries(expect)) {
          if (key === "commands") continue;
          assert.ok(key in projections, `${where}: the file expects an unknown key ${key}`);
          assert.deepEqual(plain(projections[key](state)), value, `${where}: ${key}`);
        }
      }
    });
  }
});
