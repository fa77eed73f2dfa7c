// HTTPS clients from this engine to the other engines of the cluster, with the shared admin key.
using System;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Cluster
{
    public sealed class PeerClients(string adminKey)
    {
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

        /// <summary>A client for an engine that is not a member yet: its certificate is recorded, not checked
        /// (trust on first use, as the cluster is being created by an admin who holds the key).</summary>
        public SKApiClient ForCandidate(string host, int port, TimeSpan? timeout = null) =>
            new(new SKEndpoint(host, port) { AdminKey = adminKey, SkipCertificateCheck = true, Timeout = timeout ?? DefaultTimeout });

        /// <summary>A client for a member, its certificate pinned to the thumbprint in cluster.xml.</summary>
        public SKApiClient ForMember(ClusterNodeConfig node, string? address = null, TimeSpan? timeout = null) =>
            new(new SKEndpoint(address ?? node.ApiAddress, node.ApiPort)
            {
                AdminKey = adminKey,
                PinnedThumbprint = node.CertificateThumbprint,
                SkipCertificateCheck = node.CertificateThumbprint == null,
                Timeout = timeout ?? DefaultTimeout,
            });
    }
}
