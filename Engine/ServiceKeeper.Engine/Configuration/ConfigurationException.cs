// The one error every configuration problem becomes, so the admin reads "file:line:column: reason"
// whatever went wrong: unreadable file, malformed XML, unknown tag, bad value, broken reference.
using System;

namespace ServiceKeeper.Engine.Configuration
{
    public sealed class ConfigurationException : Exception
    {
        public ConfigurationException(string file, int line, int column, string reason)
            : this(file, line, column, reason, null)
        {
        }

        public ConfigurationException(string file, int line, int column, string reason, Exception? innerException)
            : base(FormatMessage(file, line, column, reason), innerException)
        {
            File = file;
            Line = line;
            Column = column;
            Reason = reason;
        }

        /// <summary>The file as the caller named it (a path for Load, the given name for Parse).</summary>
        public string File { get; }

        /// <summary>1-based; 0 when the problem has no place in the file (a missing file, a model built in code).</summary>
        public int Line { get; }

        /// <summary>1-based; 0 when unknown.</summary>
        public int Column { get; }

        public string Reason { get; }

        private static string FormatMessage(string file, int line, int column, string reason) =>
            line <= 0 ? $"{file}: {reason}"
            : column <= 0 ? $"{file}:{line}: {reason}"
            : $"{file}:{line}:{column}: {reason}";
    }
}
