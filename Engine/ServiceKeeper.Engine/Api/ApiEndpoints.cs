// Routes of the control API. Handlers are thin: parse, call a service, write JSON.
using System;
using System.IO;
using System.Text;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Cluster;
using ServiceKeeper.Engine.Modules;

namespace ServiceKeeper.Engine.Api
{
    public static class ApiEndpoints
    {
        public static void Map(IEndpointRouteBuilder app, ClusterService cluster, ModuleStore modules, ModuleControl control,
                               ModuleRuntime runtime, Scripts.IModuleLog moduleLog)
        {
            app.MapGet("/v1/node", ctx => Write(ctx, cluster.LocalInfo()));

            app.MapGet("/v1/cluster", ctx => Write(ctx, cluster.Get()));
            app.MapPost("/v1/cluster", async ctx => await Write(ctx, await cluster.CreateAsync(await Read<CreateClusterRequest>(ctx), ctx.RequestAborted), StatusCodes.Status201Created));
            app.MapDelete("/v1/cluster", async ctx => await Write(ctx, await cluster.RemoveAsync(IsForced(ctx), ctx.RequestAborted)));
            app.MapGet("/v1/cluster/nodes", async ctx => await Write(ctx, await cluster.GetNodesAsync(ctx.RequestAborted)));
            app.MapGet("/v1/cluster/test", async ctx => await Write(ctx, await cluster.TestAsync(ctx.RequestAborted)));

            app.MapGet("/v1/modules", ctx => Write(ctx, modules.List()));
            app.MapPost("/v1/modules", async ctx => await Write(ctx, await modules.InstallAsync(await Read<InstallModuleRequest>(ctx), ctx.RequestAborted), StatusCodes.Status201Created));
            app.MapDelete("/v1/modules/{name}", async (HttpContext ctx, string name) => await Write(ctx, await modules.RemoveAsync(name, IsForced(ctx), ctx.RequestAborted)));

            app.MapPost("/v1/modules/mirror", async ctx =>
            {
                var request = await Read<AddMirrorModuleRequest>(ctx);
                var install = MirrorModuleBuilder.Build(request, cluster.RequireCluster());
                await Write(ctx, await modules.InstallAsync(install, ctx.RequestAborted), StatusCodes.Status201Created);
            });
            app.MapPost("/v1/modules/farm", async ctx =>
            {
                var request = await Read<AddFarmModuleRequest>(ctx);
                var install = FarmModuleBuilder.Build(request);
                await Write(ctx, await modules.InstallAsync(install, ctx.RequestAborted), StatusCodes.Status201Created);
            });
            app.MapGet("/v1/modules/{name}/farmload", async (HttpContext ctx, string name) =>
                await Write(ctx, await control.GetFarmLoadAsync(name, ctx.RequestAborted)));
            app.MapGet("/v1/internal/modules/{name}/farmload", (HttpContext ctx, string name) => Write(ctx, control.LocalFarmLoad(name)));
            app.MapGet("/v1/modules/{name}/replication", async (HttpContext ctx, string name) =>
                await Write(ctx, await control.GetReplicationAsync(name, Query(ctx, "node"), ctx.RequestAborted)));
            app.MapPost("/v1/modules/{name}/replication/test", async (HttpContext ctx, string name) =>
                await Write(ctx, await control.TestReplicationAsync(name, ctx.RequestAborted)));
            app.MapPost("/v1/modules/{name}/command", async (HttpContext ctx, string name) =>
                await Write(ctx, await control.CommandAsync(name, await Read<ModuleCommandRequest>(ctx), ctx.RequestAborted)));
            app.MapPost("/v1/modules/{name}/maintenance", async (HttpContext ctx, string name) =>
                await Write(ctx, await control.SetMaintenanceAsync(name, await Read<MaintenanceRequest>(ctx), ctx.RequestAborted)));
            app.MapGet("/v1/modules/{name}/resources", async (HttpContext ctx, string name) =>
                await Write(ctx, await control.GetResourcesAsync(name, Query(ctx, "node"), ctx.RequestAborted)));
            app.MapGet("/v1/modules/{name}/log", async (HttpContext ctx, string name) =>
                await Write(ctx, await control.GetLogAsync(name, Query(ctx, "node"), Tail(ctx), After(ctx), moduleLog.Read, ctx.RequestAborted)));
            app.MapGet("/v1/state", async ctx => await Write(ctx, await control.GetStateAsync(Query(ctx, "module"), ctx.RequestAborted)));

            // Engine to engine (same admin key); also reachable on the local socket.
            app.MapPut("/v1/internal/cluster", async ctx => await Write(ctx, await cluster.JoinAsync(await Read<JoinClusterRequest>(ctx), ctx.RequestAborted)));
            app.MapDelete("/v1/internal/cluster/{id}", async (HttpContext ctx, string id) => await Write(ctx, await cluster.LeaveAsync(id, ctx.RequestAborted)));
            app.MapGet("/v1/internal/reachability", async ctx => await Write(ctx, await cluster.CheckReachabilityAsync(ctx.RequestAborted)));
            app.MapPut("/v1/internal/modules/{name}", async (HttpContext ctx, string name) =>
            {
                var request = await Read<InstallModuleRequest>(ctx);
                if (request.Name != name) throw new SKApiException(ErrorIds.InvalidArgument, "The module name in the path and in the body differ.", name);
                await Write(ctx, await modules.InstallLocalAsync(request, ctx.RequestAborted));
            });
            app.MapDelete("/v1/internal/modules/{name}", async (HttpContext ctx, string name) => await Write(ctx, await modules.RemoveLocalAsync(name)));
            app.MapGet("/v1/internal/state", ctx => Write(ctx, runtime.LocalStates()));
            app.MapPost("/v1/internal/modules/{name}/command", async (HttpContext ctx, string name) =>
                await Write(ctx, await runtime.Get(name).CommandAsync(await Read<ModuleCommandRequest>(ctx))));
            app.MapPost("/v1/internal/modules/{name}/maintenance", async (HttpContext ctx, string name) =>
                await Write(ctx, await runtime.Get(name).SetMaintenanceAsync(await Read<MaintenanceRequest>(ctx))));
            app.MapGet("/v1/internal/modules/{name}/replication", (HttpContext ctx, string name) => Write(ctx, control.LocalReplication(name)));
            app.MapGet("/v1/internal/modules/{name}/replication/manifest", async (HttpContext ctx, string name) =>
                await Write(ctx, await control.LocalManifestAsync(name, null, ctx.RequestAborted)));
            app.MapPost("/v1/internal/modules/{name}/replication/manifest", async (HttpContext ctx, string name) =>
                await Write(ctx, await control.LocalManifestAsync(name, await Read<ManifestRequest>(ctx), ctx.RequestAborted)));
            app.MapGet("/v1/internal/modules/{name}/resources", (HttpContext ctx, string name) => Write(ctx, runtime.Get(name).Resources));
            app.MapGet("/v1/internal/modules/{name}/log", (HttpContext ctx, string name) =>
            {
                modules.Get(name);
                return Write(ctx, moduleLog.Read(name, Tail(ctx), After(ctx)));
            });
        }

        private static string? Query(HttpContext ctx, string name) =>
            ctx.Request.Query.TryGetValue(name, out var value) && !string.IsNullOrEmpty(value) ? value.ToString() : null;

        private static int Tail(HttpContext ctx) =>
            int.TryParse(Query(ctx, "tail"), out var tail) && tail is > 0 and <= 5000 ? tail : 50;

        private static long? After(HttpContext ctx) => long.TryParse(Query(ctx, "after"), out var after) ? after : null;

        private static bool IsForced(HttpContext ctx) => string.Equals(ctx.Request.Query["force"], "true", StringComparison.OrdinalIgnoreCase);

        public const int MaxBodyBytes = 16 << 20;

        private static async Task<T> Read<T>(HttpContext ctx) where T : class
        {
            if (ctx.Request.ContentLength > MaxBodyBytes)
                throw new SKApiException(ErrorIds.InvalidArgument, $"The request body is larger than {MaxBodyBytes >> 20} MiB.");
            using var reader = new StreamReader(ctx.Request.Body, Encoding.UTF8);
            var text = await reader.ReadToEndAsync(ctx.RequestAborted);
            try
            {
                return SKJson.Deserialize<T>(text) ?? throw new SKApiException(ErrorIds.InvalidArgument, "The request has no body.");
            }
            catch (Newtonsoft.Json.JsonException ex)
            {
                throw new SKApiException(ErrorIds.InvalidArgument, "The request body is not valid JSON: " + ex.Message);
            }
        }

        public static Task Write(HttpContext ctx, object value, int status = StatusCodes.Status200OK)
        {
            var bytes = Encoding.UTF8.GetBytes(SKJson.Serialize(value));
            ctx.Response.StatusCode = status;
            ctx.Response.ContentType = "application/json; charset=utf-8";
            ctx.Response.ContentLength = bytes.Length;
            return ctx.Response.Body.WriteAsync(bytes, 0, bytes.Length, ctx.RequestAborted);
        }
    }
}
