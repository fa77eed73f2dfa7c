// The rules a userconfig.xml must follow once read: ranges, sections that belong to the other mode,
// duplicates, and references to cluster.xml (nodes, lans). It also fills what only the cluster can
// decide: the module's nodes and its heartbeat lans when the file leaves them out.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace ServiceKeeper.Engine.Configuration
{
    internal sealed class UserConfigValidator
    {
        private readonly UserConfig config;
        private readonly ClusterConfig? cluster;
        private readonly string file;
        private readonly SourceMap map;

        private UserConfigValidator(UserConfig config, ClusterConfig? cluster, string file, SourceMap map)
        {
            this.config = config;
            this.cluster = cluster;
            this.file = file;
            this.map = map;
        }

        private bool IsMirror => config.Mode == ModuleMode.Mirror;

        public static void Validate(UserConfig config, ClusterConfig? cluster, string file, SourceMap map) =>
            new UserConfigValidator(config, cluster, file, map).Run();

        private void Run()
        {
            CheckService();
            ResolveNodes();
            CheckNodes();
            CheckDefaultPrimary();
            CheckHeartbeats();
            CheckVip();
            CheckRfs();
            CheckUser();
            CheckErrd();
            CheckCheckers();
        }

        private void CheckService()
        {
            if (!Enum.IsDefined(config.Mode))
                throw Fail(config, "mode", $"mode {(int)config.Mode} is not mirror or farm.");
            if (config.MaxLoop < 0)
                throw Fail(config, "maxloop", $"maxloop is {config.MaxLoop}; it counts restarts and cannot be negative.");
            RequirePositive(config, "loop_interval", config.LoopInterval);
            if (!IsMirror && config.DefaultPrimary != DefaultPrimaryPolicy.Alone)
                throw Fail(config, "defaultprim", "defaultprim is for mirror modules: a farm has no primary.");
            if (!IsMirror && !config.Failover)
                throw Fail(config, "failover", "failover=\"off\" is for mirror modules: farm nodes serve side by side, nobody takes over.");
        }

        /// <summary>The file may leave the nodes out when the cluster or the load balancing says which they are.</summary>
        private void ResolveNodes()
        {
            if (config.Nodes.Count > 0)
                return;
            if (IsMirror)
            {
                if (cluster == null)
                    return;
                if (cluster.Nodes.Count != 2)
                    throw Fail(config, SourceMap.Element,
                        $"a mirror module runs on 2 nodes and cluster '{cluster.Name}' has {cluster.Nodes.Count} ({NodeList()}): name them in <nodes><node name=\"...\"/><node name=\"...\"/></nodes>.");
                config.Nodes.AddRange(cluster.Nodes.Select(n => n.Name));
                return;
            }
            var hosts = config.Vip.LoadBalancing.SelectMany(g => g.Hosts).Select(h => h.Name).Distinct(StringComparer.Ordinal).ToList();
            if (hosts.Count > 0)
                config.Nodes.AddRange(hosts);
            else if (cluster != null)
                config.Nodes.AddRange(cluster.Nodes.Select(n => n.Name));
        }

        private void CheckNodes()
        {
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            for (int i = 0; i < config.Nodes.Count; i++)
            {
                var node = config.Nodes[i];
                if (!ConfigSyntax.IsName(node))
                    throw Fail(config.Nodes, $"[{i}]", $"node name '{node}' is not valid: {ConfigSyntax.NameRule}.");
                if (!seen.Add(node))
                    throw Fail(config.Nodes, $"[{i}]", $"node '{node}' is listed twice.");
                if (cluster != null && cluster.FindNode(node) == null)
                    throw Fail(config.Nodes, $"[{i}]", $"node '{node}' is not a node of cluster '{cluster.Name}' ({NodeList()}).");
            }
            if (config.Nodes.Count == 0)
            {
                // Parsed without a cluster: the nodes will be resolved when the cluster is known.
                if (cluster != null)
                    throw Fail(config.Nodes, SourceMap.Element, "<nodes> is empty: a module runs on at least one node.");
                return;
            }
            if (IsMirror && config.Nodes.Count != 2)
                throw Fail(config.Nodes, SourceMap.Element, $"a mirror module runs on exactly 2 nodes; <nodes> lists {config.Nodes.Count} ({string.Join(", ", config.Nodes)}).");
        }

        private void CheckDefaultPrimary()
        {
            if (config.DefaultPrimary != DefaultPrimaryPolicy.Node)
                return;
            var node = config.DefaultPrimaryNode;
            if (string.IsNullOrEmpty(node) || !ConfigSyntax.IsName(node))
                throw Fail(config, "defaultprim", $"defaultprim '{node}' is not alone, lastprim or a node name.");
            if (config.Nodes.Count > 0 && !config.Nodes.Contains(node))
                throw Fail(config, "defaultprim", $"defaultprim '{node}' is not alone, lastprim or one of the module's nodes ({string.Join(", ", config.Nodes)}).");
        }

        private void CheckHeartbeats()
        {
            if (IsMirror)
            {
                if (config.Farm != null)
                    throw Fail(config.Farm, SourceMap.Element, "<farm> is for farm modules; a mirror module has <heart pulse timeout><heartbeat name=\"LAN\"/></heart>.");
                var heart = config.Heart ??= new HeartConfig();
                RequirePositive(heart, "pulse", heart.Pulse);
                // One lost datagram must not be a failover.
                if (heart.Timeout < heart.Pulse * 2)
                    throw Fail(heart, "timeout", $"heart timeout {TimeValue.Format(heart.Timeout)} is shorter than twice the pulse {TimeValue.Format(heart.Pulse)}: a single lost heartbeat would fail the module over.");
                CheckPulse(heart, heart.Pulse);
                CheckHeartbeatPort(heart, heart.Port);
                CheckLanNames(heart.Heartbeats, "heartbeat");
            }
            else
            {
                if (config.Heart != null)
                    throw Fail(config.Heart, SourceMap.Element, "<heart> is for mirror modules; a farm module has <farm pulse mlost_count slost_count><lan name=\"LAN\"/></farm>.");
                var farm = config.Farm ??= new FarmConfig();
                RequirePositive(farm, "pulse", farm.Pulse);
                if (farm.MasterLostCount < 2)
                    throw Fail(farm, "mlost_count", $"mlost_count is {farm.MasterLostCount}; at least 2, or a single lost heartbeat would change the membership.");
                if (farm.SlaveLostCount < 2)
                    throw Fail(farm, "slost_count", $"slost_count is {farm.SlaveLostCount}; at least 2, or a single lost heartbeat would change the membership.");
                CheckPulse(farm, farm.Pulse);
                CheckHeartbeatPort(farm, farm.Port);
                CheckLanNames(farm.Lans, "lan");
            }
        }

        /// <summary>Heartbeat lans: known to the cluster, every module node on each; all shared lans when none is named.</summary>
        private void CheckLanNames(List<string> lans, string element)
        {
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            for (int i = 0; i < lans.Count; i++)
            {
                var name = lans[i];
                if (!ConfigSyntax.IsName(name))
                    throw Fail(lans, $"[{i}]", $"lan name '{name}' is not valid: {ConfigSyntax.NameRule}.");
                if (!seen.Add(name))
                    throw Fail(lans, $"[{i}]", $"<{element} name=\"{name}\"> is listed twice.");
                if (cluster == null)
                    continue;
                var lan = cluster.FindLan(name)
                    ?? throw Fail(lans, $"[{i}]", $"<{element} name=\"{name}\">: '{name}' is not a lan of cluster '{cluster.Name}' ({string.Join(", ", cluster.Lans.Select(l => l.Name))}).");
                foreach (var node in config.Nodes)
                {
                    if (lan.AddressOf(node) == null)
                        throw Fail(lans, $"[{i}]", $"<{element} name=\"{name}\">: node '{node}' has no address on lan '{name}' in cluster.xml.");
                }
            }
            if (lans.Count > 0 || cluster == null || config.Nodes.Count == 0)
                return;
            lans.AddRange(cluster.Lans.Where(l => config.Nodes.All(n => l.AddressOf(n) != null)).Select(l => l.Name));
            if (lans.Count == 0)
                throw Fail(lans, SourceMap.Element, $"no lan of cluster '{cluster.Name}' links all the module's nodes ({string.Join(", ", config.Nodes)}); heartbeats need one.");
        }

        private void CheckVip()
        {
            var vip = config.Vip;
            var seen = new Dictionary<IPAddress, VirtualAddressConfig>();
            foreach (var nic in vip.Interfaces)
            {
                if (IsMirror && nic.Kind != VipInterfaceKind.Real)
                    throw Fail(nic, "kind", "<virtual_interface> is for farm modules; a mirror's VIP is under <real_interface>.");
                if (!IsMirror && nic.Kind != VipInterfaceKind.Virtual)
                    throw Fail(nic, "kind", "<real_interface> is for mirror modules; a farm's VIP is under <virtual_interface>.");
                if (nic.Name != null && (nic.Name.Length == 0 || nic.Name.Any(char.IsControl)))
                    throw Fail(nic, "name", "interface name is empty; leave 'name' out to use the interface on the VIP's subnet.");
                if (nic.Addresses.Count == 0)
                    throw Fail(nic, SourceMap.Element, "<interface> has no <virtual_addr>.");
                foreach (var address in nic.Addresses)
                {
                    CheckVirtualAddress(address);
                    if (seen.ContainsKey(address.Address))
                        throw Fail(address, "addr", $"virtual address {address.Address} is declared twice.");
                    seen[address.Address] = address;
                }
            }
            CheckLoadBalancing(seen);
        }

        private void CheckVirtualAddress(VirtualAddressConfig vip)
        {
            var ip = vip.Address;
            if (ip.Equals(IPAddress.None) || ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any) || IPAddress.IsLoopback(ip)
                || IsMulticast(ip))
                throw Fail(vip, "addr", $"{ip} cannot be a virtual address (unspecified, broadcast, loopback or multicast).");
            if (vip.PrefixLength is { } prefix && (prefix < 1 || prefix > ConfigSyntax.MaxPrefix(ip)))
                throw Fail(vip, "addr", $"prefix /{prefix} of {ip} is outside 1-{ConfigSyntax.MaxPrefix(ip)}.");
            if (IsMirror && vip.Where != VipWhere.OneSideAlias)
                throw Fail(vip, "where", $"where=\"{UserConfigNames.Where.ToText(vip.Where)}\" is for farm modules; a mirror's VIP is where=\"one_side_alias\" (on the primary only).");
            if (!IsMirror && vip.Where != VipWhere.Alias)
                throw Fail(vip, "where", $"where=\"{UserConfigNames.Where.ToText(vip.Where)}\" is for mirror modules; a farm's VIP is where=\"alias\" (on every node).");
            if (cluster == null)
                return;
            foreach (var lan in cluster.Lans)
            {
                foreach (var member in lan.Members)
                {
                    if (ConfigSyntax.TryParseIp(member.Address, out var nodeIp) && nodeIp.Equals(ip))
                        throw Fail(vip, "addr", $"virtual address {ip} is the address of node '{member.Node}' on lan '{lan.Name}'; a VIP must be an unused address.");
                }
            }
        }

        private void CheckLoadBalancing(Dictionary<IPAddress, VirtualAddressConfig> vips)
        {
            var groups = config.Vip.LoadBalancing;
            if (groups.Count == 0)
                return;
            if (IsMirror)
                throw Fail(groups, SourceMap.Element, "<loadbalancing_list> is for farm modules; a mirror serves from its primary only.");
            if (vips.Count == 0)
                throw Fail(groups, SourceMap.Element, "<loadbalancing_list> has no virtual address to share: declare one under <interface_list>.");
            var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var group in groups)
            {
                if (!ConfigSyntax.IsName(group.Name))
                    throw Fail(group, "name", $"group name '{group.Name}' is not valid: {ConfigSyntax.NameRule}.");
                if (!names.Add(group.Name))
                    throw Fail(group, "name", $"group '{group.Name}' is declared twice.");
                // A group without <cluster> shares its traffic among all the module's nodes equally.
                if (group.Hosts.Count == 0)
                    group.Hosts.AddRange(config.Nodes.Select(n => new LoadBalancingHost { Name = n }));
                var hosts = new HashSet<string>(StringComparer.Ordinal);
                foreach (var host in group.Hosts)
                {
                    if (!hosts.Add(host.Name))
                        throw Fail(host, "name", $"group '{group.Name}': host '{host.Name}' is listed twice.");
                    if (config.Nodes.Count > 0 && !config.Nodes.Contains(host.Name))
                        throw Fail(host, "name", $"group '{group.Name}': host '{host.Name}' is not one of the module's nodes ({string.Join(", ", config.Nodes)}).");
                    if (host.Power < 0)
                        throw Fail(host, "power", $"group '{group.Name}': power of host '{host.Name}' is {host.Power}; it must be 0 or more (0 takes no traffic).");
                }
                // Leaving a node out silently would give it no share and nobody would know why.
                foreach (var node in config.Nodes.Where(n => !hosts.Contains(n)))
                    throw Fail(group.Hosts, SourceMap.Element, $"group '{group.Name}': node '{node}' is not a <host>; list it, with power=\"0\" to keep it out of the balancing.");
                if (group.Hosts.Count > 0 && group.Hosts.All(h => h.Power == 0))
                    throw Fail(group, SourceMap.Element, $"group '{group.Name}': every host has power 0, so no node would serve.");
                foreach (var rule in group.Rules)
                {
                    if (rule.VirtualAddress != null && !vips.ContainsKey(rule.VirtualAddress))
                        throw Fail(rule, "virtual_addr", $"rule virtual_addr {rule.VirtualAddress} is not a virtual address of this module ({string.Join(", ", vips.Keys)}).");
                    CheckPort(rule, "port", rule.Port);
                }
            }
        }

        private void CheckRfs()
        {
            var rfs = config.Rfs;
            if (rfs == null)
                return;
            if (!IsMirror)
                throw Fail(rfs, SourceMap.Element, "<rfs> is for mirror modules: farm nodes keep their own data.");
            RequirePositive(rfs, "locktimeout", rfs.LockTimeout);
            RequirePositive(rfs, "sendtimeout", rfs.SendTimeout);
            CheckPort(rfs, "port", rfs.Port);
            if (rfs.Directories.Count == 0)
                throw Fail(rfs.Directories, SourceMap.Element, "<rfs> has no <replicated dir=\"...\"/>.");
            for (int i = 0; i < rfs.Directories.Count; i++)
            {
                var directory = rfs.Directories[i];
                var path = directory.Path;
                if (!ConfigSyntax.IsAbsolutePath(path))
                    throw Fail(directory, "dir", $"replicated dir '{path}' is not an absolute path.");
                if (ConfigSyntax.HasDotSegments(path))
                    throw Fail(directory, "dir", $"replicated dir '{path}' has '.' or '..' in it; write the path it means.");
                if (ConfigSyntax.Segments(path).Length <= (ConfigSyntax.IsWindowsPath(path) ? 1 : 0))
                    throw Fail(directory, "dir", $"replicated dir '{path}' is a file system root; replicate the application's directories, not the whole system.");
                for (int j = 0; j < i; j++)
                {
                    var other = rfs.Directories[j].Path;
                    if (IsSameOrInside(path, other) || IsSameOrInside(other, path))
                        throw Fail(directory, "dir", $"replicated dir '{path}' overlaps '{other}'; each file is replicated by one <replicated> only.");
                }
                CheckRelativePaths(directory, directory.NotReplicated, "notreplicated");
                CheckRelativePaths(directory, directory.ToCheck, "tocheck");
            }
        }

        private void CheckRelativePaths(ReplicatedDirectory directory, List<string> paths, string element)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < paths.Count; i++)
            {
                var path = paths[i];
                if (ConfigSyntax.IsAbsolutePath(path) || path.StartsWith('\\'))
                    throw Fail(paths, $"[{i}]", $"<{element} path=\"{path}\">: the path is relative to the replicated dir '{directory.Path}', not absolute.");
                if (ConfigSyntax.Segments(path).Any(s => s == ".."))
                    throw Fail(paths, $"[{i}]", $"<{element} path=\"{path}\">: '..' would leave the replicated dir '{directory.Path}'.");
                if (ConfigSyntax.Segments(path).All(s => s == "."))
                    throw Fail(paths, $"[{i}]", $"<{element} path=\"{path}\"> names the replicated dir itself.");
                if (!seen.Add(path))
                    throw Fail(paths, $"[{i}]", $"<{element} path=\"{path}\"> is listed twice.");
            }
        }

        private void CheckUser()
        {
            var user = config.User;
            RequirePositive(user, "nicestoptimeout", user.NiceStopTimeout);
            RequirePositive(user, "forcestoptimeout", user.ForceStopTimeout);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var variable in user.Variables)
            {
                if (!ConfigSyntax.IsVariableName(variable.Name))
                    throw Fail(variable, "name", $"variable name '{variable.Name}' is not valid in an environment: {ConfigSyntax.VariableRule}.");
                if (!seen.Add(variable.Name))
                    throw Fail(variable, "name", $"variable '{variable.Name}' is defined twice.");
            }
        }

        private void CheckErrd()
        {
            var errd = config.Errd;
            RequirePositive(errd, "polltimer", errd.PollTimer);
            var seen = new HashSet<(string, bool, string?)>();
            foreach (var process in errd.Processes)
            {
                if (string.IsNullOrWhiteSpace(process.Name))
                    throw Fail(process, "name", "<proc> has an empty name.");
                if (process.IsRegex)
                    CheckRegex(process, "name", process.Name);
                if (process.ArgumentsRegex != null)
                    CheckRegex(process, "argregex", process.ArgumentsRegex);
                if (process.AtLeast < 0)
                    throw Fail(process, "atleast", $"process '{process.Name}': atleast is {process.AtLeast}; it cannot be negative.");
                if (process.AtMost is { } most)
                {
                    if (most < 0)
                        throw Fail(process, "atmax", $"process '{process.Name}': atmax is {most}; it cannot be negative.");
                    if (process.AtLeast > most)
                        throw Fail(process, "atmax", $"process '{process.Name}': atleast {process.AtLeast} is greater than atmax {most}; no count could satisfy both.");
                }
                else if (process.AtLeast == 0)
                {
                    throw Fail(process, "atleast", $"process '{process.Name}': atleast 0 without atmax accepts any count, so it watches nothing.");
                }
                if (!UserConfigNames.ErrdActions.Contains(process.Action))
                    throw Fail(process, "action", $"process '{process.Name}': action {process.Action} is not allowed for a process; allowed: {UserConfigNames.ErrdActions.Allowed}.");
                if (!IsMirror && process.Class != ProcessClass.Both)
                    throw Fail(process, "class", $"process '{process.Name}': class=\"prim\" is for mirror modules; a farm runs the application on every node (class=\"both\").");
                if (!seen.Add((process.Name, process.IsRegex, process.ArgumentsRegex)))
                    throw Fail(process, "name", $"process '{process.Name}' is watched twice.");
            }
        }

        private void CheckCheckers()
        {
            var idents = new HashSet<string>(StringComparer.Ordinal);
            SplitBrainCheckConfig? splitBrain = null;
            foreach (var check in config.Checks)
            {
                if (check is ModuleCheckConfig module)
                {
                    if (!ConfigSyntax.IsName(module.ModuleName))
                        throw Fail(check, "name", $"<module name=\"{module.ModuleName}\">: not a module name ({ConfigSyntax.NameRule}).");
                }
                else if (!ConfigSyntax.IsIdent(check.Ident))
                {
                    throw Fail(check, "ident", $"<{check.Kind}> ident '{check.Ident}' is not valid: {ConfigSyntax.IdentRule}.");
                }
                // Resources are named kind.ident: two checkers of one kind with one ident would share a resource.
                if (!idents.Add(check.ResourceName))
                    throw Fail(check, check is ModuleCheckConfig ? "name" : "ident", $"duplicate ident: another <{check.Kind}> is already '{check.Ident}' (resource {check.ResourceName}).");
                if (!IsMirror && check.When != CheckWhen.Both)
                    throw Fail(check, "when", $"<{check.Kind} ident=\"{check.Ident}\">: when=\"prim\" is for mirror modules; a farm has no primary.");
                if (!Enum.IsDefined(check.Action))
                    throw Fail(check, "action", $"<{check.Kind} ident=\"{check.Ident}\">: action {(int)check.Action} is unknown; allowed: {UserConfigNames.CheckActions.Allowed}.");
                if (check is PeriodicCheckerConfig periodic)
                {
                    RequirePositive(check, "interval", periodic.Interval);
                    RequirePositive(check, "timeout", periodic.Timeout);
                }
                switch (check)
                {
                    case TcpCheckConfig tcp:
                        RequireHost(tcp, "addr", tcp.Address);
                        if (tcp.Port is < 1 or > 65535)
                            throw Fail(tcp, "port", $"<tcp ident=\"{tcp.Ident}\">: port {tcp.Port} is outside 1-65535.");
                        break;
                    case PingCheckConfig ping:
                        RequireHost(ping, "addr", ping.Address);
                        break;
                    case ModuleCheckConfig watched:
                        if (watched.Address != null)
                            RequireHost(watched, "addr", watched.Address);
                        CheckPort(watched, "port", watched.Port);
                        break;
                    case CustomCheckConfig custom:
                        CheckExec(custom, custom.Exec);
                        break;
                    case SplitBrainCheckConfig split:
                        if (!IsMirror)
                            throw Fail(split, SourceMap.Element, "<splitbrain> is for mirror modules: farm nodes never take over from each other.");
                        if (splitBrain != null)
                            throw Fail(split, SourceMap.Element, $"a module has one <splitbrain> checker; '{splitBrain.Ident}' is already one.");
                        splitBrain = split;
                        CheckExec(split, split.Exec);
                        CheckWitnesses(split);
                        break;
                }
            }
        }

        private void CheckWitnesses(SplitBrainCheckConfig split)
        {
            if (split.Exec != SplitBrainCheckConfig.PingExec)
                return;
            var words = split.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (words.Length == 0)
                throw Fail(split, "arg", $"<splitbrain ident=\"{split.Ident}\" exec=\"ping\">: arg must list the witness addresses, separated by spaces.");
            foreach (var word in words)
            {
                if (!ConfigSyntax.TryParseIp(word, out _))
                    throw Fail(split, "arg", $"<splitbrain ident=\"{split.Ident}\">: witness '{word}' is not an IP address.");
            }
        }

        /// <summary>A program in the module's bin/ by name, or an absolute path; never relative with "..".</summary>
        private void CheckExec(CheckerConfig check, string exec)
        {
            if (string.IsNullOrWhiteSpace(exec))
                throw Fail(check, "exec", $"<{check.Kind} ident=\"{check.Ident}\">: exec is empty.");
            if (!ConfigSyntax.IsAbsolutePath(exec) && (exec.Contains('/') || exec.Contains('\\')))
                throw Fail(check, "exec", $"<{check.Kind} ident=\"{check.Ident}\">: exec '{exec}' must be a file name in the module's bin/ or an absolute path.");
        }

        private void CheckRegex(object target, string key, string pattern)
        {
            try
            {
                _ = new Regex(pattern, RegexOptions.CultureInvariant);
            }
            catch (ArgumentException ex)
            {
                throw Fail(target, key, $"'{pattern}' is not a valid regular expression: {ex.Message}");
            }
        }

        private void RequireHost(object target, string key, string address)
        {
            if (!ConfigSyntax.IsHostOrIp(address))
                throw Fail(target, key, $"'{address}' is neither an IP address nor a host name.");
        }

        private void RequirePositive(object target, string key, TimeSpan value)
        {
            if (value <= TimeSpan.Zero)
                throw Fail(target, key, $"{key} is {(value < TimeSpan.Zero ? value.ToString() : "0")}; it must be greater than 0.");
        }

        private void CheckPulse(object target, TimeSpan pulse)
        {
            if (pulse < Heartbeat.HeartbeatChannel.MinPulse)
                throw Fail(target, "pulse", $"pulse {TimeValue.Format(pulse)} is shorter than {TimeValue.Format(Heartbeat.HeartbeatChannel.MinPulse)}, the shortest the heartbeat sender keeps.");
        }

        /// <summary>Every module's heartbeats share the engine's one UDP port; the packet names the module.</summary>
        private void CheckHeartbeatPort(object target, int? port)
        {
            if (port != null && port != Heartbeat.HeartbeatService.DefaultPort)
                throw Fail(target, "port", $"port {port}: the heartbeats of every module share the engine's UDP port {Heartbeat.HeartbeatService.DefaultPort} (each packet names its module); leave port out.");
        }

        private void CheckPort(object target, string key, int? port)
        {
            if (port is < 1 or > 65535)
                throw Fail(target, key, $"{key} {port} is outside 1-65535.");
        }

        private static bool IsMulticast(IPAddress ip) =>
            ip.AddressFamily == AddressFamily.InterNetworkV6 ? ip.IsIPv6Multicast : (ip.GetAddressBytes()[0] & 0xF0) == 0xE0;

        private static bool IsSameOrInside(string path, string directory)
        {
            var comparison = ConfigSyntax.IsWindowsPath(directory) ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
            var a = ConfigSyntax.Segments(path);
            var b = ConfigSyntax.Segments(directory);
            if (ConfigSyntax.IsWindowsPath(path) != ConfigSyntax.IsWindowsPath(directory) || a.Length < b.Length)
                return false;
            for (int i = 0; i < b.Length; i++)
                if (!string.Equals(a[i], b[i], comparison))
                    return false;
            return true;
        }

        private string NodeList() => cluster == null ? "" : string.Join(", ", cluster.Nodes.Select(n => n.Name));

        private ConfigurationException Fail(object target, string key, string reason) => map.Error(file, target, key, reason);
    }
}
