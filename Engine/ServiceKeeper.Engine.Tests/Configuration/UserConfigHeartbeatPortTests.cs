using ServiceKeeper.Engine.Configuration;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Configuration
{
    public class UserConfigHeartbeatPortTests
    {
        [Theory]
        [InlineData("<service mode=\"mirror\">\n<heart port=\"4800\"/>\n</service>", "share the engine's UDP port 9454")]
        [InlineData("<service mode=\"mirror\">\n<heart pulse=\"5ms\" timeout=\"1s\"/>\n</service>", "shorter than 10ms")]
        public void HeartSettingsTheEngineCannotHonour_AreRefusedWithLine(string xml, string reason)
        {
            var ex = Assert.Throws<ConfigurationException>(() => UserConfigFile.Parse(xml, "userconfig.xml"));

            Assert.Equal(2, ex.Line);
            Assert.Contains(reason, ex.Reason);
        }

        [Fact]
        public void HeartOnTheEnginePort_IsAccepted()
        {
            var config = UserConfigFile.Parse("<service mode=\"mirror\"><heart port=\"9454\"/></service>", "userconfig.xml");

            Assert.Equal(9454, config.Heart!.Port);
        }
    }
}
