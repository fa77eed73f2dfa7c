// The persistent dirty journal of one replicated directory: which parts of which files the peer does not
// have (a zone bitmap per file), the last sync point, and whether the journal can be trusted.
//
// Who marks it: the primary while ALONE (every mutation), and while replicating for what the secondary did
// not acknowledge when it was lost or did differently. Resync reads it, and clears what it sent once the
// secondary acknowledged it. Namespace and metadata changes are not listed one by one: every resync compares
// both trees' namespace and metadata, so the journal only keeps data zones (renames move the entries).
// Renames made while ALONE are also logged in order: the resync replays them first, so a renamed file is
// not copied again under its new name (the log is dropped when it could mislead: after a crash, or when a
// namespace operation was in flight when the secondary was lost).
//
// On disk: <state>/rfs-<tree>.journal, rewritten whole (temp file + rename + fsync) at most every flush
// interval. It carries a "clean" flag only after Close; a journal opened without it (crash) is untrusted,
// and stays untrusted (persisted) until a resync completes (MarkResynced). After the renames comes the fine
// map ("SKF1"), so a restarted primary still sends only the 4 KiB blocks written: per entry whether it is
// exact; for an exact one, one bit per dirty zone (set = only some of its blocks were written), then the
// block bits of those partly written zones only, so a big sequential write costs no more than its zones. A
// journal without it (written by an older engine) loads with no fine map, and its zones are compared by
// block hashes as before; an older engine reading a journal with it stops after the renames.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace ServiceKeeper.Engine.Replication
{
    public sealed class DirtyJournal : IDisposable
    {
        private const uint Magic = 0x314A4B53; // "SKJ1"
        private const uint FineMagic = 0x31464B53; // "SKF1"
        private const byte FlagClean = 1, FlagUntrusted = 2, FlagInterrupted = 4, FlagInterruptedFull = 8, FlagNoReplay = 16;
        private const int MaxRenames = 100_000;

        /// <summary>Block of the in-memory fine map inside the persisted zones.</summary>
        public const int FineBlockBytes = 4096;

        internal sealed class Entry
        {
            public ulong[] Bits = Array.Empty<ulong>();
            public long TruncatedFrom = long.MaxValue;
            public bool All;
            public long LastMark;
            /// <summary>
            /// 4 KiB blocks written inside the dirty zones, so a resync can send just those blocks. Persisted with the
            /// zones; not exact (FineExact false) for an entry loaded from a journal without the fine map or after a crash.
            /// </summary>
            public ulong[] Fine = Array.Empty<ulong>();
            public bool FineExact = true;

            public void SetFine(long block)
            {
                int word = checked((int)(block >> 6));
                if (word >= Fine.Length) Array.Resize(ref Fine, Math.Max(word + 1, Fine.Length * 2));
                Fine[word] |= 1UL << (int)(block & 63);
            }

            public bool IsFine(long block)
            {
                long word = block >> 6;
                return word < Fine.Length && (Fine[word] & (1UL << (int)(block & 63))) != 0;
            }

            public int ZoneCount => Bits.Sum(w => System.Numerics.BitOperations.PopCount(w));

            public void SetZone(long zone)
            {
                int word = checked((int)(zone >> 6));
                if (word >= Bits.Length) Array.Resize(ref Bits, Math.Max(word + 1, Bits.Length * 2));
                Bits[word] |= 1UL << (int)(zone & 63);
            }

            public IEnumerable<long> Zones()
            {
                for (int w = 0; w < Bits.Length; w++)
                {
                    var v = Bits[w];
                    while (v != 0)
                    {
                        int b = System.Numerics.BitOperations.TrailingZeroCount(v);
                        yield return ((long)w << 6) + b;
                        v &= v - 1;
                    }
                }
            }

            public Entry Clone() => new()
            {
                Bits = (ulong[])Bits.Clone(), TruncatedFrom = TruncatedFrom, All = All, LastMark = LastMark, Fine = (ulong[])Fine.Clone(), FineExact = FineExact,
            };
        }

        private readonly object _gate = new();
        private readonly string _file;
        private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
        private long _markCounter;
        private bool _dirty, _closed, _untrusted, _interrupted, _interruptedFull;
        private DateTime? _syncPoint;
        private readonly List<(string from, string to, uint flags)> _renames = new();
        private bool _noReplay;

        public int ZoneBytes { get; }

        private DirtyJournal(string file, int zoneBytes)
        {
            _file = file;
            ZoneBytes = zoneBytes;
        }

        public static string FileFor(string stateDirectory, string treeId)
        {
            var safe = new StringBuilder();
            foreach (var c in treeId.Trim('/')) safe.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_');
            return Path.Combine(stateDirectory, "rfs-" + (safe.Length == 0 ? "root" : safe.ToString()) + ".journal");
        }

        /// <summary>Opens (or creates) the journal and marks it open on disk at once, so a crash from now on is detected.</summary>
        public static DirtyJournal Open(string file, int zoneBytes)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var j = new DirtyJournal(file, zoneBytes);
            if (File.Exists(file))
            {
                try { j.Load(); }
                catch (Exception e) when (e is IOException or InvalidDataException or EndOfStreamException or ArgumentException)
                {
                    j._entries.Clear();
                    j._untrusted = true;
                    j._syncPoint = null; // nothing on it can be believed
                }
            }
            j._dirty = true;
            j.Flush();
            return j;
        }

        private void Load()
        {
            using var r = new BinaryReader(File.OpenRead(_file), Encoding.UTF8);
            if (r.ReadUInt32() != Magic) throw new InvalidDataException("not a journal");
            var flags = r.ReadByte();
            var sp = r.ReadInt64();
            var zone = r.ReadInt32();
            _syncPoint = sp == 0 ? null : new DateTime(sp, DateTimeKind.Utc);
            _untrusted = (flags & FlagClean) == 0 || (flags & FlagUntrusted) != 0;
            _interrupted = (flags & FlagInterrupted) != 0;
            _interruptedFull = (flags & FlagInterruptedFull) != 0;
            int count = r.ReadInt32();
            var order = new Entry[count];
            for (int i = 0; i < count; i++)
            {
                var path = r.ReadString();
                var e = new Entry { TruncatedFrom = r.ReadInt64(), All = r.ReadBoolean(), FineExact = false };
                int words = r.ReadInt32();
                e.Bits = new ulong[words];
                for (int w = 0; w < words; w++) e.Bits[w] = r.ReadUInt64();
                if (zone != ZoneBytes) e.All = true; // zone size changed: fall back to whole files
                _entries[path] = e;
                order[i] = e;
            }
            _noReplay = (flags & FlagNoReplay) != 0 || _untrusted;
            int renames = r.ReadInt32();
            for (int i = 0; i < renames; i++) _renames.Add((r.ReadString(), r.ReadString(), r.ReadUInt32()));
            if (_noReplay) _renames.Clear();
            // After a crash the marks since the last flush are missing from the fine map as from the zones: the zones
            // are then compared by hashes (as a journal without the fine map is).
            if (zone == ZoneBytes && !_untrusted && HasFineMap) LoadFineMap(r, order);
        }

        private bool HasFineMap => ZoneBytes > FineBlockBytes && ZoneBytes % FineBlockBytes == 0;

        private int FineBytesPerZone => (ZoneBytes / FineBlockBytes + 7) / 8;

        /// <summary>The fine map section, when there is one; anything short of a complete one leaves every entry not exact.</summary>
        private void LoadFineMap(BinaryReader r, Entry[] order)
        {
            var s = r.BaseStream;
            if (s.Length - s.Position < 8 || r.ReadUInt32() != FineMagic || r.ReadInt32() != FineBlockBytes) return;
            int per = ZoneBytes / FineBlockBytes;
            var bits = new byte[FineBytesPerZone];
            try
            {
                foreach (var e in order)
                {
                    if (r.ReadByte() == 0) continue;
                    var zones = e.Zones().ToList();
                    var partial = new byte[(zones.Count + 7) / 8];
                    s.ReadExactly(partial);
                    for (int i = 0; i < zones.Count; i++)
                    {
                        long z = zones[i];
                        bool some = (partial[i >> 3] & (1 << (i & 7))) != 0;
                        if (some) s.ReadExactly(bits);
                        for (int k = 0; k < per; k++)
                            if (!some || (bits[k >> 3] & (1 << (k & 7))) != 0) e.SetFine(z * per + k);
                    }
                    e.FineExact = true;
                }
            }
            catch (EndOfStreamException)
            {
                foreach (var e in order) { e.FineExact = false; e.Fine = Array.Empty<ulong>(); }
            }
        }

        private void WriteFineMap(BinaryWriter w)
        {
            w.Write(FineMagic);
            w.Write(FineBlockBytes);
            var bits = new byte[FineBytesPerZone];
            foreach (var e in _entries.Values)
            {
                bool exact = e.FineExact && !e.All && HasFineMap;
                w.Write((byte)(exact ? 1 : 0));
                if (!exact) continue;
                var zones = e.Zones().ToList();
                var partial = new byte[(zones.Count + 7) / 8];
                var partBits = new List<byte[]>();
                for (int i = 0; i < zones.Count; i++)
                {
                    if (ZoneBlocks(e, zones[i], bits)) continue;
                    partial[i >> 3] |= (byte)(1 << (i & 7));
                    partBits.Add((byte[])bits.Clone());
                }
                w.Write(partial);
                foreach (var b in partBits) w.Write(b);
            }
        }

        /// <summary>The block bits of one zone into <paramref name="bits"/>; true when every block of it was written.</summary>
        private bool ZoneBlocks(Entry e, long zone, byte[] bits)
        {
            int per = ZoneBytes / FineBlockBytes;
            Array.Clear(bits);
            bool all = true;
            for (int k = 0; k < per; k++)
            {
                if (e.IsFine(zone * per + k)) bits[k >> 3] |= (byte)(1 << (k & 7));
                else all = false;
            }
            return all;
        }

        /// <summary>ALONE: remembers a rename so the resync can replay it.</summary>
        internal void LogRename(FsMutation m)
        {
            lock (_gate)
            {
                if (_noReplay || m.Target == null) return;
                if (_renames.Count >= MaxRenames) { _noReplay = true; _renames.Clear(); }
                else _renames.Add((m.Path, m.Target, m.Flags));
                _dirty = true;
            }
        }

        /// <summary>The secondary's namespace is not known well enough to replay renames onto it.</summary>
        internal void DiscardRenames()
        {
            lock (_gate) { _noReplay = true; _renames.Clear(); _dirty = true; }
        }

        internal List<(string from, string to, uint flags)> Renames()
        {
            lock (_gate) return _noReplay ? new() : new(_renames);
        }

        /// <summary>The first <paramref name="count"/> renames were replayed on the secondary.</summary>
        internal void RenamesReplayed(int count)
        {
            lock (_gate) { _renames.RemoveRange(0, Math.Min(count, _renames.Count)); _dirty = true; }
            Flush();
        }

        /// <summary>False after a crash (or a corrupt journal) until a resync completes: the zones may miss changes.</summary>
        public bool Trusted { get { lock (_gate) return !_untrusted; } }

        /// <summary>Set while a resync into this node runs: the copy is inconsistent until it completes.</summary>
        public bool ResyncInterrupted { get { lock (_gate) return _interrupted; } }

        /// <summary>The interrupted resync was a full copy (there is no common base to compare times against).</summary>
        public bool InterruptedResyncWasFull { get { lock (_gate) return _interruptedFull; } }

        public DateTime? SyncPoint { get { lock (_gate) return _syncPoint; } }

        /// <summary>Increases at every mark; entries remember the last one, so a clear never drops a newer mark.</summary>
        public long MarkCounter { get { lock (_gate) return _markCounter; } }

        public int FilesDirty { get { lock (_gate) return _entries.Count; } }

        public long BytesDirty
        {
            get
            {
                lock (_gate) return _entries.Values.Sum(e => e.All ? ZoneBytes : (long)e.ZoneCount * ZoneBytes);
            }
        }

        /// <summary>Records what a mutation changed.</summary>
        public void Mark(FsMutation m)
        {
            lock (_gate)
            {
                switch (m.Op)
                {
                    case FsOp.Write: MarkRange(m.Path, m.Offset, m.Data.Length); break;
                    case FsOp.Fallocate: MarkRange(m.Path, m.Offset, m.Length); break;
                    case FsOp.Truncate:
                        {
                            var e = Get(m.Path);
                            e.TruncatedFrom = Math.Min(e.TruncatedFrom, m.Offset);
                            break;
                        }
                    case FsOp.Create: Get(m.Path).All = true; break; // new content as a whole (it may replace a file the peer has)
                    case FsOp.Unlink: Remove(m.Path, subtree: false); break;
                    case FsOp.Rmdir: Remove(m.Path, subtree: true); break;
                    case FsOp.Rename when m.Target != null: Rename(m.Path, m.Target, exchange: (m.Flags & 2) != 0); break;
                    default: _dirty = true; break; // namespace and metadata: every resync compares them anyway
                }
            }
        }

        /// <summary>The whole file must be sent again (its state on the peer is unknown).</summary>
        public void MarkAll(string path)
        {
            lock (_gate) Get(path).All = true;
        }

        private Entry Get(string path)
        {
            if (!_entries.TryGetValue(path, out var e)) _entries[path] = e = new Entry();
            e.LastMark = ++_markCounter;
            _dirty = true;
            return e;
        }

        private void MarkRange(string path, long offset, long length)
        {
            var e = Get(path);
            if (ZoneBytes <= FineBlockBytes || ZoneBytes % FineBlockBytes != 0) e.FineExact = false;
            if (length <= 0) { e.SetZone(offset / ZoneBytes); if (e.FineExact) e.SetFine(offset / FineBlockBytes); return; }
            for (long z = offset / ZoneBytes, last = (offset + length - 1) / ZoneBytes; z <= last; z++) e.SetZone(z);
            if (e.FineExact)
                for (long b = offset / FineBlockBytes, last = (offset + length - 1) / FineBlockBytes; b <= last; b++) e.SetFine(b);
        }

        private static bool Under(string path, string dir) =>
            path.Length > dir.Length && path[dir.Length] == '/' && path.StartsWith(dir, StringComparison.Ordinal);

        private void Remove(string path, bool subtree)
        {
            _entries.Remove(path);
            if (subtree) foreach (var k in _entries.Keys.Where(k => Under(k, path)).ToList()) _entries.Remove(k);
            _dirty = true;
            ++_markCounter;
        }

        private void Rename(string from, string to, bool exchange)
        {
            var moved = _entries.Where(kv => kv.Key == from || Under(kv.Key, from)).ToList();
            var other = _entries.Where(kv => kv.Key == to || Under(kv.Key, to)).ToList();
            foreach (var kv in moved.Concat(other)) _entries.Remove(kv.Key);
            foreach (var kv in moved) { kv.Value.LastMark = ++_markCounter; _entries[to + kv.Key[from.Length..]] = kv.Value; }
            if (exchange) foreach (var kv in other) { kv.Value.LastMark = ++_markCounter; _entries[from + kv.Key[to.Length..]] = kv.Value; }
            _dirty = true;
        }

        /// <summary>A copy of every entry, for a resync plan.</summary>
        internal Dictionary<string, Entry> Snapshot()
        {
            lock (_gate) return _entries.ToDictionary(kv => kv.Key, kv => kv.Value.Clone(), StringComparer.Ordinal);
        }

        /// <summary>Paths with entries (the secondary tells the primary which files it changed on its own).</summary>
        public IReadOnlyList<string> DirtyPaths()
        {
            lock (_gate) return _entries.Keys.ToList();
        }

        /// <summary>After a resync: drops the entries not marked since <paramref name="markCounter"/>; trusts the journal again.</summary>
        public void MarkResynced(long markCounter, DateTime syncPoint, bool flush = true)
        {
            lock (_gate)
            {
                foreach (var k in _entries.Where(kv => kv.Value.LastMark <= markCounter).Select(kv => kv.Key).ToList()) _entries.Remove(k);
                _untrusted = false;
                _noReplay = false;
                _renames.Clear();
                _interrupted = false;
                _interruptedFull = false;
                _syncPoint = syncPoint;
                _dirty = true;
            }
            if (flush) Flush();
        }

        /// <summary>Drops a zone the secondary acknowledged during a resync, unless it was marked again since.</summary>
        internal void ClearZone(string path, long zone, long markedBefore)
        {
            lock (_gate)
            {
                if (!_entries.TryGetValue(path, out var e) || e.LastMark > markedBefore || e.All) return;
                int word = (int)(zone >> 6);
                if (word < e.Bits.Length) e.Bits[word] &= ~(1UL << (int)(zone & 63));
                int per = ZoneBytes / FineBlockBytes;
                for (long b = zone * per; b < (zone + 1) * per; b++)
                    if ((b >> 6) < e.Fine.Length) e.Fine[b >> 6] &= ~(1UL << (int)(b & 63));
                _dirty = true;
            }
        }

        public void SetSyncPoint(DateTime utc)
        {
            lock (_gate)
            {
                if (_syncPoint == utc) return;
                _syncPoint = utc;
                _dirty = true;
            }
        }

        /// <summary>
        /// The entries may miss a change (one was marked under a name its file no longer has): the next resync compares
        /// every file changed since the sync point, as after a crash, until MarkResynced. Written with the next flush: a
        /// crash before it leaves the journal untrusted anyway.
        /// </summary>
        public void Distrust()
        {
            lock (_gate)
            {
                _untrusted = true;
                _dirty = true;
            }
        }

        /// <summary>Secondary: a resync starts (the copy is inconsistent until MarkResynced).</summary>
        public void BeginResync(bool full)
        {
            lock (_gate)
            {
                _interrupted = true;
                _interruptedFull |= full;
                _dirty = true;
            }
            Flush();
        }

        /// <summary>Writes the journal if it changed since the last write.</summary>
        public void Flush() => Write(clean: false);

        /// <summary>Writes the journal with the clean marker; further marks are ignored.</summary>
        public void Close()
        {
            lock (_gate)
            {
                if (_closed) return;
                _dirty = true;
            }
            Write(clean: true);
            lock (_gate) _closed = true;
        }

        public void Dispose() => Close();

        private void Write(bool clean)
        {
            byte[] bytes;
            lock (_gate)
            {
                if (!_dirty || _closed) return;
                using var ms = new MemoryStream();
                using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
                {
                    w.Write(Magic);
                    w.Write((byte)((clean ? FlagClean : 0) | (_untrusted ? FlagUntrusted : 0) | (_interrupted ? FlagInterrupted : 0) | (_interruptedFull ? FlagInterruptedFull : 0) | (_noReplay ? FlagNoReplay : 0)));
                    w.Write(_syncPoint?.Ticks ?? 0L);
                    w.Write(ZoneBytes);
                    w.Write(_entries.Count);
                    foreach (var (path, e) in _entries)
                    {
                        w.Write(path);
                        w.Write(e.TruncatedFrom);
                        w.Write(e.All);
                        int words = e.Bits.Length;
                        while (words > 0 && e.Bits[words - 1] == 0) words--;
                        w.Write(words);
                        for (int i = 0; i < words; i++) w.Write(e.Bits[i]);
                    }
                    w.Write(_renames.Count);
                    foreach (var (from, to, flags) in _renames) { w.Write(from); w.Write(to); w.Write(flags); }
                    WriteFineMap(w);
                }
                bytes = ms.ToArray();
                _dirty = false;
            }
            lock (_file)
            {
                var tmp = _file + ".tmp";
                using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
                {
                    f.Write(bytes);
                    f.Flush(flushToDisk: true);
                }
                File.Move(tmp, _file, overwrite: true);
                NativeFs.SyncPath(Path.GetDirectoryName(_file)!, dataOnly: false);
            }
        }
    }
}
