// Sample files and assertions shared by the configuration tests.
using System;
using System.IO;
using System.Runtime.CompilerServices;
using ServiceKeeper.Engine.Configuration;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Configuration
{
    internal static class ConfigTestFiles
    {
        public const string UserFile = "web/userconfig.xml";

        public static string SamplesDirectory { get; } = FindSamples();

        public static string PathOf(string sample) => Path.Combine(SamplesDirectory, sample);

        public static ClusterConfig TwoNodeCluster() => ClusterConfigFile.Load(PathOf("cluster-2nodes.xml"));

        public static ClusterConfig ThreeNodeCluster() => ClusterConfigFile.Load(PathOf("cluster-3nodes.xml"));

        /// <summary>Parses, expects a ConfigurationException, and checks the file, line and reason it carries.</summary>
        public static ConfigurationException AssertUserConfigError(string xml, int line, string reason, ClusterConfig? cluster = null)
        {
            var ex = Assert.Throws<ConfigurationException>(() => UserConfigFile.Parse(xml, UserFile, cluster));
            AssertPlace(ex, UserFile, line, reason);
            return ex;
        }

        public static ConfigurationException AssertClusterError(string xml, int line, string reason)
        {
            var ex = Assert.Throws<ConfigurationException>(() => ClusterConfigFile.Parse(xml, "cluster.xml"));
            AssertPlace(ex, "cluster.xml", line, reason);
            return ex;
        }

        public static void AssertPlace(ConfigurationException ex, string file, int line, string reason)
        {
            Assert.Equal(file, ex.File);
            Assert.True(line == ex.Line, $"expected line {line}, got {ex.Line}: {ex.Message}");
            Assert.Contains(reason, ex.Reason);
            Assert.StartsWith(line > 0 ? $"{file}:{line}:" : $"{file}: ", ex.Message);
            Assert.EndsWith(ex.Reason, ex.Message);
        }

        /// <summary>The samples sit beside this source file; the build output is searched too for runs from a copy.</summary>
        private static string FindSamples([CallerFilePath] string sourceFile = "")
        {
            var besideSource = Path.Combine(Path.GetDirectoryName(sourceFile) ?? "", "Samples");
            if (Directory.Exists(besideSource))
                return besideSource;
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                foreach (var candidate in new[] { Path.Combine(dir.FullName, "Configuration", "Samples"), Path.Combine(dir.FullName, "Engine", "ServiceKeeper.Engine.Tests", "Configuration", "Samples") })
                    if (Directory.Exists(candidate))
                        return candidate;
            }
            throw new DirectoryNotFoundException($"Configuration/Samples not found beside {sourceFile} or above {AppContext.BaseDirectory}.");
        }
    }
}
