using System;
using ServiceKeeper.Engine.Configuration;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Configuration
{
    public sealed class TimeValueTests
    {
        [Theory]
        [InlineData("500ms", 500)]
        [InlineData("10s", 10_000)]
        [InlineData("5m", 300_000)]
        [InlineData("24h", 86_400_000)]
        [InlineData("2d", 172_800_000)]
        [InlineData("1.5s", 1_500)]
        [InlineData("0.25m", 15_000)]
        [InlineData(" 30s ", 30_000)]
        [InlineData("0", 0)]
        public void Parse_WithUnit_GivesThatDuration(string text, long milliseconds)
        {
            Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), TimeValue.Parse(text));
        }

        [Theory]
        [InlineData("700", 700)]
        [InlineData("30000", 30_000)]
        public void Parse_BareNumber_IsMillisecondsAsInSafeKit(string text, long milliseconds)
        {
            Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), TimeValue.Parse(text));
        }

        [Theory]
        [InlineData("")]
        [InlineData("s")]
        [InlineData("2sec")]
        [InlineData("10 s")]
        [InlineData("-1s")]
        [InlineData("1e3ms")]
        [InlineData("1,5s")]
        [InlineData(".5s")]
        [InlineData("10S")]
        [InlineData("1y")]
        [InlineData("99999999999999999999d")]
        public void TryParse_WithBadText_Fails(string text)
        {
            Assert.False(TimeValue.TryParse(text, out _));
        }

        [Fact]
        public void TryParse_Null_Fails()
        {
            Assert.False(TimeValue.TryParse(null, out _));
        }

        [Fact]
        public void Parse_WithBadText_ThrowsFormatExceptionThatListsTheUnits()
        {
            var ex = Assert.Throws<FormatException>(() => TimeValue.Parse("2sec"));
            Assert.Contains("'2sec'", ex.Message);
            Assert.Contains("ms, s, m, h or d", ex.Message);
        }

        [Theory]
        [InlineData(1_500, "1500ms")]
        [InlineData(300, "300ms")]
        [InlineData(90_000, "90s")]
        [InlineData(300_000, "5m")]
        [InlineData(7_200_000, "2h")]
        [InlineData(86_400_000, "1d")]
        [InlineData(0, "0ms")]
        public void Format_UsesTheLargestExactUnit(long milliseconds, string expected)
        {
            Assert.Equal(expected, TimeValue.Format(TimeSpan.FromMilliseconds(milliseconds)));
        }

        [Fact]
        public void Format_SubMillisecond_WritesDecimalMilliseconds()
        {
            Assert.Equal("0.5ms", TimeValue.Format(TimeSpan.FromTicks(5_000)));
        }

        [Theory]
        [InlineData(1L)]
        [InlineData(5_000L)]
        [InlineData(15_000_000L)]
        [InlineData(864_000_000_001L)]
        [InlineData(3_155_378_975_999_999_999L)]
        public void Format_ThenParse_GivesTheSameTicks(long ticks)
        {
            var value = TimeSpan.FromTicks(ticks);
            Assert.Equal(value, TimeValue.Parse(TimeValue.Format(value)));
        }

        [Fact]
        public void Format_Negative_Throws()
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => TimeValue.Format(TimeSpan.FromSeconds(-1)));
        }
    }
}
