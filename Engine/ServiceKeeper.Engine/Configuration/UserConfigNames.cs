// The words of userconfig.xml for each enum, shared by the reader and the writer so the two cannot drift.
namespace ServiceKeeper.Engine.Configuration
{
    internal static class UserConfigNames
    {
        public const string Alone = "alone";
        public const string LastPrimary = "lastprim";

        public static readonly EnumNames<ModuleMode> Modes = new(("mirror", ModuleMode.Mirror), ("farm", ModuleMode.Farm));

        public static readonly EnumNames<CheckAction> CheckActions = new(
            ("restart", CheckAction.Restart),
            ("stopstart", CheckAction.StopStart),
            ("stop", CheckAction.Stop),
            ("wait", CheckAction.Wait),
            ("noaction", CheckAction.NoAction));

        /// <summary>wait is left out: a process the module starts cannot come back while the module waits.</summary>
        public static readonly EnumNames<CheckAction> ErrdActions = new(
            ("restart", CheckAction.Restart),
            ("stopstart", CheckAction.StopStart),
            ("stop", CheckAction.Stop),
            ("noaction", CheckAction.NoAction));

        public static readonly EnumNames<CheckWhen> When = new(("prim", CheckWhen.Prim), ("both", CheckWhen.Both));

        public static readonly EnumNames<ProcessClass> ProcessClasses = new(("prim", ProcessClass.Prim), ("both", ProcessClass.Both));

        public static readonly EnumNames<RfsAsync> Async = new(("second", RfsAsync.Second), ("none", RfsAsync.None));

        public static readonly EnumNames<VipWhere> Where = new(("one_side_alias", VipWhere.OneSideAlias), ("alias", VipWhere.Alias));

        public static readonly EnumNames<VirtualInterfaceType> VirtualTypes = new(("multicast_mac", VirtualInterfaceType.MulticastMac));

        public static readonly EnumNames<TransportProtocol> Protocols = new(("tcp", TransportProtocol.Tcp), ("udp", TransportProtocol.Udp));

        public static readonly EnumNames<LoadBalancingFilter> Filters = new(
            ("on_addr", LoadBalancingFilter.OnAddress),
            ("on_port", LoadBalancingFilter.OnPort),
            ("on_ipid", LoadBalancingFilter.OnIpId));

        public static string OnOff(bool value) => value ? "on" : "off";
    }
}
