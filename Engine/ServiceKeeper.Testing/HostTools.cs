// Host-side plumbing for NetLab: finding tools, running them, signals, namespace and mount queries.
using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace ServiceKeeper.Testing;

internal static class HostTools
{
    internal const int SigKill = 9;
    internal const int SigTerm = 15;

    // sbin folders are searched too: a test runner's PATH does not always hold them.
    private static readonly string[] ExtraDirs = { "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin" };

    /// <summary>Full path of a tool from PATH or the usual system folders, or null.</summary>
    internal static string? Find(string name)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(ExtraDirs);
        foreach (var dir in dirs)
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    internal static string Require(string name) =>
        Find(name) ?? throw new InvalidOperationException($"'{name}' was not found on PATH or in /usr/sbin, /sbin, /usr/bin, /bin.");

    internal static string Ip => Require("ip");

    /// <summary>Runs a program (no shell) and collects its output; kills it after <paramref name="timeout"/>.</summary>
    internal static ExecResult Run(string file, IEnumerable<string> args, TimeSpan timeout, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        var commandLine = FormatCommandLine(file, psi.ArgumentList);

        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start '{commandLine}'.");
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"Could not start '{commandLine}': {e.Message}", e);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            try
            {
                if (stdin is not null)
                {
                    process.StandardInput.Write(stdin);
                }
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The command exited without reading its input; its exit code tells the story.
            }

            var timedOut = !process.WaitForExit(timeout);
            if (timedOut)
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                }
                process.WaitForExit(2000);
            }
            else
            {
                process.WaitForExit();
            }

            // A grandchild may keep a pipe open after the command ends: never wait for it forever.
            var o = stdout.Wait(2000) ? stdout.Result : string.Empty;
            var e = stderr.Wait(2000) ? stderr.Result : string.Empty;
            return new ExecResult(commandLine, timedOut ? -1 : process.ExitCode, o, e, timedOut);
        }
    }

    internal static string FormatCommandLine(string file, IEnumerable<string> args)
    {
        var sb = new StringBuilder(Quote(file));
        foreach (var a in args)
        {
            sb.Append(' ').Append(Quote(a));
        }
        return sb.ToString();
    }

    /// <summary>Quotes a word for sh: 'it'\''s'.</summary>
    internal static string Quote(string s)
    {
        if (s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=@%+,".Contains(c)))
        {
            return s;
        }
        return "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }

    // Blittable signature: DllImport needs no unsafe code here (LibraryImport would).
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SysKill(int pid, int signal);

    /// <summary>Sends a signal; a negative pid is a process group. False if nothing received it.</summary>
    internal static bool Signal(int pid, int signal)
    {
        if (pid == 0 || pid == -1 || pid == Environment.ProcessId)
        {
            return false;
        }
        return SysKill(pid, signal) == 0;
    }

    /// <summary>"mnt:[4026531841]" for a process, or null once it is gone.</summary>
    internal static string? NamespaceOf(int pid, string kind)
    {
        try
        {
            return new FileInfo($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/ns/{kind}").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Where <c>ip netns add</c> pins named network namespaces.</summary>
    internal const string NetnsDirectory = "/run/netns";

    /// <summary>Names of the network namespaces, as <c>ip netns list</c> would give them.</summary>
    /// <remarks>
    /// Read from <see cref="NetnsDirectory"/> (which is what <c>ip netns list</c> reads) rather than by running ip: on a
    /// loaded machine that command can time out, and a lab would then leave every namespace behind. The command is run
    /// only when the folder is absent (no namespace has been added since boot, or ip pins them elsewhere).
    /// </remarks>
    internal static IReadOnlyList<string> ListNetns(TimeSpan timeout)
    {
        if (Directory.Exists(NetnsDirectory))
        {
            return Directory.EnumerateFiles(NetnsDirectory).Select(Path.GetFileName).OfType<string>().ToList();
        }
        var r = Run(Ip, new[] { "netns", "list" }, timeout);
        if (!r.Succeeded)
        {
            return Array.Empty<string>();
        }
        return r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split(' ')[0])
            .ToList();
    }

    internal static IReadOnlyList<int> NetnsPids(string ns, TimeSpan timeout)
    {
        var r = Run(Ip, new[] { "netns", "pids", ns }, timeout);
        if (!r.Succeeded)
        {
            return Array.Empty<int>();
        }
        var pids = new List<int>();
        foreach (var line in r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid != Environment.ProcessId)
            {
                pids.Add(pid);
            }
        }
        return pids;
    }

    /// <summary>kill -9 every process in the network namespace until none is left (or a few rounds passed).</summary>
    internal static void KillAllIn(string ns, TimeSpan timeout, Action<string> log)
    {
        for (var round = 0; round < 20; round++)
        {
            var pids = NetnsPids(ns, timeout);
            if (pids.Count == 0)
            {
                return;
            }
            foreach (var pid in pids)
            {
                if (round == 0)
                {
                    log($"kill -9 {pid} (left in {ns})");
                }
                Signal(pid, SigKill);
            }
            Thread.Sleep(50 + round * 25);
        }
        log($"processes still in {ns} after kill -9: {string.Join(' ', NetnsPids(ns, timeout))}");
    }

    /// <summary>Mount points (of this process's mount namespace) at or under <paramref name="dir"/>, deepest first.</summary>
    internal static IReadOnlyList<string> MountsUnder(string dir)
    {
        var result = new List<string>();
        string[] lines;
        try
        {
            lines = File.ReadAllLines("/proc/self/mounts");
        }
        catch (IOException)
        {
            return result;
        }
        var root = dir.TrimEnd('/');
        foreach (var line in lines)
        {
            var fields = line.Split(' ');
            if (fields.Length < 2)
            {
                continue;
            }
            var mountPoint = UnescapeMountField(fields[1]);
            if (mountPoint == root || mountPoint.StartsWith(root + "/", StringComparison.Ordinal))
            {
                result.Add(mountPoint);
            }
        }
        return result.Distinct().OrderByDescending(m => m.Length).ToList();
    }

    // /proc/mounts writes space, tab, newline and backslash as \ooo.
    private static string UnescapeMountField(string field)
    {
        if (!field.Contains('\\'))
        {
            return field;
        }
        var sb = new StringBuilder();
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length
                && field.Substring(i + 1, 3).All(c => c is >= '0' and <= '7'))
            {
                sb.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                sb.Append(field[i]);
            }
        }
        return sb.ToString();
    }

    /// <summary>The last <paramref name="count"/> lines of a text file, or a note saying why there are none.</summary>
    internal static string Tail(string path, int count)
    {
        try
        {
            if (!File.Exists(path))
            {
                return $"({path} does not exist)";
            }
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(fs);
            var queue = new Queue<string>();
            string? line;
            while ((line = reader.ReadLine()) is not null)
            {
                queue.Enqueue(line);
                if (queue.Count > count)
                {
                    queue.Dequeue();
                }
            }
            return queue.Count == 0 ? $"({path} is empty)" : string.Join('\n', queue);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"({path} could not be read: {e.Message})";
        }
    }

    internal static Task<bool> WaitForExitAsync(Process p, TimeSpan timeout) =>
        Task.Run(() =>
        {
            try
            {
                return p.WaitForExit(timeout);
            }
            catch (InvalidOperationException)
            {
                return true;
            }
        });
}
