// module: another module's readiness, on a fake clock.
using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Configuration;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Checkers;

public sealed class ModuleCheckerTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public async Task Run_FollowsTheOtherModule_AndPassesItsAddress()
    {
        var ready = true;
        (string, string?, int?) asked = default;
        var config = new ModuleCheckConfig { ModuleName = "db", Address = "198.18.0.2", Port = 9453 };
        var checker = new ModuleChecker(config, Contexts.Create(time: _time, isModuleReady: (m, a, p, _) =>
        {
            asked = (m, a, p);
            return Task.FromResult(Volatile.Read(ref ready));
        }));
        await using var run = new CheckerRun(checker);

        var up = await run.NextAsync();
        Assert.Equal(("module.db", ResourceValue.Up, CheckAction.Wait), (up.Resource, up.Value, up.Action));
        Assert.Equal("module db at 198.18.0.2:9453 is ready", up.Reason);
        Assert.Equal(("db", "198.18.0.2", 9453), asked);

        Volatile.Write(ref ready, false);
        _time.Advance(config.Interval);
        var down = await run.NextAsync();
        Assert.Equal(ResourceValue.Down, down.Value);
        Assert.Equal("module db at 198.18.0.2:9453 is not ready", down.Reason);
    }

    [Fact]
    public async Task Run_NoAnswerWithinTheTimeout_IsDown()
    {
        var asking = new SemaphoreSlim(0);
        var config = new ModuleCheckConfig { ModuleName = "db" };
        var checker = new ModuleChecker(config, Contexts.Create(time: _time, isModuleReady: (_, _, _, _) =>
        {
            asking.Release();
            return new TaskCompletionSource<bool>().Task; // hangs and ignores its token
        }));
        await using var run = new CheckerRun(checker);

        Assert.True(await asking.WaitAsync(Wait.Long));
        _time.Advance(config.Timeout);

        var down = await run.NextAsync();
        Assert.Equal(ResourceValue.Down, down.Value);
        Assert.Equal("module db: no answer within 5s", down.Reason);
    }

    [Fact]
    public async Task Run_FailureToAsk_IsDown_WithTheReason()
    {
        var checker = new ModuleChecker(new ModuleCheckConfig { ModuleName = "db" }, Contexts.Create(time: _time,
            isModuleReady: (_, _, _, _) => Task.FromException<bool>(new InvalidOperationException("connection refused"))));
        await using var run = new CheckerRun(checker);

        Assert.Equal("module db: connection refused", (await run.NextAsync()).Reason);
    }
}
