// Test-SKReplication's passes (ManifestComparison.CompareRepeatedlyAsync) with a scripted comparison, and the
// manifest of only some paths (TreeManifest.Build with only) on a real directory.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Replication;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Replication
{
    public sealed class ManifestComparisonTests : IDisposable
    {
        private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("sk-manifest-");

        public void Dispose() => _root.Delete(recursive: true);

        private static ReplicationDifference Difference(string directory, string path, string kind, string primary = "p", string secondary = "s") =>
            new() { Module = "files", Directory = directory, Path = path, Kind = kind, Primary = primary, Secondary = secondary };

        /// <summary>A comparison that answers each pass from a script and records what each pass asked for.</summary>
        private sealed class ScriptedComparison(params List<ReplicationDifference>[] passes)
        {
            public List<ManifestRequest?> Asked { get; } = new();

            public Task<List<ReplicationDifference>> Compare(ManifestRequest? only, CancellationToken ct)
            {
                Asked.Add(only);
                return Task.FromResult(passes[Asked.Count - 1]);
            }
        }

        private static string[] PathsAsked(ManifestRequest? request) =>
            request!.Directories.SelectMany(d => d.Paths.Select(p => d.Directory + ":" + p)).ToArray();

        [Fact]
        public async Task CompareRepeatedly_ADifferenceThatPersists_IsReported_ATransientOneIsNot_AndLaterPassesAskOnlyForWhatDiffered()
        {
            var comparison = new ScriptedComparison(
                [
                    Difference("/srv/a", "kept", "Content", "sha256 11", "sha256 22"),
                    Difference("/srv/a", "written", "Size"),
                    Difference("/srv/a", "kept", "Mode"),
                    Difference("/srv/b", "", "MissingOnSecondary"),
                ],
                [
                    Difference("/srv/a", "kept", "Content", "sha256 33", "sha256 44"),
                    Difference("/srv/a", "kept", "Mode"),
                    Difference("/srv/b", "", "MissingOnSecondary"),
                    Difference("/srv/a", "new", "Content"), // not asked for: ignored
                ],
                [
                    Difference("/srv/a", "kept", "Content", "sha256 55", "sha256 66"),
                    Difference("/srv/b", "", "MissingOnSecondary"),
                ]);

            var result = await ManifestComparison.CompareRepeatedlyAsync(comparison.Compare, 3, TimeSpan.Zero, TimeProvider.System, CancellationToken.None);

            Assert.Equal(["/srv/a:kept:Content:sha256 11:sha256 22", "/srv/b::MissingOnSecondary:p:s"],
                result.Select(d => $"{d.Directory}:{d.Path}:{d.Kind}:{d.Primary}:{d.Secondary}"));
            Assert.Equal(3, comparison.Asked.Count);
            Assert.Null(comparison.Asked[0]);
            Assert.Equal(["/srv/a:kept", "/srv/a:written", "/srv/b:"], PathsAsked(comparison.Asked[1]));
            Assert.Equal(["/srv/a:kept", "/srv/b:"], PathsAsked(comparison.Asked[2]));
        }

        [Fact]
        public async Task CompareRepeatedly_APeerFromBeforePathLists_GetsWholeComparisons_TheVerdictIsTheSame()
        {
            // During a rolling upgrade the other node's engine answers a request with paths with 405 (its route takes GET only).
            var persistent = Difference("/srv/a", "kept", "Content");
            var asked = new List<ManifestRequest?>();
            int pass = 0;
            Task<List<ReplicationDifference>> OldPeer(ManifestRequest? only, CancellationToken ct)
            {
                asked.Add(only);
                if (only != null)
                    throw new SKApiException(ErrorIds.InternalError, "The engine at n2 answered 405: ", "n2", 405);
                return Task.FromResult<List<ReplicationDifference>>(++pass == 1 ? [persistent, Difference("/srv/a", "written", "Size")] : [persistent]);
            }

            var result = await ManifestComparison.CompareRepeatedlyAsync(OldPeer, 3, TimeSpan.Zero, TimeProvider.System, CancellationToken.None);

            Assert.Equal(["/srv/a:kept:Content"], result.Select(d => $"{d.Directory}:{d.Path}:{d.Kind}"));
            Assert.Equal(3, pass);
            Assert.Equal(5, asked.Count); // whole, (paths refused, whole) x 2
        }

        [Fact]
        public async Task CompareRepeatedly_AnyOtherFailure_IsTheAnswer()
        {
            var calls = 0;
            Task<List<ReplicationDifference>> Failing(ManifestRequest? only, CancellationToken ct) =>
                ++calls == 1 ? Task.FromResult<List<ReplicationDifference>>([Difference("/srv/a", "f", "Size")])
                    : throw new SKApiException(ErrorIds.NodeUnreachable, "n2 does not answer", "n2", 0);

            var e = await Assert.ThrowsAsync<SKApiException>(() =>
                ManifestComparison.CompareRepeatedlyAsync(Failing, 3, TimeSpan.Zero, TimeProvider.System, CancellationToken.None));
            Assert.Equal(ErrorIds.NodeUnreachable, e.ErrorId);
            Assert.Equal(2, calls);
        }

        [Fact]
        public async Task CompareRepeatedly_IdenticalCopies_AreComparedOnce()
        {
            var comparison = new ScriptedComparison(new List<ReplicationDifference>());
            Assert.Empty(await ManifestComparison.CompareRepeatedlyAsync(comparison.Compare, 3, TimeSpan.FromSeconds(1), new FakeTimeProvider(), CancellationToken.None));
            Assert.Single(comparison.Asked);
        }

        [Fact]
        public async Task CompareRepeatedly_ADifferenceThatGoesAway_IsNotReported_AndEndsThePasses()
        {
            var time = new FakeTimeProvider();
            var comparison = new ScriptedComparison([Difference("/srv/a", "written", "Content")], new List<ReplicationDifference>());

            var task = ManifestComparison.CompareRepeatedlyAsync(comparison.Compare, 3, TimeSpan.FromSeconds(1), time, CancellationToken.None);
            Assert.Single(comparison.Asked);
            Assert.False(task.IsCompleted, "compared again without waiting the interval");
            time.Advance(TimeSpan.FromSeconds(1));

            Assert.Empty(await task.WaitAsync(TimeSpan.FromMinutes(1)));
            Assert.Equal(2, comparison.Asked.Count);
        }

        [Fact]
        public void PathsOf_GroupsThePathsPerDirectory_OnceEach()
        {
            var request = ManifestComparison.PathsOf([
                Difference("/srv/a", "z", "Content"), Difference("/srv/b", "x", "Mode"), Difference("/srv/a", "m", "Owner"), Difference("/srv/a", "z", "Mode"),
            ]);
            Assert.Equal(["/srv/a:m", "/srv/a:z", "/srv/b:x"], PathsAsked(request));
        }

        private string Write(string relative, string text = "data")
        {
            var full = Path.Combine(_root.FullName, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
            return full;
        }

        private ManifestDirectory Build(IReadOnlySet<string>? only) =>
            TreeManifest.Build("/srv/x", _root.FullName, ["tmp"], only);

        [Fact]
        public void Build_WithOnly_ListsAndHashesJustThosePaths_ThroughRealDirectoriesOnly()
        {
            Write("a");
            Write("d/b", "b");
            Write("d/e/c");
            Write("tmp/scratch");
            Directory.CreateSymbolicLink(Path.Combine(_root.FullName, "s"), "d");

            var all = Build(null);
            Assert.Equal(["a", "d", "d/b", "d/e", "d/e/c", "s"], all.Entries.Select(e => e.Path).Order(StringComparer.Ordinal));

            var some = Build(new HashSet<string> { "d/b", "d/e", "s/b", "tmp/scratch", "missing" });
            // s is a symlink: s/b is not read through it; tmp is not replicated; missing is not there.
            Assert.Equal(["d/b", "d/e"], some.Entries.Select(e => e.Path));
            var b = some.Entries[0];
            var fullB = all.Entries.Single(e => e.Path == "d/b");
            Assert.Equal(fullB.Sha256, b.Sha256);
            Assert.NotNull(b.Sha256);
            Assert.Equal(fullB.Size, b.Size);

            Assert.Empty(Build(new HashSet<string> { "" }).Entries);
        }

        [Fact]
        public void Build_WithOnly_GroupsHardLinksAmongTheListedPaths()
        {
            var a = Write("a");
            Assert.Equal(0, FuseSys.Link(a, Path.Combine(_root.FullName, "b")));

            var both = Build(new HashSet<string> { "a", "b" });
            Assert.All(both.Entries, e => Assert.NotNull(e.LinkGroup));
            Assert.Single(both.Entries.Select(e => e.LinkGroup).Distinct());
            Assert.Null(Assert.Single(Build(new HashSet<string> { "a" }).Entries).LinkGroup);
        }
    }
}
