// errd: matching (name, regex, argregex), bounds, flips only, and real processes coming and going.
using System;
using System.Linq;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Checkers;

public sealed class ErrdCheckerTests
{
    private static readonly TimeSpan FastPoll = TimeSpan.FromMilliseconds(100);

    private static ErrdChecker Checker(ProcessMonitorConfig config, IProcessTable? table = null) =>
        new(config, FastPoll, Contexts.Create(processes: table ?? new FakeProcessTable()));

    [Fact]
    public void Properties_FollowTheConfiguration()
    {
        var prim = Checker(new ProcessMonitorConfig { Name = "postgres", Class = ProcessClass.Prim, Action = CheckAction.Restart });
        var both = Checker(new ProcessMonitorConfig { Name = "nginx", Class = ProcessClass.Both });

        Assert.Equal("errd.postgres", prim.Resource);
        Assert.Equal(CheckWhen.Prim, prim.When);
        Assert.Equal(CheckAction.Restart, prim.Action);
        Assert.Equal(CheckWhen.Both, both.When);
        Assert.Equal(CheckAction.StopStart, both.Action);
    }

    [Theory]
    [InlineData(1, null, 0, false, "postgres: 0 running, at least 1 expected")]
    [InlineData(1, null, 1, true, "postgres: 1 running")]
    [InlineData(1, null, 50, true, "postgres: 50 running")]
    [InlineData(2, 3, 1, false, "postgres: 1 running, at least 2 expected")]
    [InlineData(2, 3, 3, true, "postgres: 3 running")]
    [InlineData(2, 3, 4, false, "postgres: 4 running, at most 3 expected")]
    [InlineData(0, 0, 0, true, "postgres: 0 running")]
    [InlineData(0, 0, 1, false, "postgres: 1 running, at most 0 expected")]
    public void Evaluate_IsUpInsideTheBounds(int atLeast, int? atMost, int count, bool up, string reason)
    {
        var checker = Checker(new ProcessMonitorConfig { Name = "postgres", AtLeast = atLeast, AtMost = atMost });

        var (value, why) = checker.Evaluate(count);

        Assert.Equal(up ? ResourceValue.Up : ResourceValue.Down, value);
        Assert.Equal(reason, why);
    }

    [Fact]
    public void Count_ByExactName_IgnoresOtherNames()
    {
        var table = new FakeProcessTable();
        table.Set(("postgres", "postgres -D /data"), ("postgres", "postgres: checkpointer"), ("postgresql", "x"), ("Postgres", "y"));

        Assert.Equal(2, Checker(new ProcessMonitorConfig { Name = "postgres" }).Count(table.Processes));
    }

    [Fact]
    public void Count_ByRegex_AndArgumentsRegex()
    {
        var table = new FakeProcessTable();
        table.Set(("java", "/usr/bin/java -jar app.jar --port 8080"), ("java", "/usr/bin/java -jar other.jar"),
            ("javaw", "javaw -jar app.jar"), ("python3", "python3 app.jar"));

        Assert.Equal(3, Checker(new ProcessMonitorConfig { Name = "^java", IsRegex = true }).Count(table.Processes));
        Assert.Equal(2, Checker(new ProcessMonitorConfig { Name = "^javaw?$", IsRegex = true, ArgumentsRegex = @"-jar app\.jar" }).Count(table.Processes));
        Assert.Equal(1, Checker(new ProcessMonitorConfig { Name = "java", ArgumentsRegex = "--port 80[0-9]0" }).Count(table.Processes));
        // Without regex="on" the name is literal.
        Assert.Equal(0, Checker(new ProcessMonitorConfig { Name = "^java" }).Count(table.Processes));
    }

    [Fact]
    public async Task Run_ReportsOnlyFlips()
    {
        var table = new FakeProcessTable();
        table.Set(("app", "app"));
        await using var run = new CheckerRun(Checker(new ProcessMonitorConfig { Name = "app" }, table));

        var first = await run.NextAsync();
        Assert.Equal(ResourceValue.Up, first.Value);
        Assert.Equal("errd.app", first.Resource);
        Assert.Equal(CheckAction.StopStart, first.Action);

        table.Set(("app", "app"), ("app", "app")); // still up: nothing to say
        table.Set();
        var down = await run.NextAsync();
        Assert.Equal(ResourceValue.Down, down.Value);
        Assert.Equal("app: 0 running, at least 1 expected", down.Reason);

        table.Set(("app", "app"));
        Assert.Equal(ResourceValue.Up, (await run.NextAsync()).Value);
        Assert.Equal(0, run.Pending);
    }

    [Fact]
    public async Task Run_UnreadableProcessTable_IsDown_WithTheReason()
    {
        var table = new FakeProcessTable { Failure = new UnauthorizedAccessException("no /proc") };
        await using var run = new CheckerRun(Checker(new ProcessMonitorConfig { Name = "app" }, table));

        var change = await run.NextAsync();

        Assert.Equal(ResourceValue.Down, change.Value);
        Assert.Contains("no /proc", change.Reason, StringComparison.Ordinal);
    }

    [LinuxFact]
    public async Task Run_RealProcess_UpWhileRunning_DownWhenKilled()
    {
        using var processes = new TestProcesses();
        var name = TestProcesses.UniqueName();
        var binary = processes.SleepBinary(name);
        var process = processes.Start(binary, "600");
        await using var run = new CheckerRun(Checker(new ProcessMonitorConfig { Name = name }, new LinuxProcessTable()));

        var up = await run.NextAsync();
        Assert.Equal(ResourceValue.Up, up.Value);
        Assert.Equal($"{name}: 1 running", up.Reason);

        TestProcesses.Kill(process);

        var down = await run.NextAsync();
        Assert.Equal(ResourceValue.Down, down.Value);
        Assert.Equal($"{name}: 0 running, at least 1 expected", down.Reason);

        processes.Start(binary, "600");
        Assert.Equal(ResourceValue.Up, (await run.NextAsync()).Value);
    }

    [LinuxFact]
    public async Task Run_RealProcesses_AtLeastAndAtMost_BothWays()
    {
        using var processes = new TestProcesses();
        var name = TestProcesses.UniqueName();
        var binary = processes.SleepBinary(name);
        await using var run = new CheckerRun(Checker(new ProcessMonitorConfig { Name = name, AtLeast = 2, AtMost = 2 }, new LinuxProcessTable()));

        Assert.Equal($"{name}: 0 running, at least 2 expected", (await run.NextAsync()).Reason);

        var first = processes.Start(binary, "600");
        processes.Start(binary, "600");
        Assert.Equal(ResourceValue.Up, (await run.NextAsync()).Value);

        var third = processes.Start(binary, "600");
        var tooMany = await run.NextAsync();
        Assert.Equal(ResourceValue.Down, tooMany.Value);
        Assert.Equal($"{name}: 3 running, at most 2 expected", tooMany.Reason);

        TestProcesses.Kill(third);
        Assert.Equal(ResourceValue.Up, (await run.NextAsync()).Value);

        TestProcesses.Kill(first);
        var tooFew = await run.NextAsync();
        Assert.Equal($"{name}: 1 running, at least 2 expected", tooFew.Reason);
    }

    [LinuxFact]
    public async Task Run_RealProcesses_RegexNameAndArgumentsRegex()
    {
        using var processes = new TestProcesses();
        var stem = TestProcesses.UniqueName(10);
        var a = processes.SleepBinary(stem + "-a");
        var b = processes.SleepBinary(stem + "-b");
        processes.Start(a, "600");
        processes.Start(b, "600");
        var watched = processes.Start(b, "601");
        var table = new LinuxProcessTable();

        var byRegex = Checker(new ProcessMonitorConfig { Name = $"^{stem}-[ab]$", IsRegex = true, AtLeast = 3 }, table);
        var byArguments = Checker(new ProcessMonitorConfig { Name = $"^{stem}-", IsRegex = true, ArgumentsRegex = " 601$" }, table);
        Wait.Until(() => byRegex.Count(table.Snapshot()) == 3, "the three processes");
        Assert.Equal(1, byArguments.Count(table.Snapshot()));

        await using var run = new CheckerRun(byArguments);
        Assert.Equal(ResourceValue.Up, (await run.NextAsync()).Value);
        TestProcesses.Kill(watched);
        var down = await run.NextAsync();
        Assert.Equal(ResourceValue.Down, down.Value);
        Assert.Equal($"^{stem}-: 0 running, at least 1 expected", down.Reason);
    }
}
