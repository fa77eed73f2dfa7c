// Shapes of values shared by cluster.xml and userconfig.xml: names, addresses, paths.
using System;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace ServiceKeeper.Engine.Configuration
{
    internal static partial class ConfigSyntax
    {
        public const string NameRule = "letters, digits, '-', '_', '.', starting with a letter or digit, at most 63";
        public const string IdentRule = "letters, digits, '-', '_'";
        public const string VariableRule = "letters, digits and '_', not starting with a digit";

        /// <summary>Node, cluster, lan and module names. The same rule as `servicekeeper run --node-name`, so any
        /// name an engine can be started with is accepted here.</summary>
        public static bool IsName(string? text) => text != null && NamePattern().IsMatch(text);

        /// <summary>Checker idents: they become resource names "class.ident", so no dots.</summary>
        public static bool IsIdent(string? text) => text != null && IdentPattern().IsMatch(text);

        public static bool IsVariableName(string? text) => text != null && VariablePattern().IsMatch(text);

        /// <summary>
        /// IPAddress.TryParse also takes "10" or "10.1" (inet_aton forms: 0.0.0.10, 10.0.0.1). In a
        /// configuration file those are typos, so IPv4 must be four dotted decimals.
        /// </summary>
        public static bool TryParseIp(string? text, out IPAddress address)
        {
            address = IPAddress.None;
            if (string.IsNullOrEmpty(text) || text.Trim() != text)
                return false;
            if (text.Contains(':'))
                return IPAddress.TryParse(text, out address!) && address.AddressFamily == AddressFamily.InterNetworkV6;
            return Ipv4Pattern().IsMatch(text) && IPAddress.TryParse(text, out address!);
        }

        /// <summary>"198.18.0.100" or "198.18.0.100/24"; the prefix is not range-checked here.</summary>
        public static bool TryParseIpWithPrefix(string text, out IPAddress address, out int? prefix)
        {
            prefix = null;
            int slash = text.IndexOf('/');
            if (slash < 0)
                return TryParseIp(text, out address);
            if (!TryParseIp(text[..slash], out address))
                return false;
            var digits = text[(slash + 1)..];
            if (digits.Length == 0 || digits.Length > 3 || !digits.All(char.IsAsciiDigit))
                return false;
            prefix = int.Parse(digits, CultureInfo.InvariantCulture);
            return true;
        }

        public static int MaxPrefix(IPAddress address) => address.AddressFamily == AddressFamily.InterNetworkV6 ? 128 : 32;

        public static bool IsHostOrIp(string? text) =>
            TryParseIp(text, out _) || (text != null && HostPattern().IsMatch(text) && !NumericPattern().IsMatch(text));

        /// <summary>
        /// Absolute on the node that will run it: "/var/lib/x" (Linux) or "D:\data" (Windows). The test
        /// does not depend on the OS the check runs on, since configs are validated before being pushed.
        /// </summary>
        public static bool IsAbsolutePath(string path) =>
            path.StartsWith('/') || (path.Length >= 3 && char.IsAsciiLetter(path[0]) && path[1] == ':' && (path[2] == '\\' || path[2] == '/'));

        public static bool IsWindowsPath(string path) => !path.StartsWith('/');

        public static string[] Segments(string path) =>
            path.Split(IsWindowsPath(path) ? new[] { '\\', '/' } : new[] { '/' }, StringSplitOptions.RemoveEmptyEntries);

        public static bool HasDotSegments(string path) => Segments(path).Any(s => s == ".." || s == ".");

        [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
        private static partial Regex NamePattern();

        [GeneratedRegex("^[A-Za-z0-9_-]{1,63}$")]
        private static partial Regex IdentPattern();

        [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
        private static partial Regex VariablePattern();

        [GeneratedRegex(@"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")]
        private static partial Regex Ipv4Pattern();

        [GeneratedRegex(@"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")]
        private static partial Regex HostPattern();

        [GeneratedRegex(@"^[0-9.]+$")]
        private static partial Regex NumericPattern();
    }
}
