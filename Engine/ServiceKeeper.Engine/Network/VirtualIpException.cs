using System;

namespace ServiceKeeper.Engine.Network
{
    /// <summary>The OS refused to add, remove or announce a virtual IP. The message names the address, the interface and the reason.</summary>
    public sealed class VirtualIpException : Exception
    {
        public VirtualIpException(string message, int? errno = null, Exception? innerException = null)
            : base(message, innerException)
        {
            Errno = errno;
        }

        /// <summary>The errno the kernel answered, when there was one.</summary>
        public int? Errno { get; }
    }
}
