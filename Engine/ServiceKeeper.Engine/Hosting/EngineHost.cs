// Wires the engine: home folder, secrets, configuration check, logging, the API on its transports.
using System;
using System.IO;
using System.Net;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NLog.Extensions.Logging;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Api;
using ServiceKeeper.Engine.Cluster;
using ServiceKeeper.Engine.Modules;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Network;
using ServiceKeeper.Engine.Node;
using ServiceKeeper.Engine.Scripts;

namespace ServiceKeeper.Engine.Hosting
{
    public static class EngineHost
    {
        public static async Task<int> RunAsync(EngineOptions options)
        {
            var home = new EngineHome(options.Home);
            home.CreateLayout();
            NLog.LogManager.Configuration = EngineLogging.Create(home);
            try
            {
                var app = Build(options, home);
                await app.StartAsync();
                if (!OperatingSystem.IsWindows())
                    File.SetUnixFileMode(home.ApiSocket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Engine");
                log.LogInformation("engine {Version} started as node {Node}, home {Home}, API on {Socket} and https://{Listen}",
                    EngineVersion.Current, options.NodeName, home.Root, OperatingSystem.IsWindows() ? @"\\.\pipe\" + SKEndpoint.PipeName : home.ApiSocket,
                    string.Join(", https://", options.Listen));
                await app.WaitForShutdownAsync();
                log.LogInformation("engine stopped");
                return 0;
            }
            finally
            {
                if (!OperatingSystem.IsWindows()) File.Delete(home.ApiSocket);
                NLog.LogManager.Shutdown();
            }
        }

        public static WebApplication Build(EngineOptions options, EngineHome home)
        {
            var adminKey = home.LoadOrCreateAdminKey();
            var tls = new TlsIdentity(home.LoadOrCreateCertificate(options.NodeName));
            var clusterState = new ClusterState(home);
            clusterState.Load(options.NodeName);

            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
            builder.Host.UseSystemd();
            builder.Host.UseWindowsService(o => o.ServiceName = "ServiceKeeper");
            builder.Host.ConfigureHostOptions(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
            builder.Logging.ClearProviders();
            // Keep the filters below: by default the NLog provider drops the logging builder's filters.
            builder.Logging.AddNLog(new NLogProviderOptions { RemoveLoggerFactoryFilter = false });
            // ASP.NET Core's and HttpClient's own chatter only when it matters.
            builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
            builder.Logging.AddFilter("System", LogLevel.Warning);
            builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.AddServerHeader = false;
                kestrel.Limits.MaxRequestBodySize = ApiEndpoints.MaxBodyBytes;
                foreach (var endpoint in options.Listen)
                    kestrel.Listen(endpoint, listen =>
                    {
                        listen.Protocols = HttpProtocols.Http1AndHttp2;
                        listen.UseHttps(tls.Certificate);
                    });
                // Bound last: once the local socket exists, every transport is up (service managers and tests wait for it).
                if (OperatingSystem.IsWindows())
                {
                    kestrel.ListenNamedPipe(SKEndpoint.PipeName);
                }
                else
                {
                    // A socket file left by a killed engine would make the bind fail.
                    File.Delete(home.ApiSocket);
                    kestrel.ListenUnixSocket(home.ApiSocket);
                }
            });
            if (OperatingSystem.IsWindows())
                builder.WebHost.UseNamedPipes(pipe => { if (OperatingSystem.IsWindows()) pipe.PipeSecurity = WindowsPipeSecurity.AdministratorsOnly(); });

            var services = builder.Services;
            services.AddSingleton(options);
            services.AddSingleton(home);
            services.AddSingleton(tls);
            services.AddSingleton(clusterState);
            services.AddSingleton(TimeProvider.System);
            services.AddSingleton(new PeerClients(adminKey));
            services.AddSingleton<EnginePorts>();
            services.AddSingleton<NodeInfoProvider>();
            services.AddSingleton<ClusterService>();
            services.AddSingleton<ModuleStore>();
            services.AddSingleton<IModuleLog>(sp => new ModuleLog(home.LogDirectory, options.NodeName, sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILogger<ModuleLog>>()));
            services.AddSingleton<IScriptRunner>(sp => new ProcessScriptRunner(sp.GetRequiredService<IModuleLog>(),
                sp.GetRequiredService<ILogger<ProcessScriptRunner>>(), sp.GetRequiredService<TimeProvider>()));
            services.AddSingleton(_ => VirtualIpManagers.ForCurrentPlatform());
            services.AddSingleton<IProcessTable>(_ => OperatingSystem.IsWindows() ? new WindowsProcessTable() : new LinuxProcessTable());
            services.AddSingleton<ModuleRuntime>();
            services.AddSingleton<ModuleControl>();
            services.AddSingleton(sp => new ApiMiddleware(adminKey, sp.GetRequiredService<ILogger<ApiMiddleware>>()));

            var app = builder.Build();
            var modules = app.Services.GetRequiredService<ModuleStore>();
            modules.ValidateInstalled();
            var cluster = app.Services.GetRequiredService<ClusterService>();
            var runtime = app.Services.GetRequiredService<ModuleRuntime>();
            modules.Installed = runtime.OnInstalledAsync;
            modules.Removing = runtime.OnRemovingAsync;
            cluster.ClusterRemoved += () =>
            {
                // Modules go with the cluster: stopped here first, then their files.
                runtime.StopAllAsync(keepStartedFlags: false).GetAwaiter().GetResult();
                modules.RemoveAllLocal();
            };
            app.Lifetime.ApplicationStarted.Register(() => runtime.StartAsync().GetAwaiter().GetResult());
            app.Lifetime.ApplicationStopping.Register(() => runtime.StopAllAsync(keepStartedFlags: true).GetAwaiter().GetResult());

            var middleware = app.Services.GetRequiredService<ApiMiddleware>();
            app.Use(next => ctx => middleware.InvokeAsync(ctx, next));
            ApiEndpoints.Map(app, cluster, modules, app.Services.GetRequiredService<ModuleControl>(), runtime,
                app.Services.GetRequiredService<IModuleLog>());
            return app;
        }
    }
}
