using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Waits until a module is in one of the given states on a node, showing resynchronisation progress;
    /// writes the state reached. Piped rows (Get-SKState) are all waited for together, within one -Timeout.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Wait, "SKState")]
    [OutputType(typeof(ModuleState))]
    public sealed class WaitSKStateCommand : SKSingleModuleCommandBase
    {
        private readonly List<WaitTarget> _waits = new List<WaitTarget>();

        /// <summary>The node to watch.</summary>
        [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeNameCompleter))]
        public string Node { get; set; } = "";

        /// <summary>The states that end the wait.</summary>
        [Parameter(Mandatory = true)]
        [ValidateSet("STOP", "WAIT", "ALONE", "PRIM", "SECOND", "UP")]
        public string[] State { get; set; } = new string[0];

        /// <summary>How long to wait at most, in seconds or as a TimeSpan.</summary>
        [Parameter]
        [TimeSpanOrSeconds]
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);

        /// <summary>Only a Ready (settled) state ends the wait, not a Transient one.</summary>
        [Parameter]
        public SwitchParameter Ready { get; set; }

        protected override void ProcessRecord()
        {
            var states = State.Select(s => s.ToUpperInvariant()).ToArray();
            _waits.Add(WaitTarget.InState(Name, Node, states, Ready.IsPresent));
        }

        protected override void EndProcessing()
        {
            if (_waits.Count == 0) return;
            StateWaiter.Run(this, _waits, Timeout, reached => WriteObject(reached.LastOfWaitedNodes, enumerateCollection: true));
        }
    }
}
