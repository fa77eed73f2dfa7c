// Add-SKFarmModule: turns its parameters (and an optional userconfig.xml to start from) into the
// module's userconfig.xml. Parameters replace the matching sections of the file.
using System.Linq;
using System.Xml.Linq;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Modules
{
    public static class FarmModuleBuilder
    {
        public static InstallModuleRequest Build(AddFarmModuleRequest r)
        {
            var source = r.UserConfigSource ?? $"{r.Name}/userconfig.xml";
            XDocument doc;
            if (r.UserConfigXml != null)
            {
                var parsed = UserConfigFile.Parse(r.UserConfigXml, source);
                if (parsed.Mode != ModuleMode.Farm)
                    throw new ConfigurationException(source, 1, 1, $"Add-SKFarmModule needs <service mode=\"farm\">, not \"{parsed.Mode.ToString().ToLowerInvariant()}\".");
                doc = XDocument.Parse(r.UserConfigXml);
            }
            else
            {
                doc = new XDocument(new XElement("service", new XAttribute("mode", "farm")));
            }
            var service = doc.Root!;
            if (r.Nodes.Count > 0)
                Replace(service, new XElement("nodes", r.Nodes.Select(n => new XElement("node", new XAttribute("name", n)))));
            if (r.VirtualIP != null)
            {
                var (address, prefix) = MirrorModuleBuilder.ParseVip(r.VirtualIP, r.Name);
                var iface = new XElement("interface", new XAttribute("check", "on"),
                    new XElement("virtual_interface", new XAttribute("type", "multicast_mac"),
                        new XElement("virtual_addr", new XAttribute("addr", $"{address}/{prefix}"), new XAttribute("where", "alias"))));
                if (r.Interface != null) iface.AddFirst(new XAttribute("name", r.Interface));
                var nodes = r.Nodes.Count > 0 ? r.Nodes : UserConfigFile.Parse(doc.ToString(), source).Nodes;
                var group = new XElement("group", new XAttribute("name", r.Name),
                    new XElement("cluster", nodes.Select(n => new XElement("host", new XAttribute("name", n),
                        new XAttribute("power", r.Power.TryGetValue(n, out var p) ? p : 1)))),
                    (r.Ports.Count > 0 ? r.Ports.Select(port => (object)port) : ["*"]).Select(port =>
                        new XElement("rule", new XAttribute("port", port), new XAttribute("proto", r.Protocol), new XAttribute("filter", r.Rule))));
                Replace(service, new XElement("vip", new XElement("interface_list", iface), new XElement("loadbalancing_list", group)));
            }
            return new InstallModuleRequest { Name = r.Name, UserConfigXml = doc.ToString(), Scripts = r.Scripts };
        }

        private static void Replace(XElement service, XElement section)
        {
            var existing = service.Element(section.Name);
            if (existing != null) existing.ReplaceWith(section);
            else service.Add(section);
        }
    }
}
