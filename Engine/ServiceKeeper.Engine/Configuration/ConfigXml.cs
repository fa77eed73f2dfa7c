// Reads configuration text into an XDocument that remembers lines, turning every failure on the way
// (missing file, malformed XML) into a ConfigurationException; writes files in one canonical form.
using System;
using System.IO;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml;
using System.Xml.Linq;

namespace ServiceKeeper.Engine.Configuration
{
    internal static partial class ConfigXml
    {
        public static string ReadFile(string path)
        {
            try
            {
                return File.ReadAllText(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
            {
                throw new ConfigurationException(path, 0, 0, $"cannot read the file: {ex.Message}", ex);
            }
        }

        public static XDocument Parse(string xml, string file)
        {
            // No DTDs: a configuration file has no use for entities, and refusing them rules out entity bombs.
            var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null };
            try
            {
                using var text = new StringReader(xml);
                using var reader = XmlReader.Create(text, settings);
                return XDocument.Load(reader, LoadOptions.SetLineInfo);
            }
            catch (XmlException ex)
            {
                int doctype = xml.IndexOf("<!DOCTYPE", StringComparison.Ordinal);
                if (ex.LineNumber == 0 && doctype >= 0)
                {
                    // The parser refuses the DTD without saying where it is.
                    int line = 1 + xml.AsSpan(0, doctype).Count('\n');
                    int column = doctype - xml.LastIndexOf('\n', Math.Max(doctype - 1, 0));
                    throw new ConfigurationException(file, line, column, "malformed XML: a DOCTYPE is not allowed in a configuration file.", ex);
                }
                var reason = PositionSuffix().Replace(ex.Message, "");
                throw new ConfigurationException(file, ex.LineNumber, ex.LinePosition, $"malformed XML: {reason}", ex);
            }
        }

        /// <summary>UTF-8 declaration, two-space indent, "\n" line ends whatever the OS.</summary>
        public static string Write(XElement root)
        {
            var settings = new XmlWriterSettings
            {
                Indent = true,
                IndentChars = "  ",
                NewLineChars = "\n",
                NewLineHandling = NewLineHandling.Replace,
                OmitXmlDeclaration = true,
            };
            var text = new StringBuilder("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
            using (var writer = XmlWriter.Create(text, settings))
                root.WriteTo(writer);
            return text.Append('\n').ToString();
        }

        public static (int Line, int Column) Position(XObject? node) =>
            node is IXmlLineInfo info && info.HasLineInfo() ? (info.LineNumber, info.LinePosition) : (0, 0);

        public static ConfigurationException Error(string file, XObject? node, string reason)
        {
            var (line, column) = Position(node);
            return new ConfigurationException(file, line, column, reason);
        }

        [GeneratedRegex(@"\s*Line \d+, position \d+\.\s*$")]
        private static partial Regex PositionSuffix();
    }
}
