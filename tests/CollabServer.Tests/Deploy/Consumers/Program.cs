// A program outside the repository that uses the packed Collab.Client and Collab.Protocol as any
// .NET developer would (PackagesTests copies it into a new console project). Two clients edit one
// document at once; it prints what each ends with.
using System.Text.Json;
using Collab.Client;
using Collab.Ot;

var server = new Uri(args[0]);
var docId = args[1];

// Collab.Protocol on its own: the README's example.
var text = "hello world";
var mine = TextOperation.Insert(5, ",");
var theirs = TextOperation.Delete(5, 6);
var protocol = (
    TextOperation.Transform(theirs, mine, aWinsTies: false).Apply(mine.Apply(text)),
    TextOperation.Transform(mine, theirs, aWinsTies: true).Apply(theirs.Apply(text)));

await using var ada = new CollabClient(new CollabClientOptions { ServerUrl = server });
await using var bob = new CollabClient(new CollabClientOptions { ServerUrl = server });
await using var a = await ada.OpenAsync(docId);
await using var b = await bob.OpenAsync(docId);
// Both type before either hears of the other: the server orders the two edits.
a.Insert(0, "from Ada");
b.Insert(0, "Bob: ");
await Task.WhenAll(a.WhenSynchronizedAsync(), b.WhenSynchronizedAsync());
using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(120));
while (a.Version != 2 || b.Version != 2)
{
    await Task.Delay(20, deadline.Token);
}
Console.WriteLine(JsonSerializer.Serialize(new { a = a.Text, b = b.Text, version = a.Version, protocol = new[] { protocol.Item1, protocol.Item2 } }));
