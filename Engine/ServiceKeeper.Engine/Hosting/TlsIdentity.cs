using System.Security.Cryptography.X509Certificates;

namespace ServiceKeeper.Engine.Hosting
{
    /// <summary>This node's HTTPS certificate; its thumbprint is pinned by the other nodes in cluster.xml.</summary>
    public sealed class TlsIdentity(X509Certificate2 certificate)
    {
        public X509Certificate2 Certificate { get; } = certificate;
        public string Thumbprint => Certificate.Thumbprint;
    }
}
