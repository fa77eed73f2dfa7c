using System.Collections.Generic;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Turns a module's checkers, process monitoring (errd) or automatic failover off or on, without stopping it.</summary>
    [Cmdlet(VerbsCommon.Set, "SKMaintenance", SupportsShouldProcess = true)]
    [OutputType(typeof(ModuleState))]
    public sealed class SetSKMaintenanceCommand : SKSingleModuleCommandBase
    {
        private const string On = "On";
        private const string Off = "Off";

        /// <summary>One node of the module; all its nodes when not given.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeNameCompleter))]
        public string? Node { get; set; }

        /// <summary>The module's checkers (tcp, ping, custom, ...).</summary>
        [Parameter]
        [ValidateSet(On, Off)]
        public string? Checkers { get; set; }

        /// <summary>Process monitoring (errd).</summary>
        [Parameter]
        [ValidateSet(On, Off)]
        public string? Errd { get; set; }

        /// <summary>Automatic failover to the secondary.</summary>
        [Parameter]
        [ValidateSet(On, Off)]
        public string? Failover { get; set; }

        /// <summary>Write the module's states after the change.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void BeginProcessing()
        {
            if (Checkers == null && Errd == null && Failover == null)
                ThrowInvalidArgument("Set-SKMaintenance changes nothing without -Checkers, -Errd or -Failover (On or Off).", null);
            base.BeginProcessing();
        }

        protected override void ProcessRecord()
        {
            var changes = new List<string>();
            if (Checkers != null) changes.Add("checkers " + Checkers.ToLowerInvariant());
            if (Errd != null) changes.Add("errd " + Errd.ToLowerInvariant());
            if (Failover != null) changes.Add("failover " + Failover.ToLowerInvariant());
            if (!ShouldProcess(TargetOf(Node), "Set maintenance: " + string.Join(", ", changes))) return;

            var request = new MaintenanceRequest { Node = Node, Checkers = IsOn(Checkers), Errd = IsOn(Errd), Failover = IsOn(Failover) };
            if (TryCall((client, ct) => client.SetMaintenanceAsync(Name, request, ct), Name, out var states) && PassThru)
                WriteObject(states, enumerateCollection: true);
        }

        private static bool? IsOn(string? value) => value == null ? (bool?)null : string.Equals(value, On, System.StringComparison.OrdinalIgnoreCase);
    }
}
