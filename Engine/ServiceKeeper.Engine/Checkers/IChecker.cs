// A checker watches one thing (a process, a TCP port, an address...) and sets a resource up or down.
using System;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Checkers
{
    public enum ResourceValue { Init, Up, Down }

    /// <summary>A resource flipped: what it is now, why, and what the module should do about a Down.</summary>
    public sealed record ResourceChange(string Resource, ResourceValue Value, CheckAction Action, string Reason, DateTimeOffset At);

    /// <summary>
    /// One checker of a module. <see cref="RunAsync"/> runs until cancelled and calls its callback only when
    /// the resource actually flips (the first call leaves Init). It never throws for what it checks:
    /// a failure to check is a Down with the reason.
    /// </summary>
    public interface IChecker
    {
        /// <summary>class.ident: tcp.db, errd.postgres, splitbrain.witness...</summary>
        string Resource { get; }

        /// <summary>Prim: runs only while this node is primary (mirror); Both: whenever the module runs.</summary>
        CheckWhen When { get; }

        CheckAction Action { get; }

        Task RunAsync(Action<ResourceChange> report, CancellationToken ct);
    }
}
