// The spelling of an enum in configuration files, both ways, and the list of allowed words for errors.
using System;
using System.Linq;

namespace ServiceKeeper.Engine.Configuration
{
    internal sealed class EnumNames<T> where T : struct, Enum
    {
        private readonly (string Text, T Value)[] names;

        public EnumNames(params (string Text, T Value)[] names)
        {
            this.names = names;
        }

        public string Allowed => string.Join(", ", names.Select(n => n.Text));

        public bool TryParse(string text, out T value)
        {
            foreach (var (name, v) in names)
            {
                if (string.Equals(name, text.Trim(), StringComparison.OrdinalIgnoreCase))
                {
                    value = v;
                    return true;
                }
            }
            value = default;
            return false;
        }

        public bool Contains(T value) => names.Any(n => n.Value.Equals(value));

        public string ToText(T value)
        {
            foreach (var (name, v) in names)
                if (v.Equals(value))
                    return name;
            throw new ArgumentOutOfRangeException(nameof(value), value, $"{typeof(T).Name} has no configuration name.");
        }
    }
}
