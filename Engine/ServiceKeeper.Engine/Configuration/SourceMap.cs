// Remembers where each model object (and each of its attributes) came from in the file, so checks that
// run on the model after reading still point at a line. A model built in code has no entries: its
// errors name the file only.
using System.Collections.Generic;
using System.Xml.Linq;

namespace ServiceKeeper.Engine.Configuration
{
    internal sealed class SourceMap
    {
        /// <summary>Key of the element an object was read from.</summary>
        public const string Element = "";

        private readonly Dictionary<object, Dictionary<string, (int Line, int Column)>> places =
            new(ReferenceEqualityComparer.Instance);

        /// <summary>Records the first place only: an object read from an element and its children keeps the element.</summary>
        public void Record(object target, string key, XObject node)
        {
            var position = ConfigXml.Position(node);
            if (position.Line == 0)
                return;
            if (!places.TryGetValue(target, out var keys))
                places[target] = keys = new Dictionary<string, (int, int)>();
            keys.TryAdd(key, position);
        }

        /// <summary>The attribute's place, else the element's, else unknown (0, 0).</summary>
        public (int Line, int Column) Find(object target, string key)
        {
            if (!places.TryGetValue(target, out var keys))
                return (0, 0);
            if (keys.TryGetValue(key, out var position) || keys.TryGetValue(Element, out position))
                return position;
            return (0, 0);
        }

        public ConfigurationException Error(string file, object target, string key, string reason)
        {
            var (line, column) = Find(target, key);
            return new ConfigurationException(file, line, column, reason);
        }
    }
}
