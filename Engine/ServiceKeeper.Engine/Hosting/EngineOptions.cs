// Command line of `servicekeeper run`.
using System;
using System.Collections.Generic;
using System.Net;
using System.Text.RegularExpressions;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Engine.Hosting
{
    public sealed partial class EngineOptions
    {
        public string Home { get; init; } = SKEndpoint.DefaultHome();
        public string NodeName { get; init; } = DefaultNodeName();
        public IReadOnlyList<IPEndPoint> Listen { get; init; } = [new IPEndPoint(IPAddress.Any, SKEndpoint.DefaultHttpsPort)];

        public static EngineOptions Parse(string[] args)
        {
            string? home = null, name = null;
            var listen = new List<IPEndPoint>();
            for (int i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{args[i]} needs a value.");
                switch (args[i])
                {
                    case "--home": home = Value(); break;
                    case "--node-name": name = Value(); break;
                    case "--listen":
                        var text = Value();
                        if (!IPEndPoint.TryParse(text, out var ep) || ep.Port == 0)
                            throw new UsageException($"--listen '{text}' is not ADDRESS:PORT (for example 0.0.0.0:9453 or [::]:9453).");
                        listen.Add(ep);
                        break;
                    default: throw new UsageException($"unknown option '{args[i]}'.");
                }
            }
            if (name != null && !IsValidNodeName(name))
                throw new UsageException($"--node-name '{name}' is not a valid node name (letters, digits, '-', '_', '.', at most 63).");
            return new EngineOptions
            {
                Home = System.IO.Path.GetFullPath(home ?? SKEndpoint.DefaultHome()),
                NodeName = name ?? DefaultNodeName(),
                Listen = listen.Count > 0 ? listen : [new IPEndPoint(IPAddress.Any, SKEndpoint.DefaultHttpsPort)],
            };
        }

        public static bool IsValidNodeName(string name) => NodeNamePattern().IsMatch(name);

        private static string DefaultNodeName()
        {
            var host = Dns.GetHostName().Split('.')[0];
            return IsValidNodeName(host) ? host : "node";
        }

        [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
        private static partial Regex NodeNamePattern();
    }
}
