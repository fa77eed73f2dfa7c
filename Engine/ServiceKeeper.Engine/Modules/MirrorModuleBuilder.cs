// Add-SKMirrorModule: turns its parameters (and an optional userconfig.xml to start from) into the
// module's userconfig.xml. Parameters replace the matching sections of the file.
using System;
using System.Linq;
using System.Net;
using System.Xml;
using System.Xml.Linq;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Modules
{
    public static class MirrorModuleBuilder
    {
        public static InstallModuleRequest Build(AddMirrorModuleRequest r, ClusterConfig cluster)
        {
            var source = r.UserConfigSource ?? $"{r.Name}/userconfig.xml";
            XDocument doc;
            if (r.UserConfigXml != null)
            {
                // The admin's own file is checked as written first, so its errors name its own lines.
                var parsed = UserConfigFile.Parse(r.UserConfigXml, source);
                if (parsed.Mode != ModuleMode.Mirror)
                    throw new ConfigurationException(source, 1, 1, $"Add-SKMirrorModule needs <service mode=\"mirror\">, not \"{parsed.Mode.ToString().ToLowerInvariant()}\".");
                doc = XDocument.Parse(r.UserConfigXml);
            }
            else
            {
                doc = new XDocument(new XElement("service", new XAttribute("mode", "mirror")));
            }
            var service = doc.Root!;

            if (r.Nodes.Count > 0)
            {
                if (r.Nodes.Count != 2)
                    throw new SKApiException(ErrorIds.InvalidArgument, $"A mirror module has exactly 2 nodes; {r.Nodes.Count} were given.", r.Name);
                Replace(service, new XElement("nodes", r.Nodes.Select(n => new XElement("node", new XAttribute("name", n)))));
            }
            if (r.VirtualIP != null)
            {
                var (address, prefix) = ParseVip(r.VirtualIP, r.Name);
                var iface = new XElement("interface", new XAttribute("check", "on"),
                    new XElement("real_interface", new XElement("virtual_addr",
                        new XAttribute("addr", $"{address}/{prefix}"), new XAttribute("where", "one_side_alias"), new XAttribute("check", "on"))));
                if (r.Interface != null) iface.AddFirst(new XAttribute("name", r.Interface));
                Replace(service, new XElement("vip", new XElement("interface_list", iface)));
            }
            if (r.ReplicatedDirectories.Count > 0)
                Replace(service, new XElement("rfs", r.ReplicatedDirectories.Select(d => new XElement("replicated", new XAttribute("dir", d)))));
            if (r.Witnesses.Count > 0)
            {
                foreach (var w in r.Witnesses)
                    if (!IPAddress.TryParse(w, out _))
                        throw new SKApiException(ErrorIds.InvalidArgument, $"Witness '{w}' is not an IP address.", r.Name);
                var check = service.Element("check") ?? AddSection(service, new XElement("check"));
                check.Elements("splitbrain").Remove();
                check.Add(new XElement("splitbrain", new XAttribute("ident", "witness"), new XAttribute("exec", "ping"), new XAttribute("arg", string.Join(" ", r.Witnesses))));
            }
            return new InstallModuleRequest
            {
                Name = r.Name,
                UserConfigXml = doc.ToString(SaveOptions.None),
                Scripts = r.Scripts,
                InitialPrimary = r.InitialPrimary ?? (r.Nodes.Count > 0 ? r.Nodes[0] : null),
            };
        }

        public static (IPAddress, int) ParseVip(string text, string module)
        {
            var parts = text.Split('/');
            if (parts.Length is < 1 or > 2 || !IPAddress.TryParse(parts[0], out var address))
                throw new SKApiException(ErrorIds.InvalidArgument, $"Virtual IP '{text}' is not address/prefix (for example 198.18.0.50/24).", module);
            int max = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
            int prefix = max;
            if (parts.Length == 2 && (!int.TryParse(parts[1], out prefix) || prefix < 1 || prefix > max))
                throw new SKApiException(ErrorIds.InvalidArgument, $"Virtual IP '{text}': the prefix must be 1..{max}.", module);
            return (address, prefix);
        }

        private static void Replace(XElement service, XElement section)
        {
            var existing = service.Element(section.Name);
            if (existing != null) existing.ReplaceWith(section);
            else AddSection(service, section);
        }

        private static XElement AddSection(XElement service, XElement section)
        {
            service.Add(section);
            return section;
        }
    }
}
