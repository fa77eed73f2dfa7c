// The end of a bench run: its report written as <name>.md and <name>.csv (and a plot, <name>.png) in the out
// folder, and the Markdown shown on the console.
using System;
using System.Collections.Generic;
using System.IO;

namespace ServiceKeeper.Bench;

internal static class BenchReport
{
    /// <summary>
    /// Writes the report into <paramref name="directory"/> and prints it. A plot that fails is reported and the tables
    /// stay: the figures matter, the picture only shows them.
    /// </summary>
    public static void Write(TextWriter output, string directory, string name, string markdown, string csv, Action<string>? plot = null)
    {
        Directory.CreateDirectory(directory);
        var markdownPath = Path.Combine(directory, name + ".md");
        File.WriteAllText(markdownPath, markdown);
        File.WriteAllText(Path.Combine(directory, name + ".csv"), csv);
        var written = new List<string> { markdownPath, name + ".csv" };
        if (plot != null)
        {
            try
            {
                plot(Path.Combine(directory, name + ".png"));
                written.Add(name + ".png");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                output.WriteLine("Plot failed (table written anyway): " + e.Message);
            }
        }
        output.WriteLine(markdown);
        output.WriteLine($"Wrote {string.Join(", ", written[..^1])} and {written[^1]}.");
    }
}
