using System.IO.Pipes;
using System.Runtime.Versioning;
using System.Security.AccessControl;
using System.Security.Principal;

namespace ServiceKeeper.Engine.Hosting
{
    [SupportedOSPlatform("windows")]
    internal static class WindowsPipeSecurity
    {
        /// <summary>The local pipe needs no key, so only Administrators and SYSTEM may open it.</summary>
        public static PipeSecurity AdministratorsOnly()
        {
            var security = new PipeSecurity();
            security.AddAccessRule(new PipeAccessRule(new SecurityIdentifier(WellKnownSidType.BuiltinAdministratorsSid, null), PipeAccessRights.FullControl, AccessControlType.Allow));
            security.AddAccessRule(new PipeAccessRule(new SecurityIdentifier(WellKnownSidType.LocalSystemSid, null), PipeAccessRights.FullControl, AccessControlType.Allow));
            return security;
        }
    }
}
