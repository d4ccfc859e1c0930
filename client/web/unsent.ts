// Unsent edits kept in this browser (IndexedDB), so closing the tab offline, a crash or a killed
// tab loses none: the page saves `doc.unsent()` whenever it changes, and a page that opens the
// document later restores them (CollabClient.open's `unsent`), sending them under the clientId
// and op ids they were made with, so none is applied twice.
//
// One record per (document, clientId). A live page holds a Web Lock named after its clientId;
// a record whose lock is free belongs to a page that is gone, and the next page to open that
// document takes it over: it takes the lock and becomes that clientId. Two tabs never share one.
// Web Locks need a secure context (https, or http on localhost); elsewhere nothing is kept and
// the page warns before it is closed with unsent edits, as before.

import type { AnyUnsentEdits, CollabDocument, RichTextDocument } from "@collabserver/client";

const databaseName = "collab-unsent";
const storeName = "edits";

/** What a page opening a document starts with: its clientId, and the unsent edits it took over, if any. */
export interface Claim {
  readonly clientId: string;
  readonly unsent: AnyUnsentEdits | undefined;
}

function lockName(clientId: string): string {
  return `collab.client.${clientId}`;
}

function randomId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether this page can keep unsent edits. */
export function canKeepUnsent(): boolean {
  return typeof indexedDB !== "undefined" && typeof navigator.locks?.request === "function";
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Resolves once `tx` has committed. */
function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("the IndexedDB transaction was aborted"));
  });
}

let opening: Promise<IDBDatabase> | undefined;

function database(): Promise<IDBDatabase> {
  opening ??= new Promise<IDBDatabase>((resolve, reject) => {
    const open = indexedDB.open(databaseName, 1);
    open.onupgradeneeded = () => {
      const store = open.result.createObjectStore(storeName, { keyPath: ["docId", "clientId"] });
      store.createIndex("docId", "docId");
    };
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  return opening;
}

/**
 * Holds the lock named after `clientId` for as long as the page lives, if it is free; false if
 * another page holds it.
 */
function holdLock(clientId: string): Promise<boolean> {
  return new Promise((resolve) => {
    void navigator.locks.request(lockName(clientId), { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      // Held until the page goes away.
      return lock === null ? undefined : new Promise<never>(() => undefined);
    });
  });
}

/**
 * The clientId this page is to use for `docId`: that of the newest record of unsent edits for it
 * whose page is gone (taken over, with its edits), or a new one. Without IndexedDB or Web Locks,
 * or if they fail, a new one with nothing restored.
 */
export async function claim(docId: string): Promise<Claim> {
  if (!canKeepUnsent()) return { clientId: randomId(), unsent: undefined };
  try {
    const db = await database();
    const records = (await request(db.transaction(storeName).objectStore(storeName).index("docId").getAll(docId))) as AnyUnsentEdits[];
    records.sort((a, b) => b.savedAt - a.savedAt);
    for (const record of records) {
      if (await holdLock(record.clientId)) return { clientId: record.clientId, unsent: record };
    }
  } catch (error) {
    console.warn("[collab] unsent edits kept in this browser could not be read:", error);
  }
  const clientId = randomId();
  await holdLock(clientId);
  return { clientId, unsent: undefined };
}

/** Forgets what is kept for `docId` under `clientId`: it could not be restored, or its edits went elsewhere (a rename carried them to the new id). */
export async function forget(docId: string, clientId: string): Promise<void> {
  if (!canKeepUnsent()) return;
  const tx = (await database()).transaction(storeName, "readwrite");
  tx.objectStore(storeName).delete([docId, clientId]);
  await committed(tx);
}

/** What keepUnsent reports. */
export interface KeepEvents {
  /** The unsent edits as they are now are kept (`edits` of them; 0: none left, the record is gone). */
  kept(edits: number): void;
  /** A write failed (the disk is full, site data was cleared): they are not kept. */
  failed(error: unknown): void;
}

/**
 * Keeps `doc`'s unsent edits in IndexedDB from now on: after every change to them the newest
 * (one write at a time; what changes during a write is saved by the next), and deletes the
 * record once every edit is confirmed.
 */
export function keepUnsent(doc: CollabDocument | RichTextDocument, events: KeepEvents): void {
  if (!canKeepUnsent()) return;
  const key = [doc.docId, doc.clientId];
  let writing = false;
  let dirty = false;
  const write = async () => {
    writing = true;
    try {
      let edits = 0;
      while (dirty) {
        dirty = false;
        const unsent = doc.unsent();
        edits = doc.pendingEdits;
        const tx = (await database()).transaction(storeName, "readwrite");
        if (unsent) tx.objectStore(storeName).put(unsent);
        else tx.objectStore(storeName).delete(key);
        await committed(tx);
      }
      events.kept(edits);
    } catch (error) {
      events.failed(error);
    } finally {
      writing = false;
    }
  };
  const changed = () => {
    dirty = true;
    if (!writing) void write();
  };
  // `pending` comes with every local edit and every confirmation. A remote change moves the
  // version the edits are based on: saving it then keeps the record close to the server's.
  doc.on("pending", changed);
  doc.on("change", () => {
    if (doc.pendingEdits > 0) changed();
  });
  changed();
}
