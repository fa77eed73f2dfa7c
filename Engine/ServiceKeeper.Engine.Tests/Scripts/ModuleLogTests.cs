// The module log: numbering, paging for followers, restart continuity, rotation, torn files.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using ServiceKeeper.Engine.Scripts;
using ServiceKeeper.Engine.Tests.Checkers;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Scripts;

public sealed class ModuleLogTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => _dir.Dispose();

    private ModuleLog Create(long maxFileBytes = ModuleLog.DefaultMaxFileBytes, int archivedFiles = ModuleLog.DefaultArchivedFiles, int memoryLines = ModuleLog.DefaultMemoryLines) =>
        new(_dir.Path, "n1", _time, null, maxFileBytes, archivedFiles, memoryLines);

    [Fact]
    public void Write_NumbersLinesFromOne_AndReadReturnsTheTail()
    {
        using var log = Create();
        for (var i = 1; i <= 10; i++)
            log.Write("sql", "start_prim", $"line {i}");

        var tail = log.Read("sql", 3, null);

        Assert.Equal(new long[] { 8, 9, 10 }, tail.Select(l => l.Sequence));
        Assert.Equal(new[] { "line 8", "line 9", "line 10" }, tail.Select(l => l.Text));
        Assert.All(tail, l =>
        {
            Assert.Equal("sql", l.Module);
            Assert.Equal("n1", l.Node);
            Assert.Equal("start_prim", l.Source);
            Assert.Equal(new DateTime(2025, 3, 1, 12, 0, 0, DateTimeKind.Utc), l.TimeUtc);
            Assert.Equal(DateTimeKind.Utc, l.TimeUtc.Kind);
        });
        Assert.Equal(10, log.Read("sql", 100, null).Count);
        Assert.Empty(log.Read("sql", 0, null));
    }

    [Fact]
    public void Read_AfterSequence_ReturnsTheNextLines_AtMostTail()
    {
        using var log = Create();
        for (var i = 1; i <= 10; i++)
            log.Write("sql", "s", $"{i}");

        Assert.Equal(new long[] { 5, 6, 7 }, log.Read("sql", 3, 4).Select(l => l.Sequence));
        Assert.Equal(new long[] { 9, 10 }, log.Read("sql", 100, 8).Select(l => l.Sequence));
        Assert.Empty(log.Read("sql", 100, 10));
        Assert.Equal(new long[] { 1, 2 }, log.Read("sql", 2, 0).Select(l => l.Sequence));
    }

    [Fact]
    public void Modules_AreNumberedAndFiledSeparately()
    {
        using var log = Create();
        log.Write("a", "s", "a1");
        log.Write("b", "s", "b1");
        log.Write("a", "s", "a2");

        Assert.Equal(new long[] { 1, 2 }, log.Read("a", 10, null).Select(l => l.Sequence));
        Assert.Equal(new[] { "b1" }, log.Read("b", 10, null).Select(l => l.Text));
        Assert.True(File.Exists(Path.Combine(_dir.Path, "a.log")));
        Assert.True(File.Exists(Path.Combine(_dir.Path, "b.log")));
        Assert.Empty(log.Read("never-written", 10, null));
    }

    [Fact]
    public void Write_AppendsTimeSequenceSourceAndText_ToTheModuleFile()
    {
        using (var log = Create())
        {
            log.Write("sql", "start_prim", "hello: world");
            _time.Advance(TimeSpan.FromMilliseconds(1234));
            log.Write("sql", "errd postgres", "two\nlines\r\n");
        }

        Assert.Equal(new[]
        {
            "2025-03-01T12:00:00.000Z 1 start_prim: hello: world",
            "2025-03-01T12:00:01.234Z 2 errd_postgres: two",
            "2025-03-01T12:00:01.234Z 3 errd_postgres: lines",
        }, File.ReadAllLines(Path.Combine(_dir.Path, "sql.log")));
    }

    [Fact]
    public void Restart_ContinuesNumbering_AndReloadsTheTail()
    {
        using (var log = Create())
        {
            for (var i = 1; i <= 7; i++)
                log.Write("sql", "s", $"before {i}");
        }

        using (var log = Create(memoryLines: 5))
        {
            var reloaded = log.Read("sql", 100, null);
            Assert.Equal(new long[] { 3, 4, 5, 6, 7 }, reloaded.Select(l => l.Sequence));
            Assert.Equal("before 7", reloaded[^1].Text);

            log.Write("sql", "s", "after");

            // A follower that had seen up to 7 gets exactly the new line.
            var next = Assert.Single(log.Read("sql", 100, 7));
            Assert.Equal(8, next.Sequence);
            Assert.Equal("after", next.Text);
        }
    }

    [Fact]
    public void Restart_AfterRotation_ContinuesFromTheNewestArchive()
    {
        using (var log = Create(maxFileBytes: 1024))
        {
            for (var i = 1; i <= 30; i++)
                log.Write("sql", "s", new string('x', 60) + i);
        }
        // Leave the current file empty, as right after a rotation.
        File.WriteAllText(Path.Combine(_dir.Path, "sql.log"), "");

        using var again = Create(maxFileBytes: 1024);
        Assert.True(again.Read("sql", 1, null).Single().Sequence < 30);
        var last = again.Read("sql", 1, null).Single().Sequence;
        again.Write("sql", "s", "next");
        Assert.Equal(last + 1, again.Read("sql", 1, null).Single().Sequence);
    }

    [Fact]
    public void Rotation_KeepsTheConfiguredArchives_AndNumberingRunsOn()
    {
        using (var log = Create(maxFileBytes: 1024, archivedFiles: 2))
        {
            for (var i = 1; i <= 200; i++)
                log.Write("sql", "s", new string('x', 40) + i);
            Assert.Equal(200, log.Read("sql", 1, null).Single().Sequence);
        }

        var files = Directory.GetFiles(_dir.Path).Select(Path.GetFileName).OrderBy(f => f, StringComparer.Ordinal).ToArray();
        Assert.Equal(new[] { "sql.log", "sql.log.1", "sql.log.2" }, files);
        foreach (var file in files)
            Assert.InRange(new FileInfo(Path.Combine(_dir.Path, file!)).Length, 1, 1024);

        // The files hold consecutive runs: .2 then .1 then the current one, ending at 200.
        var sequences = new[] { "sql.log.2", "sql.log.1", "sql.log" }
            .SelectMany(f => File.ReadAllLines(Path.Combine(_dir.Path, f)))
            .Select(l => long.Parse(l.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture))
            .ToList();
        Assert.Equal(200, sequences[^1]);
        Assert.Equal(Enumerable.Range((int)sequences[0], sequences.Count).Select(i => (long)i), sequences);

        using var again = Create(maxFileBytes: 1024, archivedFiles: 2);
        again.Write("sql", "s", "after restart");
        Assert.Equal(201, again.Read("sql", 1, null).Single().Sequence);
    }

    [Fact]
    public void Memory_KeepsOnlyTheLastLines_AndAFollowerBehindGetsTheOldestKept()
    {
        using var log = Create(memoryLines: 10);
        for (var i = 1; i <= 25; i++)
            log.Write("sql", "s", $"{i}");

        Assert.Equal(Enumerable.Range(16, 10).Select(i => (long)i), log.Read("sql", 100, null).Select(l => l.Sequence));
        Assert.Equal(new long[] { 16, 17 }, log.Read("sql", 2, 3).Select(l => l.Sequence));
    }

    [Fact]
    public void TornLastLine_IsSkippedOnLoad_AndTheNextLineStartsOnItsOwn()
    {
        using (var log = Create())
        {
            log.Write("sql", "s", "one");
            log.Write("sql", "s", "two");
        }
        var path = Path.Combine(_dir.Path, "sql.log");
        File.AppendAllText(path, "2025-03-01T12:00:00.000Z 3 s: tor");

        using (var log = Create())
        {
            Assert.Equal(new[] { "one", "two", "tor" }, log.Read("sql", 10, null).Select(l => l.Text));
            log.Write("sql", "s", "four");
        }

        var lines = File.ReadAllLines(path);
        Assert.Equal("2025-03-01T12:00:00.000Z 4 s: four", lines[^1]);
        Assert.Equal("2025-03-01T12:00:00.000Z 3 s: tor", lines[^2]);

        File.AppendAllText(path, "garbage without fields");
        using var third = Create();
        Assert.Equal(4, third.Read("sql", 1, null).Single().Sequence);
    }

    [Fact]
    public async Task ConcurrentWriters_GetDistinctConsecutiveSequences()
    {
        using var log = Create();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(() =>
        {
            for (var i = 0; i < 200; i++)
                log.Write("sql", $"w{w}", $"{i}");
        })));

        var lines = log.Read("sql", 5000, null);
        Assert.Equal(Enumerable.Range(1, 1600).Select(i => (long)i), lines.Select(l => l.Sequence));
        var fileSequences = File.ReadAllLines(Path.Combine(_dir.Path, "sql.log")).Select(l => l.Split(' ')[1]);
        Assert.Equal(Enumerable.Range(1, 1600).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), fileSequences);
    }

    [Theory]
    [InlineData("")]
    [InlineData("../x")]
    [InlineData("a/b")]
    [InlineData("..")]
    public void InvalidModuleName_IsRejected(string module)
    {
        using var log = Create();
        Assert.ThrowsAny<ArgumentException>(() => log.Write(module, "s", "t"));
    }
}
