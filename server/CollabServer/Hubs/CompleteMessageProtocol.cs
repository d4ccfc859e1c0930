using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;

namespace CollabServer.Hubs;

/// <summary>
/// Wraps a hub protocol so that a message of a type the protocol does not know is skipped, as
/// SignalR means it to be, instead of wedging the connection. SignalR's parsers consume such a
/// message but answer "no message"; the connection's read loop then keeps the consumed bytes and
/// waits for a message that never comes, answering nothing and closing nothing (found by the
/// fuzzer: <c>Robustness/HubUnknownMessageTests</c>). Here the next message is parsed instead.
/// </summary>
public sealed class CompleteMessageProtocol(IHubProtocol inner) : IHubProtocol
{
    public string Name => inner.Name;

    public int Version => inner.Version;

    public TransferFormat TransferFormat => inner.TransferFormat;

    public bool IsVersionSupported(int version) => inner.IsVersionSupported(version);

    public ReadOnlyMemory<byte> GetMessageBytes(HubMessage message) => inner.GetMessageBytes(message);

    public void WriteMessage(HubMessage message, IBufferWriter<byte> output) => inner.WriteMessage(message, output);

    public bool TryParseMessage(ref ReadOnlySequence<byte> input, IInvocationBinder binder, [NotNullWhen(true)] out HubMessage? message)
    {
        while (true)
        {
            var before = input.Length;
            if (inner.TryParseMessage(ref input, binder, out message))
            {
                return true;
            }
            if (input.Length == before)
            {
                return false; // an incomplete message: wait for the rest
            }
            // A whole message of an unknown type was consumed and skipped: go on to the next one.
        }
    }

    /// <summary>Replaces every registered hub protocol with its wrapped form.</summary>
    public static void WrapAll(IServiceCollection services)
    {
        var registered = services.Where(d => d.ServiceType == typeof(IHubProtocol)).ToList();
        foreach (var descriptor in registered)
        {
            services.Remove(descriptor);
            services.AddSingleton<IHubProtocol>(provider =>
            {
                var inner = descriptor.ImplementationInstance as IHubProtocol
                    ?? (descriptor.ImplementationFactory?.Invoke(provider) as IHubProtocol)
                    ?? (IHubProtocol)ActivatorUtilities.CreateInstance(provider, descriptor.ImplementationType!);
                return new CompleteMessageProtocol(inner);
            });
        }
    }
}
