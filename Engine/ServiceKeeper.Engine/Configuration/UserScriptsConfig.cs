// <user>: how the module's scripts are stopped and the variables they get in their environment.
using System;
using System.Collections.Generic;

namespace ServiceKeeper.Engine.Configuration
{
    public sealed class UserScriptsConfig
    {
        public static readonly TimeSpan DefaultNiceStopTimeout = TimeSpan.FromSeconds(300);
        public static readonly TimeSpan DefaultForceStopTimeout = TimeSpan.FromSeconds(300);

        /// <summary>Time a graceful stop script has before it is run again with "force".</summary>
        public TimeSpan NiceStopTimeout { get; set; } = DefaultNiceStopTimeout;

        /// <summary>Time the forced stop has before its processes are killed.</summary>
        public TimeSpan ForceStopTimeout { get; set; } = DefaultForceStopTimeout;

        public List<UserVariable> Variables { get; set; } = new();
    }

    public sealed class UserVariable
    {
        public string Name { get; set; } = "";
        public string Value { get; set; } = "";
    }
}
