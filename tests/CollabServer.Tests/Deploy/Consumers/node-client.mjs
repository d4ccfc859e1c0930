// A Node program outside the repository that uses the packed @collabserver/client (PackagesTests
// installs the tarball into a new project): Ada and Bob edit one document; it prints what each ends with.
import { CollabClient } from "@collabserver/client";

const [serverUrl, docId] = process.argv.slice(2);
const ada = new CollabClient({ serverUrl, user: { name: "Ada", color: "#dd3333" } });
const bob = new CollabClient({ serverUrl, user: { name: "Bob", color: "#3333dd" } });
const sees = (doc, text) =>
  new Promise((resolve) => {
    if (doc.text === text) resolve();
    doc.on("change", () => doc.text === text && resolve());
  });
try {
  const a = await ada.open(docId);
  const b = await bob.open(docId);
  const bobSeesAda = sees(b, "from Ada");
  a.insert(0, "from Ada");
  await a.whenSynchronized();
  await bobSeesAda;
  const adaSeesBob = sees(a, "from Ada, and Bob");
  b.insert(b.text.length, ", and Bob");
  await b.whenSynchronized();
  await adaSeesBob;
  console.log(JSON.stringify({ a: a.text, b: b.text, version: b.version }));
} finally {
  await ada.close();
  await bob.close();
}
