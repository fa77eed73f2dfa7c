// servicekeeper: the cluster engine. `servicekeeper run` is what the systemd unit / Windows service starts.
using System;
using System.IO;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Hosting;

namespace ServiceKeeper.Engine
{
    public static class Program
    {
        public static async Task<int> Main(string[] args)
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
            {
                Console.WriteLine(Usage);
                return args.Length == 0 ? 2 : 0;
            }
            try
            {
                switch (args[0])
                {
                    case "run":
                        return await EngineHost.RunAsync(EngineOptions.Parse(args[1..]));
                    case "check-config":
                        return CheckConfig(args.AsSpan(1));
                    case "version" or "--version":
                        Console.WriteLine(EngineVersion.Current);
                        return 0;
                    default:
                        Console.Error.WriteLine($"servicekeeper: unknown command '{args[0]}'.\n\n{Usage}");
                        return 2;
                }
            }
            catch (UsageException ex)
            {
                Console.Error.WriteLine($"servicekeeper: {ex.Message}\n\n{Usage}");
                return 2;
            }
            catch (ConfigurationException ex)
            {
                Console.Error.WriteLine($"servicekeeper: invalid configuration: {ex.Message}");
                return 3;
            }
        }

        /// <summary>Validates files without starting anything: `servicekeeper check-config userconfig.xml [--cluster cluster.xml]`.</summary>
        private static int CheckConfig(ReadOnlySpan<string> args)
        {
            string? cluster = null;
            var files = new System.Collections.Generic.List<string>();
            for (int i = 0; i < args.Length; i++)
            {
                if (args[i] == "--cluster" && i + 1 < args.Length) cluster = args[++i];
                else files.Add(args[i]);
            }
            if (files.Count == 0 && cluster == null) throw new UsageException("check-config needs a file.");
            var clusterConfig = cluster == null ? null : ClusterConfigFile.Load(cluster);
            foreach (var file in files)
            {
                if (Path.GetFileName(file).Equals("cluster.xml", StringComparison.OrdinalIgnoreCase))
                    ClusterConfigFile.Load(file);
                else
                    UserConfigFile.Load(file, clusterConfig);
                Console.WriteLine($"{file}: valid");
            }
            return 0;
        }

        private const string Usage = """
            usage: servicekeeper run [--home DIR] [--node-name NAME] [--listen ADDR:PORT]...
                   servicekeeper check-config FILE... [--cluster cluster.xml]
                   servicekeeper version

              run            run the engine (what the service starts); stops cleanly on SIGTERM
                --home       state folder (default /var/lib/servicekeeper, %ProgramData%\ServiceKeeper)
                --node-name  this node's name in the cluster (default: the host name)
                --listen     HTTPS API address, repeatable (default 0.0.0.0:9453)
              check-config   validate userconfig.xml / cluster.xml files and exit
            """;
    }

    public sealed class UsageException(string message) : Exception(message);
}
