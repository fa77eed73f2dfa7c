using System.Reflection;

namespace ServiceKeeper.Engine.Hosting
{
    public static class EngineVersion
    {
        public static readonly string Current =
            typeof(EngineVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
            ?? typeof(EngineVersion).Assembly.GetName().Version?.ToString() ?? "0.0.0";
    }
}
