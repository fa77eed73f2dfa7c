// One element of a configuration file as the readers see it: typed attribute values, the list of
// allowed attributes and children, and errors that carry the place of the attribute or element.
// It checks form only (is it a number, a known word, an IP); ranges and references are the
// validators' job, so that a model built in code gets the same checks.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Xml.Linq;

namespace ServiceKeeper.Engine.Configuration
{
    internal sealed class ConfigElement
    {
        private readonly string file;
        private readonly SourceMap map;
        private readonly object? target;

        /// <param name="target">The model object this element fills; attribute places are recorded against it.</param>
        public ConfigElement(XElement element, string file, SourceMap map, object? target, params string[] allowedAttributes)
        {
            Element = element;
            this.file = file;
            this.map = map;
            this.target = target;
            if (target != null)
                map.Record(target, SourceMap.Element, element);
            foreach (var attribute in element.Attributes())
            {
                if (attribute.IsNamespaceDeclaration)
                    continue;
                if (attribute.Name.Namespace != XNamespace.None || !allowedAttributes.Contains(attribute.Name.LocalName))
                {
                    throw ErrorAt(attribute, allowedAttributes.Length == 0
                        ? $"unknown attribute '{attribute.Name.LocalName}': <{Name}> takes no attributes."
                        : $"unknown attribute '{attribute.Name.LocalName}' on <{Name}>; allowed: {string.Join(", ", allowedAttributes)}.");
                }
            }
        }

        public XElement Element { get; }

        public string Name => Element.Name.LocalName;

        public ConfigurationException Error(string reason) => ConfigXml.Error(file, Element, reason);

        public ConfigurationException ErrorAt(XObject node, string reason) => ConfigXml.Error(file, node, reason);

        /// <summary>An error placed on the named attribute, or on the element when it is absent.</summary>
        public ConfigurationException ErrorAt(string attribute, string reason) =>
            ConfigXml.Error(file, (XObject?)Element.Attribute(attribute) ?? Element, reason);

        /// <summary>The child elements, each checked against the allowed names; text between them is an error.</summary>
        public List<XElement> Children(params string[] allowedNames)
        {
            foreach (var node in Element.Nodes())
            {
                if (node is XText text && !string.IsNullOrWhiteSpace(text.Value))
                    throw ErrorAt(text, $"unexpected text '{Shorten(text.Value.Trim())}' in <{Name}>.");
            }
            var children = Element.Elements().ToList();
            foreach (var child in children)
            {
                if (child.Name.Namespace != XNamespace.None || !allowedNames.Contains(child.Name.LocalName))
                {
                    throw ErrorAt(child, allowedNames.Length == 0
                        ? $"unknown element <{child.Name.LocalName}>: <{Name}> has no child elements."
                        : $"unknown element <{child.Name.LocalName}> in <{Name}>; allowed: {string.Join(", ", allowedNames.Select(n => "<" + n + ">"))}.");
                }
            }
            return children;
        }

        /// <summary>For sections that make sense once: a second one is a mistake, not a merge.</summary>
        public XElement? AtMostOne(List<XElement> children, string name)
        {
            var matching = children.Where(c => c.Name.LocalName == name).ToList();
            if (matching.Count > 1)
                throw ErrorAt(matching[1], $"<{name}> appears more than once in <{Name}>; merge them into one.");
            return matching.FirstOrDefault();
        }

        public string? Text(string name)
        {
            var attribute = Attribute(name);
            return attribute?.Value;
        }

        public string Required(string name)
        {
            var attribute = Attribute(name) ?? throw Error($"<{Name}> needs a '{name}' attribute.");
            if (string.IsNullOrWhiteSpace(attribute.Value))
                throw ErrorAt(attribute, $"'{name}' of <{Name}> is empty.");
            return attribute.Value.Trim();
        }

        public bool OnOff(string name, bool defaultValue)
        {
            var attribute = Attribute(name);
            if (attribute == null)
                return defaultValue;
            return attribute.Value.Trim().ToLowerInvariant() switch
            {
                "on" => true,
                "off" => false,
                _ => throw ErrorAt(attribute, $"'{name}' of <{Name}> is '{attribute.Value}'; allowed: on, off."),
            };
        }

        public int Integer(string name, int defaultValue) => OptionalInteger(name) ?? defaultValue;

        public int RequiredInteger(string name) =>
            OptionalInteger(name) ?? throw Error($"<{Name}> needs a '{name}' attribute.");

        /// <param name="anyWord">A word that means "no value" (port="*", atmax="none"): read as null.</param>
        public int? OptionalInteger(string name, string? anyWord = null)
        {
            var attribute = Attribute(name);
            if (attribute == null)
                return null;
            var text = attribute.Value.Trim();
            if (anyWord != null && string.Equals(text, anyWord, StringComparison.OrdinalIgnoreCase))
                return null;
            if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            {
                throw ErrorAt(attribute, anyWord == null
                    ? $"'{name}' of <{Name}> is '{attribute.Value}'; expected a whole number."
                    : $"'{name}' of <{Name}> is '{attribute.Value}'; expected a whole number or '{anyWord}'.");
            }
            return value;
        }

        public TimeSpan Time(string name, TimeSpan defaultValue)
        {
            var attribute = Attribute(name);
            if (attribute == null)
                return defaultValue;
            if (!TimeValue.TryParse(attribute.Value, out var value))
                throw ErrorAt(attribute, $"'{name}' of <{Name}> is '{attribute.Value}', not a time value; expected {TimeValue.Expected}.");
            return value;
        }

        public T Enum<T>(string name, T defaultValue, EnumNames<T> names) where T : struct, System.Enum =>
            Attribute(name) == null ? defaultValue : RequiredEnum(name, names);

        public T RequiredEnum<T>(string name, EnumNames<T> names) where T : struct, System.Enum
        {
            var attribute = Attribute(name) ?? throw Error($"<{Name}> needs a '{name}' attribute; allowed: {names.Allowed}.");
            if (!names.TryParse(attribute.Value, out var value))
                throw ErrorAt(attribute, $"'{name}' of <{Name}> is '{attribute.Value}'; allowed: {names.Allowed}.");
            return value;
        }

        public IPAddress RequiredIp(string name)
        {
            var text = Required(name);
            if (!ConfigSyntax.TryParseIp(text, out var address))
                throw ErrorAt(name, $"'{name}' of <{Name}> is '{text}', not an IP address.");
            return address;
        }

        private XAttribute? Attribute(string name)
        {
            var attribute = Element.Attribute(name);
            if (attribute != null && target != null)
                map.Record(target, name, attribute);
            return attribute;
        }

        private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";
    }
}
