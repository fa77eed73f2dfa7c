// Durations in configuration files: "500ms", "10s", "5m", "24h", "1d", "1.5s".
// A bare number is milliseconds, as SafeKit's pulse="700" timeout="30000" are, so files written for
// it keep their meaning here.
using System;
using System.Globalization;
using System.Text.RegularExpressions;

namespace ServiceKeeper.Engine.Configuration
{
    public static partial class TimeValue
    {
        public const string Expected = "a number with a unit ms, s, m, h or d (500ms, 10s, 24h); a bare number is milliseconds";

        private static readonly (string Unit, long Ticks)[] Units =
        {
            ("d", TimeSpan.TicksPerDay),
            ("h", TimeSpan.TicksPerHour),
            ("m", TimeSpan.TicksPerMinute),
            ("s", TimeSpan.TicksPerSecond),
            ("ms", TimeSpan.TicksPerMillisecond),
        };

        /// <exception cref="FormatException">The text is not a non-negative time value.</exception>
        public static TimeSpan Parse(string text)
        {
            if (!TryParse(text, out var value))
                throw new FormatException($"'{text}' is not a time value: expected {Expected}.");
            return value;
        }

        public static bool TryParse(string? text, out TimeSpan value)
        {
            value = default;
            if (text == null)
                return false;
            var match = Pattern().Match(text.Trim());
            if (!match.Success)
                return false;
            if (!decimal.TryParse(match.Groups["number"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
                return false;
            long unitTicks = TimeSpan.TicksPerMillisecond;
            string unit = match.Groups["unit"].Value;
            foreach (var (name, ticks) in Units)
                if (name == unit)
                    unitTicks = ticks;
            // Compare before multiplying: decimal overflows far above TimeSpan's range.
            if (number > (decimal)TimeSpan.MaxValue.Ticks / unitTicks)
                return false;
            value = TimeSpan.FromTicks((long)Math.Round(number * unitTicks));
            return true;
        }

        /// <summary>The shortest exact text: the largest unit that divides the value (90s, 5m, 1d, 1500ms).</summary>
        public static string Format(TimeSpan t)
        {
            if (t < TimeSpan.Zero)
                throw new ArgumentOutOfRangeException(nameof(t), t, "Configuration time values are never negative.");
            if (t == TimeSpan.Zero)
                return "0ms";
            foreach (var (unit, ticks) in Units)
                if (t.Ticks % ticks == 0)
                    return (t.Ticks / ticks).ToString(CultureInfo.InvariantCulture) + unit;
            return ((decimal)t.Ticks / TimeSpan.TicksPerMillisecond).ToString(CultureInfo.InvariantCulture) + "ms";
        }

        [GeneratedRegex(@"^(?<number>[0-9]+(\.[0-9]+)?)(?<unit>ms|s|m|h|d)?$", RegexOptions.CultureInvariant)]
        private static partial Regex Pattern();
    }
}
