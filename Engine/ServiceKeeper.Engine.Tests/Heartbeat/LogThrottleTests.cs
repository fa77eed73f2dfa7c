using System;
using ServiceKeeper.Engine.Heartbeat;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Heartbeat
{
    public class LogThrottleTests
    {
        private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

        [Fact]
        public void OneLinePerSourcePerInterval_ThenReportsWhatItSwallowed()
        {
            var throttle = new LogThrottle(Interval);

            Assert.True(throttle.ShouldLog("198.18.0.9", TimeSpan.Zero, out var first));
            Assert.Equal(0, first);
            for (var i = 1; i <= 5; i++) Assert.False(throttle.ShouldLog("198.18.0.9", TimeSpan.FromSeconds(i), out _));
            Assert.True(throttle.ShouldLog("198.18.0.7", TimeSpan.FromSeconds(5), out _));
            Assert.True(throttle.ShouldLog("198.18.0.9", Interval, out var suppressed));
            Assert.Equal(5, suppressed);
        }

        [Fact]
        public void ManySpoofedSources_StayWithinCapacity_QuietOnesAreForgotten()
        {
            var throttle = new LogThrottle(Interval, capacity: 4);
            for (var i = 0; i < 4; i++) Assert.True(throttle.ShouldLog($"s{i}", TimeSpan.Zero, out _));

            Assert.False(throttle.ShouldLog("s4", TimeSpan.FromSeconds(1), out _));
            Assert.True(throttle.ShouldLog("s4", Interval, out _));
        }
    }
}
