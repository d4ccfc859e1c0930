// The shared client sync scenarios (tests/vectors/sync-scenarios.json), replayed against the
// TypeScript CollabDocument through an invoker whose answers each step gives. The C# client
// replays the same file (tests/CollabClient.Tests/Sync/SyncScenarioTests.cs); both must produce,
// after every step, the same text, version, state, and Submit and Join requests.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, mock, test } from "node:test";
import { CollabDocument, ot, repoRoot, sync } from "./lib.mjs";

const vectors = JSON.parse(readFileSync(join(repoRoot, "tests/vectors/sync-scenarios.json"), "utf8"));
const docId = "doc";

/** Strings may be written {repeat, times} or {concat: [...]}, to keep large inserts short. */
function expand(value) {
  if (Array.isArray(value)) return value.map(expand);
  if (value !== null && typeof value === "object") {
    if ("repeat" in value) return value.repeat.repeat(value.times);
    if ("concat" in value) return value.concat.map(expand).join("");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expand(v)]));
  }
  return value;
}

/** A short form of an op for failure messages: long inserts by their length. */
const show = (op) => JSON.stringify(op.map((c) => (typeof c === "string" && c.length > 40 ? `<${c.length} code units>` : c)));

/** One connection: records every call and leaves it unanswered until a step answers it. */
function connection(log) {
  const calls = [];
  const call = (kind, request) =>
    new Promise((resolve, reject) => {
      calls.push({ kind, request, resolve, reject, answered: false });
      log.push([kind, request]);
    });
  return {
    calls,
    join: (request) => call("join", request),
    submit: (request) => call("submit", request),
    setPresence: async () => undefined,
    leave: async () => undefined,
    /** The oldest unanswered call of `kind` that `match` accepts. */
    take(kind, match = () => true) {
      const found = calls.find((c) => !c.answered && c.kind === kind && match(c.request));
      assert.ok(found, `no unanswered ${kind} call to answer`);
      found.answered = true;
      return found;
    },
  };
}

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe("shared sync scenarios", () => {
  test("the file holds the scenarios and the same split limit as sync.ts", () => {
    assert.ok(vectors.scenarios.length >= 15);
    assert.equal(vectors.maxInsertPerOp, sync.maxInsertPerOp);
  });

  for (const scenario of expand(vectors.scenarios)) {
    test(scenario.name, async () => {
      // The gap timer and retry waits must not fire on their own: no step depends on time.
      mock.timers.enable({ apis: ["setTimeout"] });
      let opIds = 0;
      const host = { clientId: "me", user: () => undefined, nextOpId: () => ++opIds, redirect: () => assert.fail("no redirects here") };
      const doc = new CollabDocument(docId, host);
      let log = [];
      let errors = [];
      doc.on("error", ({ code }) => errors.push(code ?? null));
      let conn = connection(log);
      const opened = doc.opened();
      doc.attach(conn);
      conn.take("join").resolve({ docId, ...scenario.join, ops: undefined, readOnly: false, redirect: undefined, presence: [] });
      await opened;
      log.length = 0;
      errors = [];
      try {
        for (const [index, step] of scenario.steps.entries()) {
          if (step.local) {
            doc.applyLocal(step.local);
          } else if (step.op) {
            doc.receiveOp({ docId, ...step.op });
          } else if (step.ack) {
            conn.take("submit", (r) => r.opId === step.ack.opId).resolve({ version: step.ack.version });
          } else if (step.reject) {
            conn.take("submit", (r) => r.opId === step.reject.opId).reject(new Error(`HubException: ${step.reject.code}: refused by the scenario`));
          } else if (step.disconnect) {
            doc.detach();
            for (const c of conn.calls) if (!c.answered) c.reject(new Error("Invocation canceled due to the underlying connection being closed."));
          } else if (step.connect) {
            conn = connection(log);
            doc.attach(conn);
          } else if (step.joinResult) {
            const { version, text, ops } = step.joinResult;
            conn.take("join").resolve({ docId, version, text, ops: ops?.map((m) => ({ docId, ...m })), readOnly: false, redirect: undefined, presence: [] });
          } else if (step.reset) {
            doc.receiveReset({ docId, reason: "scenario" });
          } else {
            assert.fail(`step ${index} does nothing`);
          }
          await settle();
          const where = `step ${index} (${Object.keys(step).find((k) => k !== "expect")})`;
          const expect = step.expect;
          const submits = log.filter(([kind]) => kind === "submit").map(([, r]) => ({ op: r.op, baseVersion: r.baseVersion, opId: r.opId }));
          const joins = log.filter(([kind]) => kind === "join").map(([, r]) => ({ sinceVersion: r.sinceVersion ?? null }));
          log.length = 0;
          const raised = errors;
          errors = [];
          assert.ok(doc.text === expect.text, `${where}: text ${show([doc.text])}, expected ${show([expect.text])}`);
          assert.equal(doc.version, expect.version, `${where}: version`);
          assert.equal(doc["state"].kind, expect.state, `${where}: state`);
          assert.equal(doc.pendingEdits, expect.pendingEdits, `${where}: pending edits`);
          const expected = (expect.submits ?? []).map((s) => ({ op: ot.canonicalize(s.op), baseVersion: s.baseVersion, opId: s.opId }));
          const brief = (list) => list.map((r) => `${show(r.op)} @${r.baseVersion} #${r.opId}`).join(", ");
          assert.ok(JSON.stringify(submits) === JSON.stringify(expected), `${where}: submits [${brief(submits)}], expected [${brief(expected)}]`);
          assert.deepEqual(joins, expect.joins ?? [], `${where}: joins`);
          if (expect.errors) assert.deepEqual(raised, expect.errors, `${where}: error events`);
        }
      } finally {
        await doc.close();
        mock.timers.reset();
      }
    });
  }
});
