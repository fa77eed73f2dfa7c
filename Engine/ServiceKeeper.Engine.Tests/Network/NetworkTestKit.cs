// Shared pieces of the network tests: labs, polling, a checker context, a report recorder, frame capture.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Network;
using ServiceKeeper.Engine.Scripts;
using ServiceKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Network;

internal static class NetworkTestKit
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>A two-node lab "sknet" + 4 random characters, without a client namespace.</summary>
    public static NetLab CreateLab(ITestOutputHelper output)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        var prefix = "sknet" + new string(Enumerable.Range(0, 4).Select(_ => alphabet[Random.Shared.Next(alphabet.Length)]).ToArray());
        return NetLab.Create(prefix, 2, new NetLabOptions { CreateClient = false, Log = output.WriteLine });
    }

    public static void WaitUntil(Func<bool> condition, string what) => WaitUntil(condition, Patience, what);

    public static void WaitUntil(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
                Assert.Fail($"Timed out after {timeout.TotalSeconds:0} s waiting for: {what}");
            Thread.Sleep(20);
        }
    }

    public static CheckerContext Context(TimeProvider time) => new()
    {
        Module = "m",
        Node = "n1",
        ModuleDirectory = "/nonexistent",
        Time = time,
        LoggerFactory = NullLoggerFactory.Instance,
        Processes = new NoProcesses(),
        Scripts = new NoScripts(),
        Environment = new Dictionary<string, string>(),
        IsModuleReady = (_, _, _, _) => Task.FromResult(false),
    };

    /// <summary>"aa:bb:cc:dd:ee:ff" of an interface, from `ip link show`.</summary>
    public static string MacOf(NetLab lab, LabNode node, string interfaceName)
    {
        var output = lab.ExecInNode(node, "ip", "link", "show", interfaceName).EnsureSuccess().StdOut;
        return Regex.Match(output, "link/ether ([0-9a-f:]{17})").Groups[1].Value;
    }

    public static string FormatMac(ReadOnlySpan<byte> mac) => string.Join(":", mac.ToArray().Select(b => b.ToString("x2")));

    private sealed class NoProcesses : IProcessTable
    {
        public IReadOnlyList<ProcessEntry> Snapshot() => Array.Empty<ProcessEntry>();
    }

    private sealed class NoScripts : IScriptRunner
    {
        public Task<ScriptResult> RunAsync(ScriptInvocation invocation, CancellationToken ct) =>
            throw new NotSupportedException("network checker tests run no scripts");
    }
}

/// <summary>Collects a checker's reports; thread-safe.</summary>
internal sealed class ReportLog
{
    private readonly List<ResourceChange> _changes = new();

    public void Add(ResourceChange change)
    {
        lock (_changes)
            _changes.Add(change);
    }

    public IReadOnlyList<ResourceChange> Snapshot()
    {
        lock (_changes)
            return _changes.ToList();
    }

    public IReadOnlyList<ResourceValue> Values => Snapshot().Select(c => c.Value).ToList();

    /// <summary>Waits until exactly <paramref name="count"/> reports arrived (fails on more) and returns the last.</summary>
    public ResourceChange WaitForCount(int count)
    {
        NetworkTestKit.WaitUntil(() => Snapshot().Count >= count, $"{count} report(s); have: {Describe()}");
        var all = Snapshot();
        Assert.True(all.Count == count, $"expected {count} report(s), got: {Describe()}");
        return all[count - 1];
    }

    /// <summary>Lets the checker probe a few more times and asserts that it reported nothing more.</summary>
    public void AssertStaysAt(int count, TimeSpan during)
    {
        Thread.Sleep(during);
        Assert.True(Snapshot().Count == count, $"expected no report beyond {count}, got: {Describe()}");
    }

    public string Describe() => string.Join("; ", Snapshot().Select(c => $"{c.Value} ({c.Reason})"));
}

/// <summary>Frames of one ethertype received on an interface of a namespace, through an AF_PACKET socket.</summary>
[SupportedOSPlatform("linux")]
internal sealed class FrameCapture : IDisposable
{
    private readonly ConcurrentQueue<(TimeSpan At, byte[] Frame)> _frames = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private volatile bool _stop;
    private Task _loop = Task.CompletedTask;

    public static FrameCapture Start(string ns, string interfaceName, ushort etherType)
    {
        var capture = new FrameCapture();
        using var ready = new ManualResetEventSlim();
        capture._loop = NetnsThread.Start(ns, () =>
        {
            using var socket = new Socket(AddressFamily.Packet, SocketType.Raw, LinuxNative.PacketProtocol(etherType));
            var index = LinuxNative.InterfaceIndex(interfaceName);
            if (index == 0)
                throw new InvalidOperationException($"no interface {interfaceName} in {ns}");
            socket.Bind(new LinkLayerEndPoint(index, etherType));
            socket.ReceiveTimeout = 100;
            ready.Set();
            var buffer = new byte[2048];
            while (!capture._stop)
            {
                try
                {
                    var length = socket.Receive(buffer);
                    capture._frames.Enqueue((capture._clock.Elapsed, buffer.AsSpan(0, length).ToArray()));
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
                {
                }
            }
            return true;
        });
        while (!ready.Wait(100))
        {
            if (capture._loop.IsCompleted)
                capture._loop.GetAwaiter().GetResult(); // throws what went wrong
        }
        return capture;
    }

    /// <summary>Waits until <paramref name="count"/> frames match, then returns the matching frames in order.</summary>
    public IReadOnlyList<(TimeSpan At, byte[] Frame)> WaitFor(Func<byte[], bool> match, int count, TimeSpan timeout)
    {
        NetworkTestKit.WaitUntil(() => Matching(match).Count >= count, timeout, $"{count} matching frame(s); captured {_frames.Count} frame(s)");
        return Matching(match);
    }

    public IReadOnlyList<(TimeSpan At, byte[] Frame)> Matching(Func<byte[], bool> match) => _frames.Where(f => match(f.Frame)).ToList();

    public void Dispose()
    {
        _stop = true;
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}
