using System;
using System.Globalization;
using System.Management.Automation;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Lets a TimeSpan parameter take a number of seconds (-Timeout 90) as well as a TimeSpan or its text
    /// (-Timeout 00:01:30, -Timeout (New-TimeSpan -Minutes 2)). Without it PowerShell converts 90 to
    /// 90 ticks. Negative durations are refused.
    /// </summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class TimeSpanOrSecondsAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            var value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
            TimeSpan result;
            switch (value)
            {
                case TimeSpan span:
                    result = span;
                    break;
                case int _:
                case long _:
                case short _:
                case byte _:
                case uint _:
                case ulong _:
                case double _:
                case float _:
                case decimal _:
                    result = Seconds(Convert.ToDouble(value, CultureInfo.InvariantCulture));
                    break;
                case string text when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds):
                    result = Seconds(seconds);
                    break;
                case string text when TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var parsed):
                    result = parsed;
                    break;
                default:
                    throw new ArgumentTransformationMetadataException(
                        $"'{value}' is neither a number of seconds nor a TimeSpan (for example 90 or 00:01:30).");
            }
            if (result < TimeSpan.Zero)
                throw new ArgumentTransformationMetadataException($"The duration must not be negative: {result}.");
            return result;
        }

        private static TimeSpan Seconds(double seconds)
        {
            if (double.IsNaN(seconds) || double.IsInfinity(seconds) || Math.Abs(seconds) > TimeSpan.MaxValue.TotalSeconds)
                throw new ArgumentTransformationMetadataException($"{seconds} seconds is not a usable duration.");
            return TimeSpan.FromSeconds(seconds);
        }
    }
}
