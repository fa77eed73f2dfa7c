// At most one log line per key (a source address) per interval, so a flood of bad datagrams cannot flood
// the log. Pure and clock-free; not thread-safe (the service locks around it).
using System;
using System.Collections.Generic;

namespace ServiceKeeper.Engine.Heartbeat
{
    internal sealed class LogThrottle(TimeSpan interval, int capacity = 1024)
    {
        private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

        /// <summary>True when a line may be written now; <paramref name="suppressed"/> is how many were
        /// swallowed for this key since its last line.</summary>
        public bool ShouldLog(string key, TimeSpan now, out int suppressed)
        {
            suppressed = 0;
            if (_entries.TryGetValue(key, out var entry))
            {
                if (now - entry.LastLogged < interval)
                {
                    entry.Suppressed++;
                    return false;
                }
                suppressed = entry.Suppressed;
                entry.LastLogged = now;
                entry.Suppressed = 0;
                return true;
            }
            if (_entries.Count >= capacity)
            {
                // Spoofed sources are unbounded; memory is not. Forget quiet keys, and if every key is
                // recent, stay silent rather than grow.
                var stale = new List<string>();
                foreach (var (k, e) in _entries) if (now - e.LastLogged >= interval) stale.Add(k);
                foreach (var k in stale) _entries.Remove(k);
                if (_entries.Count >= capacity) return false;
            }
            _entries[key] = new Entry { LastLogged = now };
            return true;
        }

        private sealed class Entry
        {
            public TimeSpan LastLogged;
            public int Suppressed;
        }
    }
}
