// <errd>: processes the engine watches, and what it does when their count leaves [atleast, atmax].
using System;
using System.Collections.Generic;

namespace ServiceKeeper.Engine.Configuration
{
    /// <summary>When a process is watched.</summary>
    public enum ProcessClass
    {
        /// <summary>"prim": on the mirror's primary only (where the application runs).</summary>
        Prim,
        /// <summary>"both": wherever the module runs; the only class in a farm.</summary>
        Both,
    }

    public sealed class ErrdConfig
    {
        public static readonly TimeSpan DefaultPollTimer = TimeSpan.FromSeconds(10);

        /// <summary>How often the process table is scanned.</summary>
        public TimeSpan PollTimer { get; set; } = DefaultPollTimer;

        public List<ProcessMonitorConfig> Processes { get; set; } = new();
    }

    public sealed class ProcessMonitorConfig
    {
        public const CheckAction DefaultAction = CheckAction.StopStart;

        /// <summary>Process name, or a .NET regular expression on it when <see cref="IsRegex"/>.</summary>
        public string Name { get; set; } = "";

        /// <summary>regex="on".</summary>
        public bool IsRegex { get; set; }

        /// <summary>argregex: a regular expression the command line arguments must match; null: any.</summary>
        public string? ArgumentsRegex { get; set; }

        public int AtLeast { get; set; } = 1;

        /// <summary>null (atmax="none" or absent): no upper bound.</summary>
        public int? AtMost { get; set; }

        /// <summary>restart, stopstart, stop or noaction; wait makes no sense for a process the module itself starts.</summary>
        public CheckAction Action { get; set; } = DefaultAction;

        /// <summary>The reader defaults it to Prim in a mirror and Both in a farm.</summary>
        public ProcessClass Class { get; set; } = ProcessClass.Prim;
    }
}
