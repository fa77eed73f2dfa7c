// A replicated directory mounted for one test: <tmp>/sk-fuse-<id>/data with a ReplicatedMount on top and
// optionally a second real directory ("copy") a test sink applies every mutation to. Dispose always
// unmounts and removes everything; leftovers of killed runs are removed by prefix first.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.Versioning;
using ServiceKeeper.Engine.Replication;

namespace ServiceKeeper.Engine.Tests.Replication
{
    [SupportedOSPlatform("linux")]
    internal sealed class FuseTestTree : IDisposable
    {
        public const string Prefix = "sk-fuse-";

        public FuseTestTree(ReplicatedMountOptions? options = null, bool withCopy = false)
        {
            RemoveLeftovers();
            Base = Path.Combine(Path.GetTempPath(), Prefix + Guid.NewGuid().ToString("N")[..12]);
            Root = Path.Combine(Base, "data");
            Directory.CreateDirectory(Root);
            File.SetUnixFileMode(Base, (UnixFileMode)0x1ED);
            File.SetUnixFileMode(Root, (UnixFileMode)0x1FF);
            try
            {
                Real = LinuxDirectory.Open(Root);
                if (withCopy)
                {
                    var copy = Path.Combine(Base, "copy");
                    Directory.CreateDirectory(copy);
                    File.SetUnixFileMode(copy, (UnixFileMode)0x1FF);
                    Copy = LinuxDirectory.Open(copy);
                }
                Mount = ReplicatedMount.Mount(Real, options ?? new ReplicatedMountOptions { FsName = "servicekeeper:test" });
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public string Base { get; }

        /// <summary>The mount point (the replicated directory's path).</summary>
        public string Root { get; }

        public LinuxDirectory Real { get; } = null!;

        public LinuxDirectory? Copy { get; }

        public ReplicatedMount Mount { get; } = null!;

        public string this[string relative] => Path.Combine(Root, relative);

        /// <summary>A tree with a copy that every change reaching the mount's sink is applied to, as the secondary does.</summary>
        public static FuseTestTree Replicating(out CopySink sink, ReplicatedMountOptions? options = null)
        {
            var t = new FuseTestTree(options, withCopy: true);
            t.Mount.Sink = sink = new CopySink(t.Copy!);
            return t;
        }

        /// <summary>The copy holds what the real tree holds, and the mount reported no failed operation.</summary>
        public void AssertCopyIdenticalAndNoFailure()
        {
            TreeImage.AssertSame(TreeImage.Read(Real), TreeImage.Read(Copy!), Array.Empty<string>());
            Xunit.Assert.Equal(0, Mount.Statistics.Failures);
        }

        public void Dispose()
        {
            Mount?.Dispose();
            Real?.Dispose();
            Copy?.Dispose();
            if (IsMounted(Root))
                ReplicatedMount.CleanupStale(Root);
            if (!IsMounted(Root) && Directory.Exists(Base))
                Directory.Delete(Base, recursive: true);
        }

        public static bool IsMounted(string path) =>
            File.ReadLines("/proc/self/mountinfo").Any(l => l.Split(' ')[4] == path);

        private static void RemoveLeftovers()
        {
            foreach (var dir in Directory.EnumerateDirectories(Path.GetTempPath(), Prefix + "*"))
            {
                var data = Path.Combine(dir, "data");
                ReplicatedMount.CleanupStale(data);
                if (IsMounted(data) || Directory.GetLastWriteTimeUtc(dir) > DateTime.UtcNow.AddMinutes(-30))
                    continue; // a live mount of a test running right now
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }

        /// <summary>Runs a shell script (as <paramref name="uid"/> when given, through setpriv) with a generous deadline.</summary>
        public static (int Exit, string Out, string Err) Sh(string script, int? uid = null, int timeoutSeconds = 300)
        {
            var psi = new ProcessStartInfo(uid == null ? "/bin/sh" : "/usr/bin/setpriv")
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            if (uid != null)
            {
                foreach (var a in new[] { $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "--", "/bin/sh" })
                    psi.ArgumentList.Add(a);
            }
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(script);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeoutSeconds * 1000))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException("script did not finish: " + script);
            }
            return (p.ExitCode, stdout.Result, stderr.Result);
        }
    }
}
