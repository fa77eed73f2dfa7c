// Reads userconfig.xml into the model: known tags and attributes only, typed values, defaults that
// depend on the mode. Rules between values and against cluster.xml are UserConfigValidator's.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Xml.Linq;

namespace ServiceKeeper.Engine.Configuration
{
    internal sealed class UserConfigReader
    {
        private static readonly string[] Sections = { "nodes", "heart", "farm", "vip", "rfs", "user", "errd", "check", "failover" };
        private static readonly string[] Checkers = { "tcp", "ping", "intf", "ip", "custom", "module", "splitbrain" };

        private readonly string file;
        private readonly SourceMap map;
        private ModuleMode mode;

        private UserConfigReader(string file, SourceMap map)
        {
            this.file = file;
            this.map = map;
        }

        public static UserConfig Read(XDocument document, string file, SourceMap map)
        {
            var root = document.Root!;
            if (root.Name != "service")
                throw ConfigXml.Error(file, root, $"the root element is <{root.Name.LocalName}>; userconfig.xml starts with <service>.");
            var macros = MacroExpander.Expand(root, file, map);
            var config = new UserConfigReader(file, map).ReadService(root);
            foreach (var (name, value) in macros)
                config.Macros[name] = value;
            return config;
        }

        private ConfigElement Open(XElement element, object? target, params string[] attributes) =>
            new(element, file, map, target, attributes);

        private UserConfig ReadService(XElement root)
        {
            var config = new UserConfig();
            var e = Open(root, config, "mode", "defaultprim", "failover", "maxloop", "loop_interval", "boot");
            config.Mode = mode = e.RequiredEnum("mode", UserConfigNames.Modes);
            var defaultPrimary = e.Text("defaultprim")?.Trim();
            if (defaultPrimary == null || defaultPrimary == UserConfigNames.Alone)
                config.DefaultPrimary = DefaultPrimaryPolicy.Alone;
            else if (defaultPrimary == UserConfigNames.LastPrimary)
                config.DefaultPrimary = DefaultPrimaryPolicy.LastPrimary;
            else
            {
                config.DefaultPrimary = DefaultPrimaryPolicy.Node;
                config.DefaultPrimaryNode = defaultPrimary;
            }
            config.Failover = e.OnOff("failover", true);
            config.MaxLoop = e.Integer("maxloop", UserConfig.DefaultMaxLoop);
            config.LoopInterval = e.Time("loop_interval", UserConfig.DefaultLoopInterval);
            config.Boot = e.OnOff("boot", true);

            var children = e.Children(Sections);
            foreach (var section in Sections)
                e.AtMostOne(children, section);
            foreach (var child in children)
            {
                switch (child.Name.LocalName)
                {
                    case "nodes": ReadNames(Open(child, config.Nodes), config.Nodes, "node", "name"); break;
                    case "heart": config.Heart = ReadHeart(child); break;
                    case "farm": config.Farm = ReadFarm(child); break;
                    case "vip": ReadVip(child, config.Vip); break;
                    case "rfs": config.Rfs = ReadRfs(child); break;
                    case "user": config.User = ReadUser(child); break;
                    case "errd": config.Errd = ReadErrd(child); break;
                    case "check": ReadChecks(child, config.Checks); break;
                    case "failover": config.FailoverRules = ReadFailoverRules(child, config); break;
                }
            }
            // The heartbeat section of the module's own mode is never optional: its absence means defaults.
            if (mode == ModuleMode.Mirror)
                config.Heart ??= new HeartConfig();
            else
                config.Farm ??= new FarmConfig();
            return config;
        }

        /// <summary>Lists of single-attribute children (node names, lan names, paths); each entry's place is
        /// recorded as "[index]" against the list.</summary>
        private void ReadNames(ConfigElement parent, List<string> list, string childName, string attribute, IEnumerable<XElement>? only = null)
        {
            map.Record(list, SourceMap.Element, parent.Element);
            foreach (var child in only ?? parent.Children(childName))
            {
                var e = Open(child, null, attribute);
                e.Children();
                list.Add(e.Required(attribute));
                map.Record(list, $"[{list.Count - 1}]", child);
            }
        }

        private HeartConfig ReadHeart(XElement x)
        {
            var heart = new HeartConfig();
            var e = Open(x, heart, "pulse", "timeout", "port");
            heart.Pulse = e.Time("pulse", HeartConfig.DefaultPulse);
            heart.Timeout = e.Time("timeout", HeartConfig.DefaultTimeout);
            heart.Port = e.OptionalInteger("port");
            ReadNames(e, heart.Heartbeats, "heartbeat", "name");
            return heart;
        }

        private FarmConfig ReadFarm(XElement x)
        {
            var farm = new FarmConfig();
            var e = Open(x, farm, "pulse", "mlost_count", "slost_count", "port");
            farm.Pulse = e.Time("pulse", FarmConfig.DefaultPulse);
            farm.MasterLostCount = e.Integer("mlost_count", FarmConfig.DefaultMasterLostCount);
            farm.SlaveLostCount = e.Integer("slost_count", FarmConfig.DefaultSlaveLostCount);
            farm.Port = e.OptionalInteger("port");
            ReadNames(e, farm.Lans, "lan", "name");
            return farm;
        }

        private void ReadVip(XElement x, VipConfig vip)
        {
            var e = Open(x, vip);
            var children = e.Children("interface_list", "loadbalancing_list");
            if (e.AtMostOne(children, "interface_list") is { } interfaces)
            {
                foreach (var child in Open(interfaces, vip.Interfaces).Children("interface"))
                    vip.Interfaces.Add(ReadInterface(child));
            }
            if (e.AtMostOne(children, "loadbalancing_list") is { } groups)
            {
                foreach (var child in Open(groups, vip.LoadBalancing).Children("group"))
                    vip.LoadBalancing.Add(ReadGroup(child));
            }
        }

        private VipInterfaceConfig ReadInterface(XElement x)
        {
            var nic = new VipInterfaceConfig();
            var e = Open(x, nic, "name", "check");
            nic.Name = e.Text("name")?.Trim();
            nic.Check = e.OnOff("check", true);
            var children = e.Children("real_interface", "virtual_interface");
            if (children.Count == 0)
                throw e.Error("<interface> needs a <real_interface> (mirror) or a <virtual_interface> (farm) holding its <virtual_addr> elements.");
            var kinds = children.Select(c => c.Name.LocalName).Distinct().ToList();
            if (kinds.Count > 1)
                throw e.ErrorAt(children.First(c => c.Name.LocalName == kinds[1]), "an <interface> holds either <real_interface> (mirror) or <virtual_interface> (farm), not both.");
            foreach (var child in children)
            {
                ConfigElement holder;
                if (child.Name.LocalName == "real_interface")
                {
                    holder = Open(child, null);
                    nic.Kind = VipInterfaceKind.Real;
                }
                else
                {
                    holder = Open(child, null, "type");
                    nic.Kind = VipInterfaceKind.Virtual;
                    nic.VirtualType = holder.Enum("type", nic.VirtualType, UserConfigNames.VirtualTypes);
                }
                map.Record(nic, "kind", child);
                foreach (var address in holder.Children("virtual_addr"))
                    nic.Addresses.Add(ReadVirtualAddress(address));
            }
            return nic;
        }

        private VirtualAddressConfig ReadVirtualAddress(XElement x)
        {
            var vip = new VirtualAddressConfig { Where = mode == ModuleMode.Farm ? VipWhere.Alias : VipWhere.OneSideAlias };
            var e = Open(x, vip, "addr", "where", "check");
            e.Children();
            var text = e.Required("addr");
            if (!ConfigSyntax.TryParseIpWithPrefix(text, out var address, out var prefix))
                throw e.ErrorAt("addr", $"virtual address '{text}' is not an IP address or IP/prefix (198.18.0.100 or 198.18.0.100/24).");
            vip.Address = address;
            vip.PrefixLength = prefix;
            vip.Where = e.Enum("where", vip.Where, UserConfigNames.Where);
            vip.Check = e.OnOff("check", true);
            return vip;
        }

        private LoadBalancingGroup ReadGroup(XElement x)
        {
            var group = new LoadBalancingGroup();
            var e = Open(x, group, "name");
            group.Name = e.Required("name");
            var children = e.Children("cluster", "rule");
            if (e.AtMostOne(children, "cluster") is { } cluster)
            {
                foreach (var child in Open(cluster, group.Hosts).Children("host"))
                {
                    var host = new LoadBalancingHost();
                    var h = Open(child, host, "name", "power");
                    h.Children();
                    host.Name = h.Required("name");
                    host.Power = h.Integer("power", LoadBalancingHost.DefaultPower);
                    group.Hosts.Add(host);
                }
            }
            foreach (var child in children.Where(c => c.Name.LocalName == "rule"))
            {
                var rule = new LoadBalancingRule();
                var r = Open(child, rule, "virtual_addr", "port", "proto", "filter");
                r.Children();
                var address = r.Text("virtual_addr")?.Trim();
                if (address != null && address != "*")
                {
                    if (!ConfigSyntax.TryParseIp(address, out var ip))
                        throw r.ErrorAt("virtual_addr", $"'virtual_addr' of <rule> is '{address}'; expected one of the module's VIPs or '*'.");
                    rule.VirtualAddress = ip;
                }
                rule.Port = r.OptionalInteger("port", "*");
                rule.Protocol = r.Enum("proto", rule.Protocol, UserConfigNames.Protocols);
                rule.Filter = r.Enum("filter", rule.Filter, UserConfigNames.Filters);
                group.Rules.Add(rule);
            }
            return group;
        }

        private RfsConfig ReadRfs(XElement x)
        {
            var rfs = new RfsConfig();
            var e = Open(x, rfs, "async", "locktimeout", "sendtimeout", "port");
            rfs.Async = e.Enum("async", rfs.Async, UserConfigNames.Async);
            rfs.LockTimeout = e.Time("locktimeout", RfsConfig.DefaultLockTimeout);
            rfs.SendTimeout = e.Time("sendtimeout", RfsConfig.DefaultSendTimeout);
            rfs.Port = e.OptionalInteger("port");
            map.Record(rfs.Directories, SourceMap.Element, x);
            foreach (var child in e.Children("replicated"))
            {
                var directory = new ReplicatedDirectory();
                var d = Open(child, directory, "dir");
                directory.Path = d.Required("dir");
                var entries = d.Children("notreplicated", "tocheck");
                ReadNames(d, directory.NotReplicated, "notreplicated", "path", entries.Where(c => c.Name.LocalName == "notreplicated"));
                ReadNames(d, directory.ToCheck, "tocheck", "path", entries.Where(c => c.Name.LocalName == "tocheck"));
                rfs.Directories.Add(directory);
            }
            return rfs;
        }

        private UserScriptsConfig ReadUser(XElement x)
        {
            var user = new UserScriptsConfig();
            var e = Open(x, user, "nicestoptimeout", "forcestoptimeout");
            user.NiceStopTimeout = e.Time("nicestoptimeout", UserScriptsConfig.DefaultNiceStopTimeout);
            user.ForceStopTimeout = e.Time("forcestoptimeout", UserScriptsConfig.DefaultForceStopTimeout);
            foreach (var child in e.Children("var"))
            {
                var variable = new UserVariable();
                var v = Open(child, variable, "name", "value");
                v.Children();
                variable.Name = v.Required("name");
                variable.Value = v.Text("value") ?? "";
                user.Variables.Add(variable);
            }
            return user;
        }

        private ErrdConfig ReadErrd(XElement x)
        {
            var errd = new ErrdConfig();
            var e = Open(x, errd, "polltimer");
            errd.PollTimer = e.Time("polltimer", ErrdConfig.DefaultPollTimer);
            foreach (var child in e.Children("proc"))
            {
                var process = new ProcessMonitorConfig { Class = mode == ModuleMode.Farm ? ProcessClass.Both : ProcessClass.Prim };
                var p = Open(child, process, "name", "regex", "argregex", "atleast", "atmax", "action", "class");
                p.Children();
                process.Name = p.Required("name");
                process.IsRegex = p.OnOff("regex", false);
                process.ArgumentsRegex = p.Text("argregex");
                process.AtLeast = p.Integer("atleast", process.AtLeast);
                process.AtMost = p.OptionalInteger("atmax", "none");
                process.Action = p.Enum("action", process.Action, UserConfigNames.ErrdActions);
                process.Class = p.Enum("class", process.Class, UserConfigNames.ProcessClasses);
                errd.Processes.Add(process);
            }
            return errd;
        }

        private void ReadChecks(XElement x, List<CheckerConfig> checks)
        {
            var e = Open(x, checks);
            foreach (var child in e.Children(Checkers))
            {
                checks.Add(child.Name.LocalName switch
                {
                    "tcp" => ReadTcp(child),
                    "ping" => ReadPing(child),
                    "intf" => ReadInterfaceCheck(child),
                    "ip" => ReadIpCheck(child),
                    "custom" => ReadCustom(child),
                    "module" => ReadModuleCheck(child),
                    "splitbrain" => ReadSplitBrain(child),
                    _ => throw new InvalidOperationException("unreachable: Children() allows only checker names"),
                });
            }
        }

        private CheckerConfig ReadTcp(XElement x)
        {
            var check = new TcpCheckConfig();
            var e = ReadCommon(x, check);
            var to = ReadTo(e, check, required: true, "addr", "port")!;
            check.Address = to.Required("addr");
            check.Port = to.RequiredInteger("port");
            return check;
        }

        private CheckerConfig ReadPing(XElement x)
        {
            var check = new PingCheckConfig();
            var e = ReadCommon(x, check);
            check.Address = ReadTo(e, check, required: true, "addr")!.Required("addr");
            return check;
        }

        private CheckerConfig ReadInterfaceCheck(XElement x)
        {
            var check = new InterfaceCheckConfig();
            var e = ReadCommon(x, check);
            check.LocalAddress = ReadTo(e, check, required: true, "local_addr")!.RequiredIp("local_addr");
            return check;
        }

        private CheckerConfig ReadIpCheck(XElement x)
        {
            var check = new IpCheckConfig();
            var e = ReadCommon(x, check);
            check.Address = ReadTo(e, check, required: true, "addr")!.RequiredIp("addr");
            return check;
        }

        private CheckerConfig ReadCustom(XElement x)
        {
            var check = new CustomCheckConfig();
            var e = ReadCommon(x, check, "exec", "arg");
            e.Children();
            check.Exec = e.Required("exec");
            check.Arguments = e.Text("arg") ?? "";
            return check;
        }

        private CheckerConfig ReadModuleCheck(XElement x)
        {
            var check = new ModuleCheckConfig();
            var e = Open(x, check, "name", "when", "action");
            check.ModuleName = e.Required("name");
            ReadWhenAndAction(e, check);
            if (ReadTo(e, check, required: false, "addr", "port") is { } to)
            {
                check.Address = to.Text("addr")?.Trim();
                check.Port = to.OptionalInteger("port");
            }
            return check;
        }

        private CheckerConfig ReadSplitBrain(XElement x)
        {
            var check = new SplitBrainCheckConfig();
            var e = Open(x, check, "ident", "exec", "arg", "action");
            e.Children();
            check.Ident = e.Required("ident");
            check.Exec = e.Text("exec")?.Trim() ?? SplitBrainCheckConfig.PingExec;
            check.Arguments = e.Text("arg") ?? "";
            check.Action = e.Enum("action", check.Action, UserConfigNames.CheckActions);
            return check;
        }

        private ConfigElement ReadCommon(XElement x, CheckerConfig check, params string[] more)
        {
            var e = Open(x, check, new[] { "ident", "when", "action" }.Concat(more).ToArray());
            check.Ident = e.Required("ident");
            ReadWhenAndAction(e, check);
            return e;
        }

        private void ReadWhenAndAction(ConfigElement e, CheckerConfig check)
        {
            check.When = e.Enum("when", mode == ModuleMode.Farm ? CheckWhen.Both : check.When, UserConfigNames.When);
            check.Action = e.Enum("action", check.Action, UserConfigNames.CheckActions);
        }

        /// <summary>The one &lt;to&gt; child: the probe target and its timing.</summary>
        private ConfigElement? ReadTo(ConfigElement e, PeriodicCheckerConfig check, bool required, params string[] attributes)
        {
            var to = e.AtMostOne(e.Children("to"), "to");
            if (to == null)
            {
                if (required)
                    throw e.Error($"<{e.Name}> needs a <to {string.Join(" ", attributes.Select(a => a + "=\"...\""))}/> child.");
                return null;
            }
            var t = Open(to, check, attributes.Concat(new[] { "interval", "timeout" }).ToArray());
            t.Children();
            check.Interval = t.Time("interval", check.Interval);
            check.Timeout = t.Time("timeout", check.Timeout);
            return t;
        }

        private string ReadFailoverRules(XElement x, UserConfig config)
        {
            var e = Open(x, null);
            map.Record(config, "failover-rules", x);
            if (x.Elements().FirstOrDefault() is { } child)
                throw e.ErrorAt(child, $"unexpected element <{child.Name.LocalName}> in <failover>: it holds rules as text, best in a CDATA section.");
            return string.Concat(x.Nodes().OfType<XText>().Select(t => t.Value));
        }
    }
}
