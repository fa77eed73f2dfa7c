using System;

namespace ServiceKeeper.Engine.Network
{
    public static class VirtualIpManagers
    {
        /// <summary>The VIP manager of this OS: the Linux one, or one whose every call throws PlatformNotSupportedException.</summary>
        public static IVirtualIpManager ForCurrentPlatform() =>
            OperatingSystem.IsLinux() ? new LinuxVirtualIpManager() : new UnsupportedVirtualIpManager();
    }
}
