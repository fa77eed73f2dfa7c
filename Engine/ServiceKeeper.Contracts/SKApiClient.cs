// Client of one engine's control API, used by the cmdlets, by engines talking to each other and by tests.
using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace ServiceKeeper.Contracts
{
    public sealed class SKApiClient : IDisposable
    {
        private readonly HttpClient _http;

        public SKApiClient(SKEndpoint endpoint)
        {
            Endpoint = endpoint ?? throw new ArgumentNullException(nameof(endpoint));
            HttpMessageHandler handler;
            Uri baseAddress;
            if (endpoint.IsLocal)
            {
                handler = new LocalTransportHandler(endpoint.LocalPath ?? SKEndpoint.DefaultLocalPath(), endpoint.Timeout);
                baseAddress = new Uri("http://localhost/");
            }
            else
            {
                var https = new HttpClientHandler { ServerCertificateCustomValidationCallback = ValidateCertificate };
                handler = https;
                var host = endpoint.Host!.Contains(":") ? "[" + endpoint.Host + "]" : endpoint.Host;
                baseAddress = new Uri("https://" + host + ":" + endpoint.Port + "/");
            }
            _http = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = endpoint.Timeout };
            if (!endpoint.IsLocal && endpoint.AdminKey != null)
                _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(
                    "Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("admin:" + endpoint.AdminKey)));
        }

        public SKEndpoint Endpoint { get; }

        /// <summary>SHA-1 thumbprint of the certificate the server presented on the last HTTPS call.</summary>
        public string? LastServerThumbprint { get; private set; }

        public Task<NodeInfo> GetNodeInfoAsync(CancellationToken ct = default) => SendAsync<NodeInfo>(HttpMethod.Get, "v1/node", null, ct);
        public Task<ClusterInfo> GetClusterAsync(CancellationToken ct = default) => SendAsync<ClusterInfo>(HttpMethod.Get, "v1/cluster", null, ct);
        public Task<ClusterInfo> CreateClusterAsync(CreateClusterRequest request, CancellationToken ct = default) => SendAsync<ClusterInfo>(HttpMethod.Post, "v1/cluster", request, ct);
        /// <summary>Removes the cluster from every node that can be reached; returns the nodes it was removed from.</summary>
        /// <remarks>Without <paramref name="force"/> nothing is removed unless every node answers.</remarks>
        public Task<List<string>> RemoveClusterAsync(CancellationToken ct = default) => RemoveClusterAsync(false, ct);
        public Task<List<string>> RemoveClusterAsync(bool force, CancellationToken ct = default) => SendAsync<List<string>>(HttpMethod.Delete, force ? "v1/cluster?force=true" : "v1/cluster", null, ct);
        public Task<List<NodeStatus>> GetNodesAsync(CancellationToken ct = default) => SendAsync<List<NodeStatus>>(HttpMethod.Get, "v1/cluster/nodes", null, ct);
        public Task<List<ClusterCheck>> TestClusterAsync(CancellationToken ct = default) => SendAsync<List<ClusterCheck>>(HttpMethod.Get, "v1/cluster/test", null, ct);
        public Task<List<ModuleInfo>> GetModulesAsync(CancellationToken ct = default) => SendAsync<List<ModuleInfo>>(HttpMethod.Get, "v1/modules", null, ct);
        public Task<ModuleInfo> InstallModuleAsync(InstallModuleRequest request, CancellationToken ct = default) => SendAsync<ModuleInfo>(HttpMethod.Post, "v1/modules", request, ct);
        public Task<List<string>> RemoveModuleAsync(string name, CancellationToken ct = default) => RemoveModuleAsync(name, false, ct);
        public Task<List<string>> RemoveModuleAsync(string name, bool force, CancellationToken ct = default) => SendAsync<List<string>>(HttpMethod.Delete, "v1/modules/" + Uri.EscapeDataString(name) + (force ? "?force=true" : ""), null, ct);
        /// <summary>Every module (or one) on every node of the cluster.</summary>
        public Task<List<ModuleState>> GetStateAsync(CancellationToken ct = default) => GetStateAsync(null, ct);
        public Task<List<ModuleState>> GetStateAsync(string? module, CancellationToken ct = default) =>
            SendAsync<List<ModuleState>>(HttpMethod.Get, "v1/state" + (module == null ? "" : "?module=" + Uri.EscapeDataString(module)), null, ct);
        public Task<ModuleInfo> AddFarmModuleAsync(AddFarmModuleRequest request, CancellationToken ct = default) => SendAsync<ModuleInfo>(HttpMethod.Post, "v1/modules/farm", request, ct);
        /// <summary>Buckets, share and live connections of every node of a farm module.</summary>
        public Task<List<FarmLoad>> GetFarmLoadAsync(string module, CancellationToken ct = default) =>
            SendAsync<List<FarmLoad>>(HttpMethod.Get, "v1/modules/" + Uri.EscapeDataString(module) + "/farmload", null, ct);
        /// <summary>Each replicated directory of a mirror module on its nodes (one node when given).</summary>
        public Task<List<ReplicationStatus>> GetReplicationAsync(string module, string? node = null, CancellationToken ct = default) =>
            SendAsync<List<ReplicationStatus>>(HttpMethod.Get, "v1/modules/" + Uri.EscapeDataString(module) + "/replication" + (node == null ? "" : "?node=" + Uri.EscapeDataString(node)), null, ct);
        /// <summary>Compares the primary's and the secondary's copies by content; empty when identical.</summary>
        public Task<List<ReplicationDifference>> TestReplicationAsync(string module, CancellationToken ct = default) =>
            SendAsync<List<ReplicationDifference>>(HttpMethod.Post, "v1/modules/" + Uri.EscapeDataString(module) + "/replication/test", null, ct);
        public Task<ModuleInfo> AddMirrorModuleAsync(AddMirrorModuleRequest request, CancellationToken ct = default) => SendAsync<ModuleInfo>(HttpMethod.Post, "v1/modules/mirror", request, ct);
        /// <summary>start, stop, restart, swap, prim, second; returns the module's state on its nodes afterwards.</summary>
        public Task<List<ModuleState>> SendCommandAsync(string module, ModuleCommandRequest request, CancellationToken ct = default) =>
            SendAsync<List<ModuleState>>(HttpMethod.Post, "v1/modules/" + Uri.EscapeDataString(module) + "/command", request, ct);
        public Task<List<ModuleState>> SetMaintenanceAsync(string module, MaintenanceRequest request, CancellationToken ct = default) =>
            SendAsync<List<ModuleState>>(HttpMethod.Post, "v1/modules/" + Uri.EscapeDataString(module) + "/maintenance", request, ct);
        public Task<List<ModuleResource>> GetResourcesAsync(string module, string? node = null, CancellationToken ct = default) =>
            SendAsync<List<ModuleResource>>(HttpMethod.Get, "v1/modules/" + Uri.EscapeDataString(module) + "/resources" + (node == null ? "" : "?node=" + Uri.EscapeDataString(node)), null, ct);
        /// <summary>The last <paramref name="tail"/> lines of the module's log on a node (all its nodes when null), after a sequence number when following.</summary>
        public Task<List<LogLine>> GetLogAsync(string module, string? node, int tail, long? afterSequence = null, CancellationToken ct = default) =>
            SendAsync<List<LogLine>>(HttpMethod.Get, "v1/modules/" + Uri.EscapeDataString(module) + "/log?tail=" + tail +
                (node == null ? "" : "&node=" + Uri.EscapeDataString(node)) + (afterSequence == null ? "" : "&after=" + afterSequence), null, ct);

        // Engine to engine.
        public Task<NodeInfo> JoinClusterAsync(JoinClusterRequest request, CancellationToken ct = default) => SendAsync<NodeInfo>(HttpMethod.Put, "v1/internal/cluster", request, ct);
        public Task<NodeInfo> LeaveClusterAsync(string clusterId, CancellationToken ct = default) => SendAsync<NodeInfo>(HttpMethod.Delete, "v1/internal/cluster/" + Uri.EscapeDataString(clusterId), null, ct);
        /// <summary>The asked node's view of every peer on every network.</summary>
        public Task<List<ClusterCheck>> GetReachabilityAsync(CancellationToken ct = default) => SendAsync<List<ClusterCheck>>(HttpMethod.Get, "v1/internal/reachability", null, ct);
        // Per node: what a module does here (the cluster-wide calls above fan out to these).
        public Task<List<ModuleState>> GetLocalStateAsync(CancellationToken ct = default) => SendAsync<List<ModuleState>>(HttpMethod.Get, "v1/internal/state", null, ct);
        public Task<ModuleState> SendLocalCommandAsync(string module, ModuleCommandRequest request, CancellationToken ct = default) =>
            SendAsync<ModuleState>(HttpMethod.Post, "v1/internal/modules/" + Uri.EscapeDataString(module) + "/command", request, ct);
        public Task<ModuleState> SetLocalMaintenanceAsync(string module, MaintenanceRequest request, CancellationToken ct = default) =>
            SendAsync<ModuleState>(HttpMethod.Post, "v1/internal/modules/" + Uri.EscapeDataString(module) + "/maintenance", request, ct);
        public Task<List<ModuleResource>> GetLocalResourcesAsync(string module, CancellationToken ct = default) =>
            SendAsync<List<ModuleResource>>(HttpMethod.Get, "v1/internal/modules/" + Uri.EscapeDataString(module) + "/resources", null, ct);
        public Task<List<LogLine>> GetLocalLogAsync(string module, int tail, long? afterSequence = null, CancellationToken ct = default) =>
            SendAsync<List<LogLine>>(HttpMethod.Get, "v1/internal/modules/" + Uri.EscapeDataString(module) + "/log?tail=" + tail + (afterSequence == null ? "" : "&after=" + afterSequence), null, ct);
        public Task<List<FarmLoad>> GetLocalFarmLoadAsync(string module, CancellationToken ct = default) =>
            SendAsync<List<FarmLoad>>(HttpMethod.Get, "v1/internal/modules/" + Uri.EscapeDataString(module) + "/farmload", null, ct);
        public Task<List<ReplicationStatus>> GetLocalReplicationAsync(string module, CancellationToken ct = default) =>
            SendAsync<List<ReplicationStatus>>(HttpMethod.Get, "v1/internal/modules/" + Uri.EscapeDataString(module) + "/replication", null, ct);
        /// <summary>This node's manifest of a module's replicated directories: all of it, or only the paths asked for.</summary>
        public Task<ReplicationManifest> GetLocalManifestAsync(string module, ManifestRequest? only = null, CancellationToken ct = default) =>
            SendAsync<ReplicationManifest>(only == null ? HttpMethod.Get : HttpMethod.Post, "v1/internal/modules/" + Uri.EscapeDataString(module) + "/replication/manifest", only, ct);
        public Task<ModuleInfo> InstallModuleLocalAsync(InstallModuleRequest request, CancellationToken ct = default) => SendAsync<ModuleInfo>(HttpMethod.Put, "v1/internal/modules/" + Uri.EscapeDataString(request.Name), request, ct);
        public Task<ModuleInfo> RemoveModuleLocalAsync(string name, CancellationToken ct = default) => SendAsync<ModuleInfo>(HttpMethod.Delete, "v1/internal/modules/" + Uri.EscapeDataString(name), null, ct);

        private async Task<T> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken ct)
        {
            using (var request = new HttpRequestMessage(method, path))
            {
                if (body != null)
                    request.Content = new StringContent(SKJson.Serialize(body), Encoding.UTF8, "application/json");
                HttpResponseMessage response;
                try
                {
                    response = await _http.SendAsync(request, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (!(ex is OperationCanceledException) || !ct.IsCancellationRequested)
                {
                    throw new SKApiException(ErrorIds.NodeUnreachable,
                        $"Cannot reach the ServiceKeeper engine at {Endpoint}: {Describe(ex)}", Endpoint.ToString(), 0, ex);
                }
                using (response)
                {
                    var text = response.Content == null ? "" : await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                    if (response.IsSuccessStatusCode)
                        return SKJson.Deserialize<T>(text);
                    throw ToException(response.StatusCode, text);
                }
            }
        }

        private SKApiException ToException(HttpStatusCode status, string text)
        {
            ApiError? error = null;
            try { error = SKJson.Deserialize<ApiError>(text); } catch (Newtonsoft.Json.JsonException) { }
            if (status == HttpStatusCode.Unauthorized && error?.Target != null)
                return new SKApiException(ErrorIds.AuthenticationFailed, error.Message, error.Target, 401);
            if (status == HttpStatusCode.Unauthorized)
                return new SKApiException(ErrorIds.AuthenticationFailed,
                    $"The engine at {Endpoint} refused the credential: the password must be the node's admin key (<home>/api/admin.key).",
                    Endpoint.ToString(), 401);
            if (error == null || string.IsNullOrEmpty(error.ErrorId))
                return new SKApiException(ErrorIds.InternalError, $"The engine at {Endpoint} answered {(int)status}: {text}", Endpoint.ToString(), (int)status);
            return new SKApiException(error.ErrorId, error.Message, error.Target ?? Endpoint.ToString(), (int)status);
        }

        private bool ValidateCertificate(HttpRequestMessage request, X509Certificate2? certificate, X509Chain? chain, SslPolicyErrors errors)
        {
            LastServerThumbprint = certificate?.Thumbprint;
            if (Endpoint.PinnedThumbprint != null)
                return certificate != null && string.Equals(certificate.Thumbprint, Endpoint.PinnedThumbprint, StringComparison.OrdinalIgnoreCase);
            return Endpoint.SkipCertificateCheck || errors == SslPolicyErrors.None;
        }

        private string Describe(Exception ex)
        {
            if (ex is OperationCanceledException)
                return $"no answer within {Endpoint.Timeout.TotalSeconds:0.#} s.";
            var messages = new List<string>();
            for (var e = ex; e != null; e = e.InnerException)
                if (!messages.Contains(e.Message)) messages.Add(e.Message);
            return string.Join(" ", messages);
        }

        public void Dispose() => _http.Dispose();
    }
}
