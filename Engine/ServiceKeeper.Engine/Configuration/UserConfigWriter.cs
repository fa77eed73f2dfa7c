// Writes a UserConfig as userconfig.xml with every value explicit (defaults included, macros already
// applied), so the file says exactly what the engine runs.
using System.Globalization;
using System.Linq;
using System.Xml.Linq;

namespace ServiceKeeper.Engine.Configuration
{
    internal static class UserConfigWriter
    {
        public static string Write(UserConfig config)
        {
            var root = new XElement("service",
                new XAttribute("mode", UserConfigNames.Modes.ToText(config.Mode)));
            if (config.Mode == ModuleMode.Mirror)
            {
                root.Add(new XAttribute("defaultprim", config.DefaultPrimary switch
                {
                    DefaultPrimaryPolicy.LastPrimary => UserConfigNames.LastPrimary,
                    DefaultPrimaryPolicy.Node => config.DefaultPrimaryNode ?? "",
                    _ => UserConfigNames.Alone,
                }));
                root.Add(new XAttribute("failover", UserConfigNames.OnOff(config.Failover)));
            }
            root.Add(
                new XAttribute("maxloop", Number(config.MaxLoop)),
                new XAttribute("loop_interval", TimeValue.Format(config.LoopInterval)),
                new XAttribute("boot", UserConfigNames.OnOff(config.Boot)));

            if (config.Nodes.Count > 0)
                root.Add(new XElement("nodes", config.Nodes.Select(n => new XElement("node", new XAttribute("name", n)))));
            if (config.Heart is { } heart)
            {
                root.Add(new XElement("heart",
                    new XAttribute("pulse", TimeValue.Format(heart.Pulse)),
                    new XAttribute("timeout", TimeValue.Format(heart.Timeout)),
                    Optional("port", heart.Port),
                    heart.Heartbeats.Select(h => new XElement("heartbeat", new XAttribute("name", h)))));
            }
            if (config.Farm is { } farm)
            {
                root.Add(new XElement("farm",
                    new XAttribute("pulse", TimeValue.Format(farm.Pulse)),
                    new XAttribute("mlost_count", Number(farm.MasterLostCount)),
                    new XAttribute("slost_count", Number(farm.SlaveLostCount)),
                    Optional("port", farm.Port),
                    farm.Lans.Select(l => new XElement("lan", new XAttribute("name", l)))));
            }
            if (config.Vip.Interfaces.Count > 0 || config.Vip.LoadBalancing.Count > 0)
                root.Add(Vip(config.Vip));
            if (config.Rfs is { } rfs)
                root.Add(Rfs(rfs));
            root.Add(new XElement("user",
                new XAttribute("nicestoptimeout", TimeValue.Format(config.User.NiceStopTimeout)),
                new XAttribute("forcestoptimeout", TimeValue.Format(config.User.ForceStopTimeout)),
                config.User.Variables.Select(v => new XElement("var", new XAttribute("name", v.Name), new XAttribute("value", v.Value)))));
            root.Add(new XElement("errd",
                new XAttribute("polltimer", TimeValue.Format(config.Errd.PollTimer)),
                config.Errd.Processes.Select(Process)));
            if (config.Checks.Count > 0)
                root.Add(new XElement("check", config.Checks.Select(Checker)));
            if (config.FailoverRules != null)
            {
                // "]]>" cannot sit inside a CDATA section; plain text escapes it instead.
                root.Add(new XElement("failover", config.FailoverRules.Contains("]]>")
                    ? new XText(config.FailoverRules)
                    : new XCData(config.FailoverRules)));
            }
            EscapePercents(root);
            return ConfigXml.Write(root);
        }

        /// <summary>Values are written after macro expansion; a '%' in them must not read as a macro again.</summary>
        private static void EscapePercents(XElement root)
        {
            foreach (var element in root.DescendantsAndSelf())
            {
                foreach (var attribute in element.Attributes())
                    attribute.Value = attribute.Value.Replace("%", "%%");
                foreach (var text in element.Nodes().OfType<XText>())
                    text.Value = text.Value.Replace("%", "%%");
            }
        }

        private static XElement Vip(VipConfig vip)
        {
            var element = new XElement("vip");
            if (vip.Interfaces.Count > 0)
            {
                element.Add(new XElement("interface_list", vip.Interfaces.Select(nic => new XElement("interface",
                    nic.Name == null ? null : new XAttribute("name", nic.Name),
                    new XAttribute("check", UserConfigNames.OnOff(nic.Check)),
                    nic.Kind == VipInterfaceKind.Real
                        ? new XElement("real_interface", nic.Addresses.Select(VirtualAddress))
                        : new XElement("virtual_interface",
                            new XAttribute("type", UserConfigNames.VirtualTypes.ToText(nic.VirtualType)),
                            nic.Addresses.Select(VirtualAddress))))));
            }
            if (vip.LoadBalancing.Count > 0)
            {
                element.Add(new XElement("loadbalancing_list", vip.LoadBalancing.Select(group => new XElement("group",
                    new XAttribute("name", group.Name),
                    new XElement("cluster", group.Hosts.Select(h => new XElement("host",
                        new XAttribute("name", h.Name), new XAttribute("power", Number(h.Power))))),
                    group.Rules.Select(rule => new XElement("rule",
                        new XAttribute("virtual_addr", rule.VirtualAddress?.ToString() ?? "*"),
                        new XAttribute("port", rule.Port == null ? "*" : Number(rule.Port.Value)),
                        new XAttribute("proto", UserConfigNames.Protocols.ToText(rule.Protocol)),
                        new XAttribute("filter", UserConfigNames.Filters.ToText(rule.Filter))))))));
            }
            return element;
        }

        private static XElement VirtualAddress(VirtualAddressConfig vip) => new("virtual_addr",
            new XAttribute("addr", vip.ToString()),
            new XAttribute("where", UserConfigNames.Where.ToText(vip.Where)),
            new XAttribute("check", UserConfigNames.OnOff(vip.Check)));

        private static XElement Rfs(RfsConfig rfs) => new("rfs",
            new XAttribute("async", UserConfigNames.Async.ToText(rfs.Async)),
            new XAttribute("locktimeout", TimeValue.Format(rfs.LockTimeout)),
            new XAttribute("sendtimeout", TimeValue.Format(rfs.SendTimeout)),
            Optional("port", rfs.Port),
            rfs.Directories.Select(d => new XElement("replicated",
                new XAttribute("dir", d.Path),
                d.NotReplicated.Select(p => new XElement("notreplicated", new XAttribute("path", p))),
                d.ToCheck.Select(p => new XElement("tocheck", new XAttribute("path", p))))));

        private static XElement Process(ProcessMonitorConfig p) => new("proc",
            new XAttribute("name", p.Name),
            p.IsRegex ? new XAttribute("regex", "on") : null,
            p.ArgumentsRegex == null ? null : new XAttribute("argregex", p.ArgumentsRegex),
            new XAttribute("atleast", Number(p.AtLeast)),
            new XAttribute("atmax", p.AtMost == null ? "none" : Number(p.AtMost.Value)),
            new XAttribute("action", UserConfigNames.ErrdActions.ToText(p.Action)),
            new XAttribute("class", UserConfigNames.ProcessClasses.ToText(p.Class)));

        private static XElement Checker(CheckerConfig check)
        {
            var element = new XElement(check.Kind);
            if (check is ModuleCheckConfig module)
                element.Add(new XAttribute("name", module.ModuleName));
            else
                element.Add(new XAttribute("ident", check.Ident));
            if (check is not SplitBrainCheckConfig)
                element.Add(new XAttribute("when", UserConfigNames.When.ToText(check.When)));
            element.Add(new XAttribute("action", UserConfigNames.CheckActions.ToText(check.Action)));
            switch (check)
            {
                case TcpCheckConfig tcp:
                    element.Add(To(tcp, new XAttribute("addr", tcp.Address), new XAttribute("port", Number(tcp.Port))));
                    break;
                case PingCheckConfig ping:
                    element.Add(To(ping, new XAttribute("addr", ping.Address)));
                    break;
                case InterfaceCheckConfig intf:
                    element.Add(To(intf, new XAttribute("local_addr", intf.LocalAddress.ToString())));
                    break;
                case IpCheckConfig ip:
                    element.Add(To(ip, new XAttribute("addr", ip.Address.ToString())));
                    break;
                case ModuleCheckConfig m:
                    element.Add(To(m, m.Address == null ? null : new XAttribute("addr", m.Address), Optional("port", m.Port)));
                    break;
                case CustomCheckConfig custom:
                    element.Add(new XAttribute("exec", custom.Exec), new XAttribute("arg", custom.Arguments));
                    break;
                case SplitBrainCheckConfig split:
                    element.Add(new XAttribute("exec", split.Exec), new XAttribute("arg", split.Arguments));
                    break;
            }
            return element;
        }

        private static XElement To(PeriodicCheckerConfig check, params XAttribute?[] target) => new("to",
            target,
            new XAttribute("interval", TimeValue.Format(check.Interval)),
            new XAttribute("timeout", TimeValue.Format(check.Timeout)));

        private static XAttribute? Optional(string name, int? value) => value == null ? null : new XAttribute(name, Number(value.Value));

        private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);
    }
}
