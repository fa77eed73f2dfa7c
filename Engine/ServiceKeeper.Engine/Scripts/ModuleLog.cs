// The per-module user log (Get-SKLog): script output, transitions and actions, in a rotating file
// per module and a numbered in-memory tail that followers page through by sequence.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Engine.Scripts
{
    /// <summary>
    /// Thread-safe <see cref="IModuleLog"/>. Each line is appended to &lt;logDirectory&gt;/&lt;module&gt;.log as
    /// <c>2025-01-31T12:00:00.000Z 1234 start_prim: text</c> and kept in memory (the last
    /// <see cref="DefaultMemoryLines"/>). The file rotates to .1, .2, .3 at <see cref="DefaultMaxFileBytes"/>.
    /// </summary>
    /// <remarks>
    /// The sequence is written into each line so that it survives restarts and rotation: at first use
    /// of a module the tail of its files is loaded and numbering continues after the last line, so a
    /// follower asking "after N" neither repeats nor skips lines across an engine restart. A text with
    /// line breaks becomes several lines. If the file cannot be written the line is still kept in memory.
    /// </remarks>
    public sealed partial class ModuleLog : IModuleLog, IDisposable
    {
        public const long DefaultMaxFileBytes = 10 * 1024 * 1024;
        public const int DefaultArchivedFiles = 3;
        public const int DefaultMemoryLines = 5000;

        private const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
        private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

        private readonly ConcurrentDictionary<string, ModuleFile> _modules = new(StringComparer.Ordinal);
        private readonly string _directory;
        private readonly string _node;
        private readonly TimeProvider _time;
        private readonly ILogger _logger;
        private readonly long _maxFileBytes;
        private readonly int _archivedFiles;
        private readonly int _memoryLines;
        private volatile bool _disposed;

        /// <param name="logDirectory">where &lt;module&gt;.log files go; created when missing.</param>
        /// <param name="node">this node's name, for <see cref="LogLine.Node"/>.</param>
        /// <param name="maxFileBytes">size at which &lt;module&gt;.log is rotated.</param>
        /// <param name="archivedFiles">rotated files kept (&lt;module&gt;.log.1 is the newest).</param>
        /// <param name="memoryLines">lines per module that <see cref="Read"/> can return.</param>
        public ModuleLog(string logDirectory, string node, TimeProvider? time = null, ILogger<ModuleLog>? logger = null,
            long maxFileBytes = DefaultMaxFileBytes, int archivedFiles = DefaultArchivedFiles, int memoryLines = DefaultMemoryLines)
        {
            ArgumentException.ThrowIfNullOrEmpty(logDirectory);
            ArgumentNullException.ThrowIfNull(node);
            ArgumentOutOfRangeException.ThrowIfLessThan(maxFileBytes, 1024);
            ArgumentOutOfRangeException.ThrowIfNegative(archivedFiles);
            ArgumentOutOfRangeException.ThrowIfLessThan(memoryLines, 1);
            _directory = Path.GetFullPath(logDirectory);
            _node = node;
            _time = time ?? TimeProvider.System;
            _logger = logger ?? (ILogger)NullLogger.Instance;
            _maxFileBytes = maxFileBytes;
            _archivedFiles = archivedFiles;
            _memoryLines = memoryLines;
        }

        /// <summary>&lt;logDirectory&gt;/&lt;module&gt;.log.</summary>
        public string PathOf(string module) => Path.Combine(_directory, CheckModuleName(module) + ".log");

        public void Write(string module, string source, string text)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var file = Get(module);
            var time = _time.GetUtcNow().UtcDateTime;
            source = CleanSource(source);
            text ??= "";
            if (text.EndsWith('\n'))
                text = text[..^1]; // "done\n" is one line, not a line and an empty one
            lock (file)
            {
                foreach (var line in text.Split('\n'))
                    file.Append(time, source, line.EndsWith('\r') ? line[..^1] : line);
            }
        }

        public IReadOnlyList<LogLine> Read(string module, int tail, long? afterSequence)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var file = Get(module);
            lock (file)
                return file.Read(tail, afterSequence);
        }

        public void Dispose()
        {
            _disposed = true;
            foreach (var file in _modules.Values)
                lock (file)
                    file.Close();
        }

        private ModuleFile Get(string module)
        {
            CheckModuleName(module);
            var file = _modules.GetOrAdd(module, m => new ModuleFile(this, m));
            lock (file)
                file.LoadOnce();
            return file;
        }

        private static string CheckModuleName(string module)
        {
            ArgumentException.ThrowIfNullOrEmpty(module);
            if (module.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || module.IndexOfAny(['/', '\\', ':']) >= 0 || module is "." or "..")
                throw new ArgumentException($"'{module}' is not a valid module name.", nameof(module));
            return module;
        }

        // The file format separates fields by spaces, so a source never contains one.
        private static string CleanSource(string? source)
        {
            if (string.IsNullOrEmpty(source))
                return "-";
            var chars = source.ToCharArray();
            for (var i = 0; i < chars.Length; i++)
                if (char.IsWhiteSpace(chars[i]) || char.IsControl(chars[i]))
                    chars[i] = '_';
            return new string(chars);
        }

        internal static string Format(long sequence, DateTime timeUtc, string source, string text) =>
            string.Create(CultureInfo.InvariantCulture, $"{timeUtc.ToString(TimeFormat, CultureInfo.InvariantCulture)} {sequence} {source}: {text}\n");

        /// <summary>Parses a line written by <see cref="Format"/>; false for anything else (a torn last line).</summary>
        internal static bool TryParse(string line, out long sequence, out DateTime timeUtc, out string source, out string text)
        {
            sequence = 0;
            timeUtc = default;
            source = text = "";
            var firstSpace = line.IndexOf(' ');
            var secondSpace = firstSpace < 0 ? -1 : line.IndexOf(' ', firstSpace + 1);
            var colon = secondSpace < 0 ? -1 : line.IndexOf(": ", secondSpace + 1, StringComparison.Ordinal);
            if (colon < 0)
                return false;
            if (!DateTime.TryParseExact(line.AsSpan(0, firstSpace), TimeFormat, CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out timeUtc))
                return false;
            if (!long.TryParse(line.AsSpan(firstSpace + 1, secondSpace - firstSpace - 1), NumberStyles.None, CultureInfo.InvariantCulture, out sequence))
                return false;
            source = line.Substring(secondSpace + 1, colon - secondSpace - 1);
            text = line[(colon + 2)..];
            return true;
        }

        /// <summary>The last <paramref name="count"/> complete lines of a file, read backwards from its end.</summary>
        internal static List<string> ReadLastLines(string path, int count)
        {
            var lines = new List<string>();
            if (!File.Exists(path))
                return lines;
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var position = stream.Length;
            var chunks = new LinkedList<byte[]>();
            var newlines = 0;
            while (position > 0 && newlines <= count)
            {
                var size = (int)Math.Min(64 * 1024, position);
                position -= size;
                var chunk = new byte[size];
                stream.Position = position;
                stream.ReadExactly(chunk);
                foreach (var b in chunk)
                    if (b == (byte)'\n')
                        newlines++;
                chunks.AddFirst(chunk);
            }
            var all = new byte[stream.Length - position];
            var offset = 0;
            foreach (var chunk in chunks)
            {
                chunk.CopyTo(all, offset);
                offset += chunk.Length;
            }
            var parts = Utf8.GetString(all).Split('\n');
            // parts[0] may be the end of a line cut by the chunking; the last part follows the last '\n'.
            var first = position > 0 ? 1 : 0;
            for (var i = Math.Max(first, parts.Length - 1 - count); i < parts.Length - 1; i++)
                lines.Add(parts[i]);
            if (parts[^1].Length > 0)
                lines.Add(parts[^1]); // torn last line: TryParse decides
            return lines;
        }

        private readonly record struct Entry(long Sequence, DateTime TimeUtc, string Source, string Text);

        /// <summary>One module: its open file and its ring of recent lines. Callers hold its lock.</summary>
        private sealed class ModuleFile
        {
            private readonly ModuleLog _owner;
            private readonly string _module;
            private readonly string _path;
            private readonly Entry[] _ring;
            private int _start;
            private int _count;
            private long _lastSequence;
            private bool _loaded;
            private FileStream? _stream;
            private bool _failing;

            public ModuleFile(ModuleLog owner, string module)
            {
                _owner = owner;
                _module = module;
                _path = Path.Combine(owner._directory, module + ".log");
                _ring = new Entry[owner._memoryLines];
            }

            public void LoadOnce()
            {
                if (_loaded)
                    return;
                _loaded = true;
                try
                {
                    // The current file first; the newest archive only when the current one is short
                    // (it was just rotated) or holds no complete line.
                    var wanted = _ring.Length;
                    var entries = ParseAll(ReadLastLines(_path, wanted));
                    if (entries.Count < wanted && _owner._archivedFiles > 0)
                    {
                        var older = ParseAll(ReadLastLines(ArchivePath(1), wanted - entries.Count));
                        older.RemoveAll(e => entries.Count > 0 && e.Sequence >= entries[0].Sequence);
                        entries.InsertRange(0, older);
                    }
                    foreach (var entry in entries)
                        if (entry.Sequence > _lastSequence)
                            Remember(entry);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _owner.LogLoadFailed(_module, _path, e);
                }
            }

            public void Append(DateTime timeUtc, string source, string text)
            {
                var entry = new Entry(_lastSequence + 1, timeUtc, source, text);
                Remember(entry);
                if (_owner._disposed)
                    return;
                try
                {
                    var bytes = Utf8.GetBytes(Format(entry.Sequence, entry.TimeUtc, entry.Source, entry.Text));
                    var stream = _stream ??= Open();
                    if (stream.Length > 0 && stream.Length + bytes.Length > _owner._maxFileBytes)
                    {
                        Rotate();
                        stream = _stream = Open();
                    }
                    stream.Write(bytes);
                    stream.Flush();
                    _failing = false;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Close();
                    if (!_failing)
                        _owner.LogWriteFailed(_module, _path, e);
                    _failing = true;
                }
            }

            public IReadOnlyList<LogLine> Read(int tail, long? afterSequence)
            {
                var result = new List<LogLine>();
                if (tail <= 0 || _count == 0)
                    return result;
                int from;
                if (afterSequence is { } after)
                {
                    from = FirstAfter(after);
                }
                else
                {
                    from = Math.Max(0, _count - tail);
                }
                for (var i = from; i < _count && result.Count < tail; i++)
                {
                    var entry = At(i);
                    result.Add(new LogLine
                    {
                        Module = _module,
                        Node = _owner._node,
                        Sequence = entry.Sequence,
                        TimeUtc = entry.TimeUtc,
                        Source = entry.Source,
                        Text = entry.Text,
                    });
                }
                return result;
            }

            public void Close()
            {
                _stream?.Dispose();
                _stream = null;
            }

            private void Remember(Entry entry)
            {
                if (_count < _ring.Length)
                {
                    _ring[(_start + _count) % _ring.Length] = entry;
                    _count++;
                }
                else
                {
                    _ring[_start] = entry;
                    _start = (_start + 1) % _ring.Length;
                }
                _lastSequence = entry.Sequence;
            }

            private Entry At(int index) => _ring[(_start + index) % _ring.Length];

            /// <summary>Index of the first entry with a sequence above <paramref name="after"/> (sequences ascend).</summary>
            private int FirstAfter(long after)
            {
                int low = 0, high = _count;
                while (low < high)
                {
                    var middle = (low + high) / 2;
                    if (At(middle).Sequence <= after)
                        low = middle + 1;
                    else
                        high = middle;
                }
                return low;
            }

            private FileStream Open()
            {
                Directory.CreateDirectory(_owner._directory);
                var torn = !EndsWithNewline();
                var stream = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read | FileShare.Delete);
                if (torn)
                {
                    // A crash tore the last line: start ours on a line of its own.
                    stream.WriteByte((byte)'\n');
                }
                return stream;
            }

            private bool EndsWithNewline()
            {
                if (!File.Exists(_path))
                    return true;
                using var reader = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                if (reader.Length == 0)
                    return true;
                reader.Position = reader.Length - 1;
                return reader.ReadByte() == '\n';
            }

            private void Rotate()
            {
                Close();
                var archived = _owner._archivedFiles;
                if (archived == 0)
                {
                    File.Delete(_path);
                    return;
                }
                File.Delete(ArchivePath(archived));
                for (var i = archived - 1; i >= 1; i--)
                    if (File.Exists(ArchivePath(i)))
                        File.Move(ArchivePath(i), ArchivePath(i + 1), overwrite: true);
                File.Move(_path, ArchivePath(1), overwrite: true);
            }

            private string ArchivePath(int index) => _path + "." + index.ToString(CultureInfo.InvariantCulture);

            private static List<Entry> ParseAll(List<string> lines)
            {
                var entries = new List<Entry>(lines.Count);
                foreach (var line in lines)
                    if (TryParse(line, out var sequence, out var time, out var source, out var text) &&
                        (entries.Count == 0 || sequence > entries[^1].Sequence))
                        entries.Add(new Entry(sequence, time, source, text));
                return entries;
            }
        }

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: cannot read the module log {Path}; numbering starts again")]
        private partial void LogLoadFailed(string module, string path, Exception exception);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: cannot write the module log {Path}; lines are kept in memory only until it works again")]
        private partial void LogWriteFailed(string module, string path, Exception exception);
    }
}
