namespace Collab.Client;

/// <summary>A change of <see cref="ConnectionState"/>.</summary>
public sealed class ConnectionStateChangedEventArgs : EventArgs
{
    /// <summary>Creates the arguments.</summary>
    public ConnectionStateChangedEventArgs(ConnectionState previous, ConnectionState current)
    {
        Previous = previous;
        Current = current;
    }

    /// <summary>The state before the change.</summary>
    public ConnectionState Previous { get; }

    /// <summary>The state after the change.</summary>
    public ConnectionState Current { get; }
}
