using Collab.Testing;
using Npgsql;

namespace CollabCluster.Tests;

/// <summary>
/// The PostgreSQL fixture itself: a committed row survives a crash of the server, a synchronous
/// standby has it and can take over, and a multi-host connection string finds whichever server is
/// the primary. The cluster tests rely on all three.
/// </summary>
public sealed class PostgresServerTests
{
    [Fact]
    public void ACommittedRowSurvivesAKill()
    {
        using var server = PostgresServer.Start();
        server.Psql("CREATE TABLE t (v text)");
        server.Psql("INSERT INTO t VALUES ('kept')");
        var pid = server.Pid;

        server.Kill();
        Assert.Null(server.Pid);
        Assert.Throws<InvalidOperationException>(() => server.Psql("SELECT 1"));

        server.Restart();
        Assert.NotEqual(pid, server.Pid);
        Assert.Equal("kept", server.Psql("SELECT v FROM t"));
        server.Psql("INSERT INTO t VALUES ('after')"); // it takes writes again

        server.StopImmediate();
        server.Restart();
        Assert.Equal("after,kept", server.Psql("SELECT string_agg(v, ',' ORDER BY v) FROM t"));
    }

    [Fact]
    public async Task TheMostAdvancedStandbyTakesOverWithTheCommittedRow()
    {
        using var primary = PostgresServer.Start();
        using var s1 = primary.StartStandby("s1");
        using var s2 = primary.StartStandby("s2");
        primary.SetSynchronousStandbys("ANY 1 (s1, s2)");
        await Eventually.TrueAsync(
            () => Task.FromResult(primary.Psql("SELECT string_agg(application_name || ':' || sync_state, ',' ORDER BY application_name) FROM pg_stat_replication") == "s1:quorum,s2:quorum"),
            "both standbys stream, as a quorum of which one must have every commit");

        primary.Psql("CREATE TABLE t (v text)");
        primary.Psql("INSERT INTO t VALUES ('committed')");
        await Eventually.TrueAsync(() => Task.FromResult(Rows(s1) == "committed" || Rows(s2) == "committed"), "a standby shows the row");
        Assert.Throws<InvalidOperationException>(() => s1.Psql("INSERT INTO t VALUES ('on a standby')")); // read-only

        primary.Kill();
        var next = s1.ReplayedLsn() >= s2.ReplayedLsn() ? s1 : s2;
        next.Promote();

        Assert.Equal("committed", Rows(next));
        next.Psql("INSERT INTO t VALUES ('after failover')");
        Assert.Equal("after failover,committed", Rows(next));
        Assert.Equal("f", next.Psql("SELECT pg_is_in_recovery()"));
    }

    [Fact]
    public async Task ACommitWaitsForItsSynchronousStandby()
    {
        using var primary = PostgresServer.Start();
        using var standby = primary.StartStandby("s1");
        primary.SetSynchronousStandbys("s1");
        await Eventually.TrueAsync(() => Task.FromResult(primary.Psql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 's1'") == "sync"), "s1 is the synchronous standby");
        primary.Psql("CREATE TABLE t (v text)");

        standby.StopImmediate();
        try
        {
            var insert = ExecuteAsync(primary.ConnectionString, "INSERT INTO t VALUES ('waited')");
            // Absence has no event to wait for: the commit is still waiting a second later.
            await Task.Delay(TimeSpan.FromSeconds(1));
            Assert.False(insert.IsCompleted, "the commit did not wait for its synchronous standby");

            standby.Restart();
            await insert.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal("waited", Rows(standby));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
        }
    }

    [Fact]
    public async Task AMultiHostConnectionFindsThePromotedStandby()
    {
        using var primary = PostgresServer.Start();
        using var standby = primary.StartStandby("s1");
        var both = PostgresServer.MultiHost(primary, standby);
        try
        {
            Assert.Equal(primary.Port, await ServerPortAsync(both));
            await ExecuteAsync(both, "CREATE TABLE t (v text); INSERT INTO t VALUES ('before')");
            await Eventually.TrueAsync(() => Task.FromResult(Rows(standby) == "before"), "the standby shows the row");

            primary.Kill();
            NpgsqlConnection.ClearAllPools(); // what a node holds on to after a failover: nothing that worked before
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => ServerPortAsync(both)); // a standby is not a primary
            standby.Promote();

            // Npgsql remembers that a host was a standby for Host Recheck Seconds (10 s by default).
            await Eventually.TrueAsync(async () => await TryServerPortAsync(both) == standby.Port, "the connection string finds the promoted standby");
            await ExecuteAsync(both, "INSERT INTO t VALUES ('after')");
            Assert.Equal("after,before", Rows(standby));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
        }
    }

    /// <summary>The table's rows, sorted and joined with commas; empty while it does not exist there yet.</summary>
    private static string Rows(PostgresServer server)
    {
        try
        {
            return server.Psql("SELECT string_agg(v, ',' ORDER BY v) FROM t");
        }
        catch (InvalidOperationException)
        {
            return ""; // the table is not there (yet)
        }
    }

    private static async Task<int> ServerPortAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT inet_server_port()", connection);
        return (int)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<int?> TryServerPortAsync(string connectionString)
    {
        try
        {
            return await ServerPortAsync(connectionString);
        }
        catch (NpgsqlException)
        {
            return null; // no primary among the hosts (yet)
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
