// Where the program of a script or checker is: a file of the module's bin/, a path, or a command on PATH.
using System;
using System.Collections.Generic;
using System.IO;

namespace ServiceKeeper.Engine.Scripts
{
    public static class ProgramPath
    {
        // What Windows modules may ship instead of an extension-less name ("start_prim" -> start_prim.ps1).
        private static readonly string[] WindowsScriptExtensions = { ".exe", ".cmd", ".bat", ".ps1", ".com" };

        /// <summary>
        /// The program a module names (<c>exec="appcheck"</c>, <c>start_prim</c>): its bin/ file when that
        /// exists, else the name unchanged so that <see cref="Resolve"/> looks it up on PATH.
        /// </summary>
        public static string InModule(string moduleDirectory, string program)
        {
            ArgumentNullException.ThrowIfNull(moduleDirectory);
            ArgumentNullException.ThrowIfNull(program);
            if (program.Length == 0 || Path.IsPathRooted(program))
                return program;
            var inBin = Path.GetFullPath(Path.Combine(moduleDirectory, "bin", program));
            return FindFile(inBin) ?? program;
        }

        /// <summary>
        /// The full path of the file to run, or null when there is none. A bare name (no directory
        /// separator) is looked up on PATH; anything else is a path, relative to the current directory
        /// unless rooted. On Windows a name without extension also finds .exe, .cmd, .bat, .ps1.
        /// </summary>
        public static string? Resolve(string program)
        {
            if (string.IsNullOrWhiteSpace(program))
                return null;
            if (IsBareName(program))
                return FindOnPath(program);
            return FindFile(Path.GetFullPath(program));
        }

        /// <summary>The first match of a bare command name on PATH, or null.</summary>
        public static string? FindOnPath(string name)
        {
            foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                string candidate;
                try
                {
                    candidate = Path.GetFullPath(Path.Combine(dir.Trim('"'), name));
                }
                catch (ArgumentException)
                {
                    continue; // a malformed PATH entry
                }
                var found = FindFile(candidate);
                // A shell skips files it may not execute; so do we, or a stray data file would shadow /usr/bin.
                if (found != null && (OperatingSystem.IsWindows() || IsExecutable(found)))
                    return found;
            }
            return null;
        }

        internal static bool IsBareName(string program) =>
            program.IndexOf(Path.DirectorySeparatorChar) < 0 && program.IndexOf(Path.AltDirectorySeparatorChar) < 0 &&
            !Path.IsPathRooted(program);

        /// <summary>Linux: any execute bit. Windows: always (the extension decides how it runs).</summary>
        internal static bool IsExecutable(string file)
        {
            if (OperatingSystem.IsWindows())
                return true;
            const UnixFileMode anyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
            try
            {
                return (File.GetUnixFileMode(file) & anyExecute) != 0;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
        }

        private static string? FindFile(string path)
        {
            if (File.Exists(path))
                return path;
            if (!OperatingSystem.IsWindows() || Path.HasExtension(path))
                return null;
            foreach (var extension in Extensions())
                if (File.Exists(path + extension))
                    return path + extension;
            return null;
        }

        private static IEnumerable<string> Extensions()
        {
            var pathExt = Environment.GetEnvironmentVariable("PATHEXT");
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var ext in (pathExt ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
                if (ext.StartsWith('.') && seen.Add(ext))
                    yield return ext;
            foreach (var ext in WindowsScriptExtensions)
                if (seen.Add(ext))
                    yield return ext;
        }
    }
}
