using System.Collections.Concurrent;

namespace ServiceKeeper.Engine.Modules
{
    /// <summary>Ports this engine holds itself ("udp/9454"), which the free-port check must not count as taken.</summary>
    public sealed class EnginePorts
    {
        private readonly ConcurrentDictionary<string, bool> _owned = new();

        public void Own(string port) => _owned[port] = true;
        public void Release(string port) => _owned.TryRemove(port, out _);
        public bool Owns(string port) => _owned.ContainsKey(port);
    }
}
