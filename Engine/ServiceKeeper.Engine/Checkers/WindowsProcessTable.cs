using System;
using System.Collections.Generic;
using System.Diagnostics;

namespace ServiceKeeper.Engine.Checkers
{
    /// <summary>
    /// <see cref="IProcessTable"/> on Windows: names without ".exe". The command line of other processes
    /// needs WMI or reading their PEB, so it is the name: argregex can only match the name there.
    /// </summary>
    public sealed class WindowsProcessTable : IProcessTable
    {
        public IReadOnlyList<ProcessEntry> Snapshot()
        {
            var processes = new List<ProcessEntry>();
            foreach (var process in Process.GetProcesses())
            {
                try
                {
                    var name = process.ProcessName;
                    processes.Add(new ProcessEntry(process.Id, name, name));
                }
                catch (InvalidOperationException)
                {
                    // Exited while we listed it.
                }
                finally
                {
                    process.Dispose();
                }
            }
            return processes;
        }
    }
}
