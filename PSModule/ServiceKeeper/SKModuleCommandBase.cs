using System;
using System.Collections.Generic;
using System.Management.Automation;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Base of the cmdlets that act on modules: adds -Name (position 0, from the pipeline by value and
    /// by property name, so <c>Get-SKModule | Remove-SKModule</c> works; alias Module, so the objects of
    /// Get-SKState, Get-SKResource and Get-SKLog bind too; tab-completed from the engine).
    /// A cmdlet that needs -Name mandatory overrides the property with its own [Parameter].
    /// </summary>
    public abstract class SKModuleCommandBase : SKCmdletBase
    {
        /// <summary>Module names; wildcards where the cmdlet says so.</summary>
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Module")]
        [ValidateNotNullOrEmpty]
        [SupportsWildcards]
        [ArgumentCompleter(typeof(ModuleNameCompleter))]
        public virtual string[]? Name { get; set; }

        /// <summary>Items whose module name matches -Name; ModuleNotFound for each exact name with no match.</summary>
        protected List<T> SelectByName<T>(IEnumerable<T> items, Func<T, string> moduleNameOf) =>
            NameFilter.Select(items, moduleNameOf, Name, missing =>
                WriteError(ErrorIds.ModuleNotFound, $"No module named '{missing}' is installed in the cluster.", missing));
    }
}
