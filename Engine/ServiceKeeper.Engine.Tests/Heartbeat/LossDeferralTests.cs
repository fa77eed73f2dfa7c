// HeartbeatChannel.ShouldEvaluate: never judge a peer while its heartbeats may sit unread in a socket,
// but never let a flood postpone the judgement for long.
using System;
using ServiceKeeper.Engine.Heartbeat;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Heartbeat
{
    public class LossDeferralTests
    {
        private static readonly TimeSpan Max = TimeSpan.FromMilliseconds(250);

        private static TimeSpan Ms(int ms) => TimeSpan.FromMilliseconds(ms);

        [Fact]
        public void NoBacklog_EvaluatesNow()
        {
            TimeSpan? since = null;

            Assert.True(HeartbeatChannel.ShouldEvaluate(false, Ms(100), ref since, Max));
            Assert.Null(since);
        }

        [Fact]
        public void Backlog_DefersUntilDrained()
        {
            TimeSpan? since = null;

            Assert.False(HeartbeatChannel.ShouldEvaluate(true, Ms(100), ref since, Max));
            Assert.False(HeartbeatChannel.ShouldEvaluate(true, Ms(105), ref since, Max));
            Assert.True(HeartbeatChannel.ShouldEvaluate(false, Ms(110), ref since, Max));
            Assert.Null(since);
        }

        [Fact]
        public void EndlessBacklog_EvaluatesAfterTheMaximumDeferral()
        {
            TimeSpan? since = null;
            var now = Ms(1000);
            while (!HeartbeatChannel.ShouldEvaluate(true, now, ref since, Max)) now += Ms(5);

            Assert.Equal(Ms(1000) + Max, now);
        }
    }
}
