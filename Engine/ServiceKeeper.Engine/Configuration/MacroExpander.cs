// <macro name="X" value="y"/> children of <service> define %X%, replaced in every attribute value and
// text of the file before anything is read, so a value is checked as it will be used.
// "%%" stands for one '%'; a '%' that does not start %NAME% is kept as it is ("50%").
// Macro values may use other macros; a cycle is an error.
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Xml.Linq;

namespace ServiceKeeper.Engine.Configuration
{
    internal sealed class MacroExpander
    {
        public const string ElementName = "macro";

        private readonly string file;
        private readonly Dictionary<string, (string Value, XElement Source)> raw = new(System.StringComparer.Ordinal);
        private readonly Dictionary<string, string> resolved = new(System.StringComparer.Ordinal);

        private MacroExpander(string file)
        {
            this.file = file;
        }

        /// <summary>Removes the macro definitions from the document and expands every use; returns the macros.</summary>
        public static IReadOnlyDictionary<string, string> Expand(XElement service, string file, SourceMap map)
        {
            var expander = new MacroExpander(file);
            foreach (var definition in service.Elements(ElementName).ToList())
            {
                var e = new ConfigElement(definition, file, map, null, "name", "value");
                e.Children();
                var name = e.Required("name");
                if (!ConfigSyntax.IsVariableName(name))
                    throw e.Error($"macro name '{name}' is not valid: {ConfigSyntax.VariableRule}.");
                if (expander.raw.ContainsKey(name))
                    throw e.Error($"macro '{name}' is defined twice.");
                expander.raw[name] = (e.Text("value") ?? "", definition);
                definition.Remove();
            }
            foreach (var name in expander.raw.Keys)
                expander.Resolve(name, new List<string>());

            foreach (var element in service.DescendantsAndSelf())
            {
                foreach (var attribute in element.Attributes().Where(a => !a.IsNamespaceDeclaration))
                    attribute.Value = expander.Substitute(attribute.Value, attribute);
                foreach (var text in element.Nodes().OfType<XText>())
                    text.Value = expander.Substitute(text.Value, text);
            }
            return expander.resolved;
        }

        private string Resolve(string name, List<string> chain)
        {
            if (resolved.TryGetValue(name, out var done))
                return done;
            var (value, source) = raw[name];
            if (chain.Contains(name))
                throw ConfigXml.Error(file, source, $"macro '{name}' refers to itself: {string.Join(" -> ", chain.Append(name))}.");
            chain.Add(name);
            var result = Replace(value, source, chain);
            chain.RemoveAt(chain.Count - 1);
            resolved[name] = result;
            return result;
        }

        private string Substitute(string text, XObject where) =>
            text.Contains('%') ? Replace(text, where, null) : text;

        private string Replace(string text, XObject where, List<string>? chain)
        {
            var output = new StringBuilder(text.Length);
            int i = 0;
            while (i < text.Length)
            {
                char c = text[i];
                if (c != '%')
                {
                    output.Append(c);
                    i++;
                    continue;
                }
                if (i + 1 < text.Length && text[i + 1] == '%')
                {
                    output.Append('%');
                    i += 2;
                    continue;
                }
                int end = i + 1;
                while (end < text.Length && (char.IsAsciiLetterOrDigit(text[end]) || text[end] == '_'))
                    end++;
                var name = text[(i + 1)..end];
                if (end >= text.Length || text[end] != '%' || !ConfigSyntax.IsVariableName(name))
                {
                    output.Append('%');
                    i++;
                    continue;
                }
                if (!raw.ContainsKey(name))
                {
                    var known = raw.Count == 0 ? "no macro is defined" : "defined: " + string.Join(", ", raw.Keys.Order());
                    throw ConfigXml.Error(file, where, $"undefined macro %{name}% ({known}; write %% for a literal '%').");
                }
                output.Append(chain == null ? resolved[name] : Resolve(name, chain));
                i = end + 1;
            }
            return output.ToString();
        }
    }
}
