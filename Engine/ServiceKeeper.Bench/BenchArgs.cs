// Reading a bench's command line: the value after an option, and whole numbers in a range.
using System;
using System.Globalization;

namespace ServiceKeeper.Bench;

internal static class BenchArgs
{
    /// <summary>The value after the option at <paramref name="i"/>, which then points at that value.</summary>
    public static string Value(string[] args, ref int i) =>
        i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");

    /// <summary>The whole number after the option at <paramref name="i"/>, in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static int Int(string[] args, ref int i, int min, int max)
    {
        var text = Value(args, ref i);
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n : throw new ArgumentException($"'{text}' is not a number in {min}..{max}.");
    }
}
