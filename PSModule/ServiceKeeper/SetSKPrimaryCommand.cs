using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Makes a node the primary of a mirror module (the engine's "prim"). The engine refuses a node whose
    /// data is not up to date (DataNotUpToDate); -Force overrides that check only, and then asks for
    /// confirmation as a high-impact change does, because the other node's newer changes are lost.
    /// </summary>
    [Cmdlet(VerbsCommon.Set, "SKPrimary", SupportsShouldProcess = true)]
    [OutputType(typeof(ModuleState))]
    public sealed class SetSKPrimaryCommand : SKSingleModuleCommandBase
    {
        private bool _yesToAll;
        private bool _noToAll;

        /// <summary>The node to make primary.</summary>
        [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NodeNameCompleter))]
        public string Node { get; set; } = "";

        /// <summary>Make the node primary even though its data is not up to date.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary>Write the module's states after the command.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord()
        {
            var target = TargetOf(Node);
            if (!ShouldProcess(target, Force ? "Make primary even if its data is not up to date" : "Make primary")) return;
            if (Force && ForceNeedsConfirmation() && !ShouldContinue(
                    $"Make {target} primary even if its data is not up to date? Changes made on the other node since they were last in sync are lost, and the other node is fully resynchronised from this one.",
                    "Force a primary", ref _yesToAll, ref _noToAll))
                return;
            var request = new ModuleCommandRequest { Command = ModuleCommands.Prim, Node = Node, Force = Force.IsPresent };
            if (TryCall((client, ct) => client.SendCommandAsync(Name, request, ct), Name, out var states) && PassThru)
                WriteObject(states, enumerateCollection: true);
        }

        /// <summary>
        /// -Force is a high-impact change while the cmdlet's ConfirmImpact is Medium: confirm it as
        /// ConfirmImpact High would, unless -Confirm was given (ShouldProcess asked, or was told not to ask)
        /// or $ConfirmPreference is None.
        /// </summary>
        private bool ForceNeedsConfirmation()
        {
            if (MyInvocation.BoundParameters.ContainsKey("Confirm")) return false;
            // A $ConfirmPreference set in a child scope is a new, untyped variable: 'None' is then a string.
            var preference = SessionState.PSVariable.GetValue("ConfirmPreference");
            return !LanguagePrimitives.TryConvertTo(preference, out ConfirmImpact impact) || impact != ConfirmImpact.None;
        }
    }
}
