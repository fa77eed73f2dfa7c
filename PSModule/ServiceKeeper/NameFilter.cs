using System;
using System.Collections.Generic;
using System.Management.Automation;

namespace ServiceKeeper.Commands
{
    /// <summary>-Name matching as Get-Service does it: wildcards select silently, an exact name must exist.</summary>
    internal static class NameFilter
    {
        /// <summary>
        /// Items whose name matches one of <paramref name="patterns"/> (all when none), in their
        /// original order, each once; <paramref name="notFound"/> is called for each exact name
        /// that matched nothing.
        /// </summary>
        public static List<T> Select<T>(IEnumerable<T> items, Func<T, string> nameOf, string[]? patterns, Action<string> notFound)
        {
            var all = new List<T>(items);
            if (patterns == null || patterns.Length == 0) return all;

            var wildcards = new List<WildcardPattern>();
            foreach (var pattern in patterns)
                wildcards.Add(new WildcardPattern(pattern, WildcardOptions.IgnoreCase));

            var matched = new bool[patterns.Length];
            var selected = new List<T>();
            foreach (var item in all)
            {
                bool any = false;
                for (int i = 0; i < wildcards.Count; i++)
                {
                    if (!wildcards[i].IsMatch(nameOf(item))) continue;
                    matched[i] = true;
                    any = true;
                }
                if (any) selected.Add(item);
            }

            var reported = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            for (int i = 0; i < patterns.Length; i++)
                if (!matched[i] && !WildcardPattern.ContainsWildcardCharacters(patterns[i]) && reported.Add(patterns[i]))
                    notFound(patterns[i]);
            return selected;
        }
    }
}
