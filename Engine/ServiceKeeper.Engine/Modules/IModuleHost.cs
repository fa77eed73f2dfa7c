using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Engine.Modules
{
    /// <summary>A module running on this node (mirror now, farm later), as the API and the runtime see it.</summary>
    public interface IModuleHost : IAsyncDisposable
    {
        string Name { get; }
        ModuleState State { get; }
        IReadOnlyList<ModuleResource> Resources { get; }
        Task StartAsync();
        /// <summary>Accepts an admin command; returns the state right after it (the work goes on in the background).</summary>
        Task<ModuleState> CommandAsync(ModuleCommandRequest request);
        Task<ModuleState> SetMaintenanceAsync(MaintenanceRequest request);
        /// <summary>Stops the module here and waits (up to the timeout) until it is stopped.</summary>
        Task StopAsync(TimeSpan timeout, bool keepStartedFlag);
    }
}
