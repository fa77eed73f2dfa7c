using System;
using System.Collections.Generic;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Exchanges the primary and secondary of a mirror module; -Wait waits until the roles are exchanged and Ready.</summary>
    [Cmdlet(VerbsLifecycle.Start, "SKSwap", SupportsShouldProcess = true)]
    [OutputType(typeof(ModuleState))]
    public sealed class StartSKSwapCommand : SKSingleModuleCommandBase
    {
        private readonly List<WaitTarget> _waits = new List<WaitTarget>();

        /// <summary>Wait until both nodes have exchanged roles and are Ready.</summary>
        [Parameter]
        public SwitchParameter Wait { get; set; }

        /// <summary>How long -Wait waits at most (seconds or a TimeSpan); implies -Wait. No limit by default.</summary>
        [Parameter]
        [TimeSpanOrSeconds]
        public TimeSpan Timeout { get; set; }

        /// <summary>Write the module's states after the swap (after the wait with -Wait).</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        private bool Waiting => Wait.IsPresent || MyInvocation.BoundParameters.ContainsKey(nameof(Timeout));

        protected override void ProcessRecord()
        {
            var name = Name;
            if (!ShouldProcess($"primary and secondary of module '{name}'", "Swap")) return;
            // Waiting needs the roles before the swap, to see them exchanged.
            List<ModuleState> before = new List<ModuleState>();
            if (Waiting && !TryCall((client, ct) => client.GetStateAsync(name, ct), name, out before)) return;
            var request = new ModuleCommandRequest { Command = ModuleCommands.Swap };
            if (!TryCall((client, ct) => client.SendCommandAsync(name, request, ct), name, out var states)) return;
            if (Waiting) _waits.Add(WaitTarget.Swapped(name, before, states));
            else if (PassThru) WriteObject(states, enumerateCollection: true);
        }

        protected override void EndProcessing()
        {
            if (_waits.Count == 0) return;
            StateWaiter.Run(this, _waits, MyInvocation.BoundParameters.ContainsKey(nameof(Timeout)) ? Timeout : (TimeSpan?)null, reached =>
            {
                if (PassThru) WriteObject(reached.Last, enumerateCollection: true);
            });
        }
    }
}
