// Helpers for the real-UDP heartbeat tests: services on loopback rings, an event recorder to wait on,
// and a logger that keeps what it is given.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Threading;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Engine.Heartbeat;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Heartbeat
{
    internal static class HeartbeatTestKit
    {
        // Generous: these tests must not fail because the machine is slow.
        public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

        // Both are loopback on Linux: two rings without touching a real network.
        public static readonly IPAddress Ring0 = IPAddress.Loopback;
        public static readonly IPAddress Ring1 = IPAddress.Parse("127.0.0.2");

        public static HeartbeatService Service(string node, ILogger? logger = null, ulong incarnation = 1) =>
            new(HeartbeatPacketTests.Cluster, HeartbeatPacketTests.Key, node, incarnation, port: 0,
                [Ring0, Ring1], logger ?? new ListLogger(), TimeProvider.System);

        public static HeartbeatPeer PeerOf(HeartbeatService service) =>
            new(service.LocalNode, service.LocalEndPoints.Select((endpoint, ring) => (ring, endpoint)).ToDictionary(x => x.ring, x => x.endpoint));

        public static void Eventually(Func<bool> condition, string what)
        {
            var watch = Stopwatch.StartNew();
            while (!condition())
            {
                if (watch.Elapsed > Patience) Assert.Fail($"not within {Patience.TotalSeconds} s: {what}");
                Thread.Sleep(10);
            }
        }
    }

    internal sealed class EventRecorder
    {
        private readonly List<HeartbeatEvent> _events = new();

        public void Add(HeartbeatEvent e)
        {
            lock (_events)
            {
                _events.Add(e);
                Monitor.PulseAll(_events);
            }
        }

        public IReadOnlyList<HeartbeatEvent> Snapshot()
        {
            lock (_events) return _events.ToArray();
        }

        public int Count
        {
            get { lock (_events) return _events.Count; }
        }

        /// <summary>The first event of type T (matching, and at index <paramref name="from"/> or later) that arrives
        /// within the test's patience.</summary>
        public T WaitFor<T>(Func<T, bool>? match = null, int from = 0) where T : HeartbeatEvent
        {
            var deadline = Stopwatch.StartNew();
            lock (_events)
            {
                while (true)
                {
                    var found = _events.Skip(from).OfType<T>().FirstOrDefault(e => match?.Invoke(e) ?? true);
                    if (found != null) return found;
                    var left = HeartbeatTestKit.Patience - deadline.Elapsed;
                    if (left <= TimeSpan.Zero)
                        Assert.Fail($"no {typeof(T).Name} within {HeartbeatTestKit.Patience.TotalSeconds} s; got: {string.Join(", ", _events.Take(20))}");
                    Monitor.Wait(_events, left);
                }
            }
        }
    }

    internal sealed class ListLogger : ILogger
    {
        private readonly List<(LogLevel Level, string Message)> _lines = new();

        public IReadOnlyList<(LogLevel Level, string Message)> Lines
        {
            get { lock (_lines) return _lines.ToArray(); }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines) _lines.Add((logLevel, formatter(state, exception)));
        }
    }
}
