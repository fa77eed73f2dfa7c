using System.Collections.Generic;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Base of Start-, Stop- and Restart-SKModule: exact module names (from the pipeline, as strings or by
    /// the Name/Module property), an optional -Node (by property name, so rows of Get-SKState act on their
    /// node), -PassThru. Each module gets one ShouldProcess and one command; what the command means in the
    /// module's state is the engine's decision.
    /// </summary>
    public abstract class SKModuleLifecycleCommandBase : SKModuleCommandBase
    {
        /// <summary>Exact module names.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Module")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(ModuleNameCompleter))]
        public override string[]? Name { get; set; }

        /// <summary>One node of the module; all its nodes when not given.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeNameCompleter))]
        public string? Node { get; set; }

        /// <summary>Write the module's states after the command.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        /// <summary>One of <see cref="ModuleCommands"/>.</summary>
        protected abstract string Command { get; }

        /// <summary>The ShouldProcess action: "Start", "Stop", "Restart".</summary>
        protected abstract string Action { get; }

        protected override void ProcessRecord()
        {
            foreach (var name in Name!)
            {
                var target = Node == null ? $"module '{name}' on all its nodes" : $"module '{name}' on node '{Node}'";
                if (!ShouldProcess(target, Action)) continue;
                var request = NewRequest();
                if (TryCall((client, ct) => client.SendCommandAsync(name, request, ct), name, out var states))
                    OnAnswered(name, states);
            }
        }

        /// <summary>The command for one module; a cmdlet with more switches (Stop-SKModule -Drain) adds them.</summary>
        protected virtual ModuleCommandRequest NewRequest() => new ModuleCommandRequest { Command = Command, Node = Node };

        /// <summary>The engine accepted the command for <paramref name="module"/> and answered its states.</summary>
        protected virtual void OnAnswered(string module, List<ModuleState> states)
        {
            if (PassThru) WriteObject(states, enumerateCollection: true);
        }
    }
}
