// A primary and a secondary tree in a temp folder, replicated over loopback TCP, the primary applying
// every mutation with LinuxDirectory and through ReplicationSource's sink exactly as the FUSE file system
// does (Begin, local apply, Complete). Everything it makes is removed on dispose, also after a failure.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Replication;

namespace ServiceKeeper.Engine.Tests.Replication
{
    /// <summary>Wraps the secondary's LinuxDirectory so a test can hold or count what the secondary applies.</summary>
    internal sealed class HookedApplier(IMutationApplier inner) : IMutationApplier
    {
        public Func<FsMutation, int?>? Before;
        public long Writes;
        public long WriteBytes;

        public int Apply(FsMutation mutation)
        {
            if (Before?.Invoke(mutation) is int forced) return forced;
            if (mutation.Op == FsOp.Write) { Interlocked.Increment(ref Writes); Interlocked.Add(ref WriteBytes, mutation.Data.Length); }
            return inner.Apply(mutation);
        }
    }

    internal sealed class ReplicationPair : IAsyncDisposable
    {
        private const string Prefix = "skrepl-";
        public const string Module = "db";
        public const string TreeId = "/srv/data";

        public string Root { get; }
        public string PrimaryDir => Path.Combine(Root, "primary");
        public string SecondaryDir => Path.Combine(Root, "secondary");
        public LinuxDirectory Primary { get; }
        public LinuxDirectory Secondary { get; }
        public HookedApplier SecondaryApplier { get; }
        public ReplicationOptions PrimaryOptions { get; private set; }
        public ReplicationOptions SecondaryOptions { get; set; }
        public ReplicationSource Source { get; private set; } = null!;
        public ReplicationTarget? Target { get; private set; }
        public IMutationSink Sink { get; private set; } = null!;
        public List<string> PeerFailures { get; } = new();
        public string[] NotReplicated { get; }

        /// <summary>SKREPL_DEBUG=1 logs the engine to $TMP/skrepl-debug.log (plans, state changes).</summary>
        private static readonly Microsoft.Extensions.Logging.ILogger Logger = Environment.GetEnvironmentVariable("SKREPL_DEBUG") == "1"
            ? new ConsoleLogger() : NullLogger.Instance;

        private sealed class ConsoleLogger : Microsoft.Extensions.Logging.ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel level) => true;
            public void Log<TState>(Microsoft.Extensions.Logging.LogLevel level, Microsoft.Extensions.Logging.EventId id, TState state, Exception? e, Func<TState, Exception?, string> format) =>
                File.AppendAllText(Path.Combine(Path.GetTempPath(), "skrepl-debug.log"), $"{DateTime.UtcNow:HH:mm:ss.fff} {level} {format(state, e)} {e}\n");
        }

        private ReplicationPair(RfsAsync mode, TimeSpan sendTimeout, string[] notReplicated)
        {
            RemoveLeftovers();
            Root = Path.Combine(Path.GetTempPath(), Prefix + Guid.NewGuid().ToString("N")[..12]);
            Directory.CreateDirectory(PrimaryDir);
            Directory.CreateDirectory(SecondaryDir);
            NotReplicated = notReplicated;
            Primary = LinuxDirectory.Open(PrimaryDir);
            Secondary = LinuxDirectory.Open(SecondaryDir);
            SecondaryApplier = new HookedApplier(Secondary);
            var key = RandomNumberGenerator.GetBytes(32);
            PrimaryOptions = new ReplicationOptions(Module, "n1", "n2", key, mode, sendTimeout,
                [new ReplicatedTree(TreeId, Primary.ProcPath, Primary, notReplicated)], Path.Combine(Root, "state1"))
            { SyncPointMargin = TimeSpan.FromSeconds(10) };
            SecondaryOptions = new ReplicationOptions(Module, "n2", "n1", key, mode, sendTimeout,
                [new ReplicatedTree(TreeId, Secondary.ProcPath, SecondaryApplier, notReplicated)], Path.Combine(Root, "state2"))
            { SyncPointMargin = TimeSpan.FromSeconds(10) };
        }

        /// <summary>Options of the primary are fixed at StartSource; change them before.</summary>
        public void ConfigurePrimary(Func<ReplicationOptions, ReplicationOptions> change) => PrimaryOptions = change(PrimaryOptions);

        public static ReplicationPair Create(RfsAsync mode = RfsAsync.Second, TimeSpan? sendTimeout = null, params string[] notReplicated)
        {
            var pair = new ReplicationPair(mode, sendTimeout ?? TimeSpan.FromSeconds(20), notReplicated);
            pair.StartSource();
            return pair;
        }

        public void StartSource()
        {
            Source = new ReplicationSource(PrimaryOptions, Logger, TimeProvider.System);
            Source.PeerFailed = reason =>
            {
                lock (PeerFailures) PeerFailures.Add(reason);
                Source.GoAlone();
                return Task.CompletedTask;
            };
            Source.Start(new IPEndPoint(IPAddress.Loopback, 0));
            Sink = Source.SinkFor(TreeId);
        }

        /// <summary>Stops the primary's engine; with crash, its journal is left as a crash leaves it (no clean marker).</summary>
        /// <summary>Stops and starts the primary; <paramref name="asOlderJournal"/> leaves the journal as an engine from before the block map wrote it.</summary>
        public async Task RestartSourceAsync(bool crash, bool asOlderJournal = false)
        {
            await Source.DisposeAsync();
            if (crash) ClearCleanMarker(PrimaryOptions.StateDirectory);
            if (asOlderJournal) ReplicationPairless.DropBlockMap(DirtyJournal.FileFor(PrimaryOptions.StateDirectory, TreeId));
            StartSource();
        }

        public static void ClearCleanMarker(string stateDirectory)
        {
            var file = DirtyJournal.FileFor(stateDirectory, TreeId);
            var bytes = File.ReadAllBytes(file);
            bytes[4] &= 0xFE;
            File.WriteAllBytes(file, bytes);
        }

        public async Task ConnectAsync(bool full = false, IProgress<ResyncProgress>? progress = null)
        {
            if (Target != null) await Target.DisposeAsync();
            Target = new ReplicationTarget(SecondaryOptions, Logger, TimeProvider.System);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            await Target.ConnectAndResyncAsync(Source.LocalEndpoint!, full, progress, cts.Token);
            await Until(() => Source.IsInSync, "the primary to see the secondary in sync");
        }

        /// <summary>Takes the secondary away and waits until the primary is ALONE.</summary>
        public async Task DisconnectAsync()
        {
            if (Target != null) await Target.DisposeAsync();
            Target = null;
            await Until(() => Source.Status()[0].State == "alone", "the primary to go alone");
        }

        public int Do(FsMutation m)
        {
            var t = Sink.Begin(m);
            int r = Primary.Apply(m);
            return Sink.Complete(t, r);
        }

        public void Ok(FsMutation m)
        {
            int r = Do(m);
            if (r != 0) throw new InvalidOperationException($"{m} failed with {r}");
        }

        public void Mkdir(string path, uint mode = 0x1ED) => Ok(new FsMutation { Op = FsOp.Mkdir, Path = path, Mode = mode });

        public void Create(string path, uint mode = 0x1A4) => Ok(new FsMutation { Op = FsOp.Create, Path = path, Mode = 0x8000 | mode, Flags = 0xC1 });

        public void Write(string path, long offset, byte[] data) => Ok(new FsMutation { Op = FsOp.Write, Path = path, Offset = offset, Data = data });

        /// <summary>Creates a file with random content, written in chunks.</summary>
        public byte[] WriteFile(string path, int size, int seed, int chunk = 1 << 20)
        {
            var data = new byte[size];
            new Random(seed).NextBytes(data);
            Create(path);
            for (int off = 0; off < size; off += chunk) Write(path, off, data.AsSpan(off, Math.Min(chunk, size - off)).ToArray());
            return data;
        }

        public List<ReplicationDifference> Diff() =>
            TreeManifest.Diff(Module, TreeManifest.Build(TreeId, PrimaryDir, NotReplicated), TreeManifest.Build(TreeId, SecondaryDir, NotReplicated));

        /// <summary>Runs blocking writers on dedicated threads, as FUSE does (the thread pool would start them late).</summary>
        public static Task RunThreads(int count, Action<int> body)
        {
            var tasks = new Task[count];
            for (int i = 0; i < count; i++)
            {
                var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                int index = i;
                new Thread(() =>
                {
                    try { body(index); tcs.SetResult(); }
                    catch (Exception e) { tcs.SetException(e); }
                }) { IsBackground = true }.Start();
                tasks[i] = tcs.Task;
            }
            return Task.WhenAll(tasks);
        }

        public static async Task Until(Func<bool> condition, string what, int seconds = 60)
        {
            var sw = Stopwatch.StartNew();
            while (!condition())
            {
                if (sw.Elapsed > TimeSpan.FromSeconds(seconds)) throw new TimeoutException("timed out waiting for " + what);
                await Task.Delay(10);
            }
        }

        public async ValueTask DisposeAsync()
        {
            try { if (Target != null) await Target.DisposeAsync(); } catch (Exception) { }
            try { await Source.DisposeAsync(); } catch (Exception) { }
            Primary.Dispose();
            Secondary.Dispose();
            try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }

        private static void RemoveLeftovers()
        {
            foreach (var d in Directory.EnumerateDirectories(Path.GetTempPath(), Prefix + "*"))
            {
                try { if (Directory.GetCreationTimeUtc(d) < DateTime.UtcNow.AddHours(-1)) Directory.Delete(d, recursive: true); }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
        }
    }
}
