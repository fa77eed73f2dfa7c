// NLog targets of the engine: <home>/log/engine.log (rotated) and the console (journald under systemd).
using System.IO;
using NLog;
using NLog.Config;
using NLog.Targets;

namespace ServiceKeeper.Engine.Hosting
{
    public static class EngineLogging
    {
        private const string Layout =
            "${date:universalTime=true:format=yyyy-MM-ddTHH\\:mm\\:ss.fffZ} ${level:uppercase=true:padding=-5} ${logger:shortName=true}: ${message}${onexception:${newline}${exception:format=tostring}}";

        public static LoggingConfiguration Create(EngineHome home)
        {
            var config = new LoggingConfiguration();
            var file = new FileTarget("engine")
            {
                FileName = Path.Combine(home.LogDirectory, "engine.log"),
                Layout = Layout,
                ArchiveAboveSize = 10 * 1024 * 1024,
                MaxArchiveFiles = 10,
                KeepFileOpen = true,
                AutoFlush = true,
            };
            var console = new ConsoleTarget("console") { Layout = Layout };
            config.AddRule(LogLevel.Info, LogLevel.Fatal, file);
            config.AddRule(LogLevel.Info, LogLevel.Fatal, console);
            return config;
        }
    }
}
