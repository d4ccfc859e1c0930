// Delete and rename, on the document page, for those who may (`DELETE /api/docs/{id}` needs
// `collab:admin` with access control on, PROTOCOL §7). Rename needs no server support of its own:
// the new id gets the current text (`PUT`), then the old id is deleted, and the page opens the
// new one. The old id's history stays behind (it is deleted), and links to it no longer work.

import type { CollabClient, CollabDocument } from "@collabserver/client";
import { authHeaders, byId } from "./common.js";

/** Document ids (PROTOCOL §6): 1 to 128 of A-Z a-z 0-9 . _ -, not starting with a dot. */
export const docIdPattern = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

function docUrl(id: string): string {
  return `/api/docs/${encodeURIComponent(id)}`;
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

export interface ManageOptions {
  readonly docId: string;
  readonly doc: CollabDocument;
  readonly client: CollabClient;
  /** Shows a problem in the page's banner. */
  report(message: string): void;
}

/** Offers "Rename…" and "Delete…" in the header and wires their dialogs (markup in doc.html). */
export function setUpManage(options: ManageOptions): void {
  const { docId, doc, client } = options;
  const deleteButton = byId<HTMLButtonElement>("delete-doc");
  const renameButton = byId<HTMLButtonElement>("rename-doc");
  const deleteDialog = byId<HTMLDialogElement>("delete-dialog");
  const renameDialog = byId<HTMLDialogElement>("rename-dialog");
  const renameForm = byId<HTMLFormElement>("rename-form");
  const renameInput = byId<HTMLInputElement>("rename-name");
  const renameMessage = byId("rename-message");
  const renameConfirm = byId<HTMLButtonElement>("rename-confirm");
  byId("delete-dialog-text").textContent =
    `“${docId}” and its history are removed for everyone. Anyone who has it open is reset to an empty document; this cannot be undone.`;
  deleteButton.hidden = false;
  renameButton.hidden = false;

  /** Leaves the document and opens `href`. */
  const leaveFor = async (href: string) => {
    await client.close();
    location.href = href;
  };

  deleteButton.addEventListener("click", () => {
    deleteDialog.returnValue = "";
    deleteDialog.showModal();
  });
  deleteDialog.addEventListener("close", async () => {
    if (deleteDialog.returnValue !== "delete") return;
    deleteButton.disabled = renameButton.disabled = true;
    try {
      const response = await fetch(docUrl(docId), { method: "DELETE", headers: authHeaders() });
      // 404: someone else deleted it first; it is gone either way.
      if (response.ok || response.status === 404) return await leaveFor("/");
      options.report(`“${docId}” was not deleted: ${await refusal(response)}.`);
    } catch (error) {
      options.report(`“${docId}” was not deleted: ${failure(error)}.`);
    }
    deleteButton.disabled = renameButton.disabled = false;
  });

  const say = (text: string) => {
    renameMessage.textContent = text;
    renameMessage.hidden = text === "";
  };

  renameButton.addEventListener("click", () => {
    renameInput.value = docId;
    renameInput.removeAttribute("aria-invalid");
    say("");
    renameConfirm.disabled = false;
    renameDialog.showModal();
    renameInput.select();
  });
  renameInput.addEventListener("input", () => {
    renameInput.removeAttribute("aria-invalid");
    say("");
  });
  byId("rename-cancel").addEventListener("click", () => renameDialog.close());

  const refuse = (text: string) => {
    renameInput.setAttribute("aria-invalid", "true");
    say(text);
    renameInput.focus();
  };

  renameForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (renameConfirm.disabled) return;
    const newId = renameInput.value.trim();
    if (newId === docId) return refuse("That is this document's name already: type a new one.");
    if (!docIdPattern.test(newId)) return refuse("Use 1 to 128 letters, digits, dots, dashes or underscores, not starting with a dot.");
    renameConfirm.disabled = true;
    try {
      say(`Checking whether “${newId}” is free…`);
      const existing = await fetch(docUrl(newId), { headers: { accept: "application/json", ...authHeaders() } });
      if (existing.ok) return refuse(`“${newId}” already exists: choose another name.`);
      if (existing.status !== 404) return refuse(`“${newId}” could not be checked: ${await refusal(existing)}.`);

      say("Saving the latest edits…");
      await doc.whenSynchronized();
      say(`Copying the text to “${newId}”…`);
      const put = await fetch(docUrl(newId), {
        method: "PUT",
        headers: { "content-type": "application/json", ...authHeaders() },
        body: JSON.stringify({ text: doc.text }),
      });
      if (!put.ok) return refuse(`“${newId}” could not be created: ${await refusal(put)}.`);

      say(`Deleting “${docId}”…`);
      const removed = await fetch(docUrl(docId), { method: "DELETE", headers: authHeaders() });
      if (!removed.ok && removed.status !== 404) {
        return refuse(`“${newId}” now has the text, but “${docId}” could not be deleted: ${await refusal(removed)}.`);
      }
      say(`Opening “${newId}”…`);
      await leaveFor(`/d/${encodeURIComponent(newId)}`);
    } catch (error) {
      refuse(`The rename did not finish: ${failure(error)}.`);
    } finally {
      renameConfirm.disabled = false;
    }
  });
}
