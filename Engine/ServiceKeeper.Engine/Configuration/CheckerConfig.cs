// <check>: each checker sets a resource "kind.ident" to init/up/down and, when it goes down, the module
// takes the checker's action. Default actions follow REFERENCE.md: tcp and custom restart the
// application, ip fails over (stopstart), ping/intf/module/splitbrain wait for the resource.
using System;
using System.Collections.Generic;
using System.Net;

namespace ServiceKeeper.Engine.Configuration
{
    public enum CheckAction
    {
        /// <summary>Only set the resource (for failover rules).</summary>
        NoAction,
        /// <summary>Restart the application on this node.</summary>
        Restart,
        /// <summary>Stop the module here and start it again; in a mirror this fails over.</summary>
        StopStart,
        /// <summary>Stop the module on this node.</summary>
        Stop,
        /// <summary>Hold the module in WAIT until the resource is up again.</summary>
        Wait,
    }

    /// <summary>when: on which nodes a checker runs.</summary>
    public enum CheckWhen
    {
        /// <summary>"prim": on the mirror's primary only.</summary>
        Prim,
        /// <summary>"both": on every node of the module; the only choice in a farm.</summary>
        Both,
    }

    public abstract class CheckerConfig
    {
        private protected CheckerConfig(CheckAction defaultAction, CheckWhen defaultWhen)
        {
            Action = defaultAction;
            When = defaultWhen;
        }

        /// <summary>The element name: tcp, ping, intf, ip, custom, module, splitbrain.</summary>
        public abstract string Kind { get; }

        public string Ident { get; set; } = "";

        /// <summary>The reader sets Both in a farm.</summary>
        public CheckWhen When { get; set; }

        public CheckAction Action { get; set; }

        /// <summary>The resource this checker sets, as failover rules and Get-SKState name it.</summary>
        public string ResourceName => Kind + "." + Ident;
    }

    /// <summary>A checker that probes on a timer (&lt;to interval timeout&gt;).</summary>
    public abstract class PeriodicCheckerConfig : CheckerConfig
    {
        public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

        private protected PeriodicCheckerConfig(CheckAction defaultAction, CheckWhen defaultWhen)
            : base(defaultAction, defaultWhen)
        {
        }

        public TimeSpan Interval { get; set; } = DefaultInterval;

        /// <summary>How long one probe may take before it counts as a failure.</summary>
        public TimeSpan Timeout { get; set; } = DefaultTimeout;
    }

    /// <summary>A TCP connect to the application's port.</summary>
    public sealed class TcpCheckConfig : PeriodicCheckerConfig
    {
        public TcpCheckConfig() : base(CheckAction.Restart, CheckWhen.Prim) { }
        public override string Kind => "tcp";
        /// <summary>IP address or host name.</summary>
        public string Address { get; set; } = "";
        public int Port { get; set; }
    }

    /// <summary>An ICMP echo, usually to the gateway: a node that lost it waits rather than serves.</summary>
    public sealed class PingCheckConfig : PeriodicCheckerConfig
    {
        public PingCheckConfig() : base(CheckAction.Wait, CheckWhen.Both) { }
        public override string Kind => "ping";
        /// <summary>IP address or host name.</summary>
        public string Address { get; set; } = "";
    }

    /// <summary>The link state of the NIC that holds a local address.</summary>
    public sealed class InterfaceCheckConfig : PeriodicCheckerConfig
    {
        public InterfaceCheckConfig() : base(CheckAction.Wait, CheckWhen.Both) { }
        public override string Kind => "intf";
        public IPAddress LocalAddress { get; set; } = IPAddress.None;
    }

    /// <summary>That an address (usually the VIP) is still configured on this node.</summary>
    public sealed class IpCheckConfig : PeriodicCheckerConfig
    {
        public IpCheckConfig() : base(CheckAction.StopStart, CheckWhen.Prim) { }
        public override string Kind => "ip";
        public IPAddress Address { get; set; } = IPAddress.None;
    }

    /// <summary>A program from the module's bin/ that runs for the module's lifetime and sets the resource itself.</summary>
    public sealed class CustomCheckConfig : CheckerConfig
    {
        public CustomCheckConfig() : base(CheckAction.Restart, CheckWhen.Prim) { }
        public override string Kind => "custom";
        public string Exec { get; set; } = "";
        public string Arguments { get; set; } = "";
    }

    /// <summary>Another module (local, or on another cluster's engine) must be up; resource module.NAME.</summary>
    public sealed class ModuleCheckConfig : PeriodicCheckerConfig
    {
        public ModuleCheckConfig() : base(CheckAction.Wait, CheckWhen.Both) { }
        public override string Kind => "module";
        /// <summary>The watched module; also the ident.</summary>
        public string ModuleName { get => Ident; set => Ident = value; }
        /// <summary>Engine to ask (IP or host name); null: this node's engine.</summary>
        public string? Address { get; set; }
        /// <summary>Its API port; null: the default API port.</summary>
        public int? Port { get; set; }
    }

    /// <summary>
    /// Keeps an isolated mirror node from going ALONE: before taking over from a lost peer, the node must
    /// reach a witness. With exec="ping" the arguments are the witness addresses.
    /// </summary>
    public sealed class SplitBrainCheckConfig : CheckerConfig
    {
        public const string PingExec = "ping";

        public SplitBrainCheckConfig() : base(CheckAction.Wait, CheckWhen.Both) { }
        public override string Kind => "splitbrain";
        public string Exec { get; set; } = PingExec;
        public string Arguments { get; set; } = "";

        /// <summary>The witness addresses when <see cref="Exec"/> is "ping"; empty otherwise.</summary>
        public IReadOnlyList<IPAddress> Witnesses
        {
            get
            {
                var witnesses = new List<IPAddress>();
                if (Exec != PingExec)
                    return witnesses;
                foreach (var word in Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    if (ConfigSyntax.TryParseIp(word, out var address))
                        witnesses.Add(address);
                return witnesses;
            }
        }
    }
}
