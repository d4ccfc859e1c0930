// Delete and rename, on the document page and per row on the home page, for those who may
// (`DELETE /api/docs/{id}` needs `collab:admin` with access control on, PROTOCOL §7); and what a
// page does when someone else deletes or renames the document it has open.
//
// A rename copies the text to the new id at a version V of the old one (`PUT`), then deletes the
// old id only if it is still at V and records where it went (`DELETE ?version=V&movedTo=NEW`):
// the server checks the version on the document's own loop, so an edit made after the copy makes
// the delete fail (409), and the rename copies the latest text again (a few times at most). So no
// one's edit is lost, links to the old id redirect to the new one (`/d/old` answers 302), and the
// old id's history is deleted with it. Members who have the old id open get `Reset` `renamed`:
// their page does not join the old id again (that would re-create it, and its edits would land
// there); it opens the new id, says so, and re-applies there the edits the server had not
// confirmed (carried over in sessionStorage). Members of a deleted document are told so in the
// banner, and the page shows what the server has: an empty document that exists again only if
// someone types.

import { ot, type CollabClient, type CollabDocument, type TextOperation } from "@collabserver/client";
import { opToChanges } from "@collabserver/codemirror";
import type { EditorView } from "@codemirror/view";
import { authHeaders, byId, tokenClaims } from "./common.js";

/** Document ids (PROTOCOL §6): 1 to 128 of A-Z a-z 0-9 . _ -, not starting with a dot. */
export const docIdPattern = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** How many times a rename copies the text again after others edited the old document meanwhile. */
export const renameAttempts = 5;
/** How long no one may have edited the old document before its text is copied. */
export const pauseMs = 500;

/**
 * Whether a page offers what needs `collab:admin`: "Restore this version", "Rename…" and
 * "Delete…". The page reads its own token's grants; without a token the server is open (a server
 * that needs one refuses the page's requests), and a token it cannot read is left to the server.
 */
export function mayAdminister(token: string | undefined): boolean {
  const claims = token ? tokenClaims(token) : undefined;
  return !claims || claims.grants.includes("collab:admin");
}

function docUrl(id: string): string {
  return `/api/docs/${encodeURIComponent(id)}`;
}

/** The page of a document. */
export function pageUrl(id: string): string {
  return `/d/${encodeURIComponent(id)}`;
}

/** The server's refusal in words: its problem's detail or title, else the status. */
async function refusal(response: Response): Promise<string> {
  try {
    const problem = (await response.json()) as { title?: unknown; detail?: unknown };
    const text = [problem.detail, problem.title].find((t): t is string => typeof t === "string" && t !== "");
    if (text) return text;
  } catch {
    // Not JSON.
  }
  return `the server answered ${response.status} ${response.statusText}`.trim();
}

function failure(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Deletes a document; undefined when it is gone (also if someone else deleted it first), else why not, in words. */
export async function deleteDocument(docId: string): Promise<string | undefined> {
  try {
    const response = await fetch(docUrl(docId), { method: "DELETE", headers: authHeaders() });
    if (response.ok || response.status === 404) return undefined;
    return `“${docId}” was not deleted: ${await refusal(response)}.`;
  } catch (error) {
    return `“${docId}” was not deleted: ${failure(error)}.`;
  }
}

/** Where a rename reads the text to copy: the open document, or the server. */
export interface RenameSource {
  /**
   * The text and its version, at `atLeast` or later, with no edits of this page unsaved, once no
   * one has edited it for `quietMs` (after a conflict: others are typing, so wait for a pause).
   */
  read(atLeast: number, quietMs: number): Promise<{ readonly version: number; readonly text: string }>;
}

/** How long a waited-for pause in others' editing may take before the rename gives up. */
const pauseTimeoutMs = 20_000;

/** The old document as the server has it (the home page's rename). */
export const serverSource = (docId: string): RenameSource => ({
  async read(_atLeast, quietMs) {
    const get = async () => {
      const response = await fetch(docUrl(docId), { headers: { accept: "application/json", ...authHeaders() } });
      if (!response.ok) throw new Error(`“${docId}” could not be read: ${await refusal(response)}`);
      return (await response.json()) as { version: number; text: string };
    };
    const deadline = Date.now() + pauseTimeoutMs;
    let doc = await get();
    while (quietMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, quietMs));
      const again = await get();
      if (again.version === doc.version) break;
      doc = again;
      if (Date.now() > deadline) throw new Error(`others did not pause editing “${docId}” within ${pauseTimeoutMs / 1000} seconds`);
    }
    return doc;
  },
});

/** The open document, once its own edits are saved, it has caught up with `atLeast`, and no one edited it for `quietMs` (the document page's rename). */
export const openSource = (doc: CollabDocument): RenameSource => ({
  read: (atLeast, quietMs) =>
    new Promise((resolve, reject) => {
      const offs: (() => void)[] = [];
      let quiet: ReturnType<typeof setTimeout> | undefined;
      const done = (error?: Error) => {
        for (const off of offs) off();
        clearTimeout(timer);
        clearTimeout(quiet);
        if (error) reject(error);
        else resolve({ version: doc.version, text: doc.text });
      };
      const check = () => {
        clearTimeout(quiet);
        if (!doc.synchronized || doc.version < atLeast) return;
        if (quietMs <= 0) return done();
        quiet = setTimeout(() => (doc.synchronized && doc.version >= atLeast ? done() : undefined), quietMs);
      };
      const timer = setTimeout(() => done(new Error(`“${doc.docId}” did not catch up, or others did not pause editing it, within ${pauseTimeoutMs / 1000} seconds`)), pauseTimeoutMs);
      for (const event of ["change", "pending", "joined"] as const) offs.push(doc.on(event, check));
      check();
    }),
});

/**
 * Renames `docId` to `newId` (see the top of this file): refuses a name that exists, then copies
 * and deletes at a version until no one edited in between, at most `renameAttempts` times.
 * Returns undefined once renamed, else why not, in words; `say` tells how it goes.
 */
export async function renameDocument(docId: string, newId: string, source: RenameSource, say: (text: string) => void): Promise<string | undefined> {
  try {
    say(`Checking whether “${newId}” is free…`);
    const existing = await fetch(docUrl(newId), { headers: { accept: "application/json", ...authHeaders() } });
    if (existing.ok) return `“${newId}” already exists: choose another name.`;
    if (existing.status !== 404) return `“${newId}” could not be checked: ${await refusal(existing)}.`;

    let atLeast = 0;
    for (let attempt = 1; attempt <= renameAttempts; attempt++) {
      say(attempt === 1 ? "Saving the latest edits, and waiting for a pause if others are typing…" : `Someone edited “${docId}” meanwhile: waiting for a pause to copy the latest text (try ${attempt} of ${renameAttempts})…`);
      // Copied in a pause of others' typing (if they type), so the delete can follow before the next edit.
      const { version, text } = await source.read(atLeast, pauseMs);
      say(`Copying the text to “${newId}”…`);
      const put = await fetch(docUrl(newId), {
        method: "PUT",
        headers: { "content-type": "application/json", ...authHeaders() },
        body: JSON.stringify({ text }),
      });
      if (!put.ok) return `“${newId}” could not be created: ${await refusal(put)}.`;

      say(`Deleting “${docId}” (its links will lead to “${newId}”)…`);
      const removed = await fetch(`${docUrl(docId)}?version=${version}&movedTo=${encodeURIComponent(newId)}`, { method: "DELETE", headers: authHeaders() });
      // 404: someone deleted it meanwhile; the new name has its text all the same.
      if (removed.ok || removed.status === 404) return undefined;
      if (removed.status !== 409) {
        return `“${newId}” now has the text, but “${docId}” could not be deleted: ${await refusal(removed)}.`;
      }
      // Edited since `version`: the conflict names the version it is at now.
      const head = ((await removed.json().catch(() => ({}))) as { version?: unknown }).version;
      atLeast = typeof head === "number" ? head : version + 1;
    }
    // Others never stopped editing: the copy goes (the name was free), the old document stays as it is.
    await fetch(docUrl(newId), { method: "DELETE", headers: authHeaders() }).catch(() => undefined);
    return `Others kept editing “${docId}” while it was copied (${renameAttempts} tries): it was not renamed. Try again when they pause.`;
  } catch (error) {
    return `The rename did not finish: ${failure(error)}.`;
  }
}

/** The delete confirmation (`#delete-dialog`, see insertDialogs): asks about `docId`, runs `onDelete` if confirmed. */
/** The delete and rename dialogs, added to the page the first time either is asked for (the list and the document page share them). */
function insertDialogs(): void {
  if (document.getElementById("delete-dialog")) return;
  // Static markup: nothing in it comes from the user or the server.
  document.body.insertAdjacentHTML(
    "beforeend",
    `
<dialog id="delete-dialog" aria-labelledby="delete-dialog-title" aria-describedby="delete-dialog-text">
  <form method="dialog">
    <h2 id="delete-dialog-title">Delete this document?</h2>
    <p id="delete-dialog-text"></p>
    <div class="actions">
      <button id="delete-cancel" type="submit" value="cancel" autofocus>Cancel</button>
      <button id="delete-confirm" class="danger-solid" type="submit" value="delete">Delete</button>
    </div>
  </form>
</dialog>

<dialog id="rename-dialog" aria-labelledby="rename-dialog-title">
  <form id="rename-form" novalidate>
    <h2 id="rename-dialog-title">Rename this document</h2>
    <label for="rename-name">New name</label>
    <input id="rename-name" name="name" type="text" maxlength="128" autocomplete="off" spellcheck="false" aria-describedby="rename-help rename-message" required>
    <p id="rename-help" class="dialog-help">The text moves to the new name and the old name is deleted, with its history. Links to the old name lead to the new one, and anyone who has it open is taken there.</p>
    <p id="rename-message" class="message" role="alert" hidden></p>
    <div class="actions">
      <button id="rename-cancel" type="button">Cancel</button>
      <button id="rename-confirm" class="primary" type="submit">Rename</button>
    </div>
  </form>
</dialog>
`,
  );
}

export function deleteDialog(): { open(docId: string, onDelete: () => void): void } {
  insertDialogs();
  const dialog = byId<HTMLDialogElement>("delete-dialog");
  let confirmed: (() => void) | undefined;
  dialog.addEventListener("close", () => {
    const run = confirmed;
    confirmed = undefined;
    if (dialog.returnValue === "delete") run?.();
  });
  return {
    open(docId, onDelete) {
      byId("delete-dialog-text").textContent =
        `“${docId}” and its history are removed for everyone. Anyone who has it open is told it was deleted; this cannot be undone.`;
      confirmed = onDelete;
      dialog.returnValue = "";
      dialog.showModal();
    },
  };
}

/**
 * The rename dialog (`#rename-dialog`, see insertDialogs): asks for a new name for `docId`, checks
 * it, and runs `rename`, which says how it goes and answers undefined when done or why not.
 */
export function renameDialog(): {
  open(docId: string, rename: (newId: string, say: (text: string) => void) => Promise<string | undefined>): void;
} {
  insertDialogs();
  const dialog = byId<HTMLDialogElement>("rename-dialog");
  const form = byId<HTMLFormElement>("rename-form");
  const input = byId<HTMLInputElement>("rename-name");
  const message = byId("rename-message");
  const confirm = byId<HTMLButtonElement>("rename-confirm");
  let current: { docId: string; rename: (newId: string, say: (text: string) => void) => Promise<string | undefined> } | undefined;

  const say = (text: string) => {
    message.textContent = text;
    message.hidden = text === "";
  };
  const refuse = (text: string) => {
    input.setAttribute("aria-invalid", "true");
    say(text);
    input.focus();
  };
  input.addEventListener("input", () => {
    input.removeAttribute("aria-invalid");
    say("");
  });
  byId("rename-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (confirm.disabled || !current) return;
    const { docId, rename } = current;
    const newId = input.value.trim();
    if (newId === docId) return refuse("That is this document's name already: type a new one.");
    if (!docIdPattern.test(newId)) return refuse("Use 1 to 128 letters, digits, dots, dashes or underscores, not starting with a dot.");
    confirm.disabled = true;
    try {
      const refused = await rename(newId, say);
      if (refused !== undefined) refuse(refused);
      else dialog.close();
    } finally {
      confirm.disabled = false;
    }
  });
  return {
    open(docId, rename) {
      current = { docId, rename };
      input.value = docId;
      input.removeAttribute("aria-invalid");
      say("");
      confirm.disabled = false;
      dialog.showModal();
      input.select();
    },
  };
}

export interface ManageOptions {
  readonly docId: string;
  readonly doc: CollabDocument;
  readonly client: CollabClient;
  /** Shows a problem in the page's banner. */
  report(message: string): void;
}

/** The rename this page is making, if any: its own `Reset` then only closes the document. */
let renamingTo: string | undefined;
/** Whether this page is deleting its document: its own `Reset` is then no news. */
let deleting = false;

/** Offers "Rename…" and "Delete…" in the document page's header and wires their dialogs. */
export function setUpManage(options: ManageOptions): void {
  const { docId, doc, client } = options;
  const deleteButton = byId<HTMLButtonElement>("delete-doc");
  const renameButton = byId<HTMLButtonElement>("rename-doc");
  const deletion = deleteDialog();
  const renaming = renameDialog();
  deleteButton.hidden = false;
  renameButton.hidden = false;

  /** Leaves the document and opens `href`. */
  const leaveFor = async (href: string) => {
    await client.close();
    location.href = href;
  };

  deleteButton.addEventListener("click", () =>
    deletion.open(docId, async () => {
      deleteButton.disabled = renameButton.disabled = true;
      deleting = true;
      const refused = await deleteDocument(docId);
      if (refused === undefined) return await leaveFor("/");
      deleting = false;
      options.report(refused);
      deleteButton.disabled = renameButton.disabled = false;
    }),
  );

  renameButton.addEventListener("click", () =>
    renaming.open(docId, async (newId, say) => {
      renamingTo = newId;
      const refused = await renameDocument(docId, newId, openSource(doc), say);
      if (refused !== undefined) {
        renamingTo = undefined;
        return refused;
      }
      say(`Opening “${newId}”…`);
      await leaveFor(pageUrl(newId));
      return undefined;
    }),
  );
}

/** What a page hands to the page of the new id when its document was renamed. */
interface Carried {
  readonly from: string;
  readonly unconfirmed?: { readonly op: TextOperation; readonly serverText: string };
}

const carriedKey = (to: string) => `collab.renamed:${to}`;

export interface FollowOptions {
  readonly docId: string;
  readonly doc: CollabDocument;
  readonly client: CollabClient;
  readonly view: EditorView;
  /** Shows a message in the page's banner. */
  show(message: string, kind: "error" | "info"): void;
  /** The page leaves for the new id with the old one's unconfirmed edits: what was kept of them for the old id is not needed any more. */
  carriedAway?(): Promise<void>;
}

/**
 * What the document page does about renames and deletes: when this page was opened by a rename
 * of the document it had open (under its old id), says so and re-applies there the edits that were
 * not yet confirmed; when the open document is renamed, opens the new id (never joining the old
 * one again); when it is deleted, says so.
 */
export function followRenames(options: FollowOptions): void {
  const { docId, doc, client, show } = options;
  takeCarried(options);

  doc.on("reset", (e) => {
    if (e.reason === "renamed" && e.movedTo && docIdPattern.test(e.movedTo)) {
      const to = e.movedTo;
      // Closed now, before the document would join the old id again (and create it anew).
      void doc.close();
      if (renamingTo === to) return; // this page's own rename: it opens the new id itself
      const carried: Carried = { from: docId, ...(e.unconfirmed ? { unconfirmed: e.unconfirmed } : {}) };
      try {
        sessionStorage.setItem(carriedKey(to), JSON.stringify(carried));
      } catch {
        if (e.unconfirmed) {
          // They cannot be carried over: they stay in this editor, which is no longer connected.
          show(`“${docId}” was renamed to “${to}” by someone before your latest edits were saved. They are still here, but this page is no longer connected: copy them, then open “${to}”.`, "error");
          return;
        }
      }
      show(`“${docId}” was renamed to “${to}” by someone; opening it…`, "info");
      const forgotten = options.carriedAway?.().catch(() => undefined);
      void Promise.all([client.close(), forgotten]).finally(() => location.assign(pageUrl(to)));
      return;
    }
    if (e.reason === "deleted" && !deleting) {
      show(`“${docId}” was deleted by someone: its text is no longer on the server, so this page now shows it empty. Typing here creates it again.`, "info");
    }
  });
}

/** The page of a renamed document's new id, opened by the rename: says so, and re-applies the edits that were not yet saved. */
function takeCarried({ docId, doc, view, show }: FollowOptions): void {
  let carried: Carried | undefined;
  try {
    const raw = sessionStorage.getItem(carriedKey(docId));
    if (raw === null) return;
    sessionStorage.removeItem(carriedKey(docId));
    carried = JSON.parse(raw) as Carried;
  } catch {
    return;
  }
  if (typeof carried?.from !== "string") return;
  const renamed = `“${carried.from}” was renamed to “${docId}” by someone; this is it now.`;
  const unconfirmed = carried.unconfirmed;
  if (!unconfirmed) return show(renamed, "info");
  try {
    // The edits were made on the old text the server had (`serverText`); this document started
    // as that text, and may have changed since: the edits are moved over the difference.
    const since = ot.diff(unconfirmed.serverText, doc.text);
    const op = ot.transform(unconfirmed.op, since, true);
    view.dispatch({ changes: opToChanges(op) });
    show(`${renamed} Your edits that were not saved yet were added here.`, "info");
  } catch (error) {
    show(`${renamed} Your edits that were not saved yet could not be added here: ${failure(error)}.`, "error");
  }
}
