using System;
using System.Collections.Generic;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>Starts modules on their nodes (or one node); -Wait waits until they are settled, showing resynchronisation.</summary>
    [Cmdlet(VerbsLifecycle.Start, "SKModule", SupportsShouldProcess = true)]
    [OutputType(typeof(ModuleState))]
    public sealed class StartSKModuleCommand : SKModuleLifecycleCommandBase
    {
        private readonly List<WaitTarget> _waits = new List<WaitTarget>();

        /// <summary>Wait until every node started is Ready (WAIT included, with a warning).</summary>
        [Parameter]
        public SwitchParameter Wait { get; set; }

        /// <summary>How long -Wait waits at most (seconds or a TimeSpan); implies -Wait. No limit by default.</summary>
        [Parameter]
        [TimeSpanOrSeconds]
        public TimeSpan Timeout { get; set; }

        protected override string Command => ModuleCommands.Start;
        protected override string Action => "Start";

        private bool Waiting => Wait.IsPresent || MyInvocation.BoundParameters.ContainsKey(nameof(Timeout));

        protected override void OnAnswered(string module, List<ModuleState> states)
        {
            // Wait once every module is started: a pipeline of modules starts them all, then waits for all.
            if (Waiting) _waits.Add(WaitTarget.Started(module, Node, states));
            else base.OnAnswered(module, states);
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
