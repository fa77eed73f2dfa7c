// custom: the module's check program decides up/down by its exit code.
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Scripts;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Checkers;

public sealed class CustomCheckerTests : IDisposable
{
    private static readonly TimeSpan FastInterval = TimeSpan.FromMilliseconds(100);
    private readonly TempDirectory _module = new();
    private readonly MemoryModuleLog _log = new();

    public void Dispose() => _module.Dispose();

    private CustomChecker Checker(CustomCheckConfig config, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null) =>
        new(config, Contexts.Create(scripts: new ProcessScriptRunner(_log), moduleDirectory: _module.Path, environment: environment),
            FastInterval, timeout ?? TimeSpan.FromSeconds(30));

    [LinuxFact]
    public async Task Run_FollowsTheExitCode_OfTheProgramInBin()
    {
        var state = Path.Combine(_module.Path, "state");
        File.WriteAllText(state, "0");
        _module.Script("bin/appcheck", $"#!/bin/sh\nexit $(cat '{state}')\n");
        await using var run = new CheckerRun(Checker(new CustomCheckConfig { Ident = "app", Exec = "appcheck" }));

        var up = await run.NextAsync();
        Assert.Equal(ResourceValue.Up, up.Value);
        Assert.Equal("custom.app", up.Resource);
        Assert.Equal(CheckAction.Restart, up.Action);

        File.WriteAllText(state, "3");
        var down = await run.NextAsync();
        Assert.Equal(ResourceValue.Down, down.Value);
        Assert.Equal("appcheck: exit code 3", down.Reason);

        File.WriteAllText(state, "0");
        Assert.Equal(ResourceValue.Up, (await run.NextAsync()).Value);
    }

    [LinuxFact]
    public async Task Run_PassesSplitArgumentsAndTheModuleEnvironment()
    {
        var seen = Path.Combine(_module.Path, "seen");
        _module.Script("bin/appcheck", $"#!/bin/sh\necho \"$#|$1|$2|$SK_MODULE\" > '{seen}'\necho checked\n");
        var checker = Checker(new CustomCheckConfig { Ident = "app", Exec = "appcheck", Arguments = "--url 'http://127.0.0.1/a b'" },
            new Dictionary<string, string> { ["SK_MODULE"] = "m1" });
        await using var run = new CheckerRun(checker);

        Assert.Equal(ResourceValue.Up, (await run.NextAsync()).Value);
        Assert.Equal("2|--url|http://127.0.0.1/a b|m1", File.ReadAllText(seen).TrimEnd());
        Assert.Contains("checked", _log.Texts("custom.app"));
    }

    [LinuxFact]
    public async Task Run_CommandFromPath_WhenBinHasNone()
    {
        await using var run = new CheckerRun(Checker(new CustomCheckConfig { Ident = "t", Exec = "sh", Arguments = "-c 'exit 7'" }));

        Assert.Equal("sh: exit code 7", (await run.NextAsync()).Reason);
    }

    [Fact]
    public async Task Run_MissingProgram_IsDown()
    {
        await using var run = new CheckerRun(Checker(new CustomCheckConfig { Ident = "app", Exec = "sk-no-such-check-" + Guid.NewGuid().ToString("N") }));

        var change = await run.NextAsync();

        Assert.Equal(ResourceValue.Down, change.Value);
        Assert.Contains("not found", change.Reason, StringComparison.Ordinal);
    }

    [LinuxFact]
    public async Task Run_HangingProgram_IsDownAtTheTimeout()
    {
        _module.Script("bin/hang", "#!/bin/sh\nexec sleep 600\n");
        await using var run = new CheckerRun(Checker(new CustomCheckConfig { Ident = "app", Exec = "hang" }, timeout: TimeSpan.FromMilliseconds(500)));

        var change = await run.NextAsync();

        Assert.Equal(ResourceValue.Down, change.Value);
        Assert.Equal("hang: no answer within 0.5s", change.Reason);
    }

    [Fact]
    public void Evaluate_ExplainsEachOutcome()
    {
        var timeout = TimeSpan.FromSeconds(10);
        Assert.Equal((ResourceValue.Up, "c: exit code 0"), CustomChecker.Evaluate("c", new ScriptResult(0, false, false, TimeSpan.Zero), timeout));
        Assert.Equal((ResourceValue.Down, "c: exit code 1"), CustomChecker.Evaluate("c", new ScriptResult(1, false, false, TimeSpan.Zero), timeout));
        Assert.Equal((ResourceValue.Down, "c: no answer within 10s"), CustomChecker.Evaluate("c", new ScriptResult(-1, true, false, timeout), timeout));
        Assert.Equal(ResourceValue.Down, CustomChecker.Evaluate("c", new ScriptResult(127, false, true, TimeSpan.Zero), timeout).Value);
    }
}
