// Unique lab prefixes, so namespace tests can run in parallel.
using System;
using System.Linq;

namespace ServiceKeeper.Engine.Tests.Testing;

internal static class LabNames
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    /// <summary>"skt" + 5 random characters: 8 characters, within NetLab's 9.</summary>
    public static string NewPrefix() =>
        "skt" + new string(Enumerable.Range(0, 5).Select(_ => Alphabet[Random.Shared.Next(Alphabet.Length)]).ToArray());
}
