// The processes errd watches on Linux, read from /proc.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>
    /// <see cref="IProcessTable"/> from /proc: name from comm, command line from cmdline (NULs as spaces).
    /// Only processes in the engine's network namespace count: on a server that is all of them, and
    /// where several nodes share one machine (test labs: one network namespace per node, one PID
    /// namespace for all) a node must not count its neighbours' processes as its own.
    /// </summary>
    /// <remarks>
    /// comm holds at most 15 characters; when it is cut, the name is the file name of argv[0] if that
    /// starts with comm, so that errd name="my-long-server-name" works as the admin expects. A process
    /// whose namespace cannot be read for lack of rights is kept (only root sees every namespace, and
    /// losing processes would be worse); zombies and processes that exit while being read are skipped.
    /// </remarks>
    public sealed class LinuxProcessTable : IProcessTable
    {
        private const int CommLength = 15; // TASK_COMM_LEN - 1

        private readonly string _proc;
        private readonly string? _networkNamespace;

        public LinuxProcessTable()
            : this("/proc")
        {
        }

        /// <param name="procRoot">the proc file system (tests may point at a copy).</param>
        internal LinuxProcessTable(string procRoot)
        {
            _proc = procRoot;
            _networkNamespace = ReadLink(Path.Combine(procRoot, "self", "ns", "net"));
        }

        public IReadOnlyList<ProcessEntry> Snapshot()
        {
            var processes = new List<ProcessEntry>();
            foreach (var directory in Directory.EnumerateDirectories(_proc))
            {
                var name = Path.GetFileName(directory);
                if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                    continue;
                var entry = TryRead(directory, pid);
                if (entry != null)
                    processes.Add(entry);
            }
            return processes;
        }

        private ProcessEntry? TryRead(string directory, int pid)
        {
            try
            {
                // A killed process stays a zombie until its parent reaps it (in a container whose PID 1 never
                // does, forever): it runs nothing, so it must not count.
                var stat = File.ReadAllText(Path.Combine(directory, "stat"));
                var close = stat.LastIndexOf(')');
                if (close > 0 && close + 2 < stat.Length && stat[close + 2] is 'Z' or 'X')
                    return null;
                if (_networkNamespace != null)
                {
                    var ns = ReadLink(Path.Combine(directory, "ns", "net"), out var denied);
                    // null without denial: gone, or a zombie (it has no namespaces any more).
                    if (ns is null ? !denied : ns != _networkNamespace)
                        return null;
                }
                var comm = File.ReadAllText(Path.Combine(directory, "comm")).TrimEnd('\n');
                var cmdline = File.ReadAllBytes(Path.Combine(directory, "cmdline"));
                return new ProcessEntry(pid, NameOf(comm, cmdline), CommandLineOf(cmdline, comm));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null; // exited between the listing and the read
            }
        }

        /// <summary>comm, or argv[0]'s file name when comm was cut to 15 characters and argv[0] continues it.</summary>
        internal static string NameOf(string comm, ReadOnlySpan<byte> cmdline)
        {
            if (comm.Length < CommLength || cmdline.IsEmpty)
                return comm;
            var end = cmdline.IndexOf((byte)0);
            var argv0 = Encoding.UTF8.GetString(end < 0 ? cmdline : cmdline[..end]);
            var fileName = argv0[(argv0.LastIndexOf('/') + 1)..];
            // A process that rewrote its title ("name: worker 3") keeps only the first word.
            var space = fileName.IndexOfAny([' ', '\t', ':']);
            if (space >= 0)
                fileName = fileName[..space];
            return fileName.Length > comm.Length && fileName.StartsWith(comm, StringComparison.Ordinal) ? fileName : comm;
        }

        /// <summary>The arguments separated by spaces; a kernel thread (empty cmdline) shows its name.</summary>
        internal static string CommandLineOf(byte[] cmdline, string comm)
        {
            var length = cmdline.Length;
            while (length > 0 && cmdline[length - 1] == 0)
                length--;
            if (length == 0)
                return comm;
            var text = Encoding.UTF8.GetString(cmdline, 0, length);
            return text.Replace('\0', ' ');
        }

        private static string? ReadLink(string path) => ReadLink(path, out _);

        private static string? ReadLink(string path, out bool denied)
        {
            denied = false;
            try
            {
                return new FileInfo(path).LinkTarget;
            }
            catch (UnauthorizedAccessException)
            {
                denied = true;
                return null;
            }
            catch (IOException)
            {
                return null;
            }
        }
    }
}
