using System.Net;
using ServiceKeeper.Engine.Hosting;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Hosting
{
    public class EngineOptionsTests
    {
        [Fact]
        public void Parse_AllOptions_AreTaken()
        {
            var options = EngineOptions.Parse(["--home", "/tmp/skx", "--node-name", "n1", "--listen", "198.18.0.1:9453", "--listen", "[::1]:9999"]);

            Assert.Equal("/tmp/skx", options.Home);
            Assert.Equal("n1", options.NodeName);
            Assert.Equal([IPEndPoint.Parse("198.18.0.1:9453"), IPEndPoint.Parse("[::1]:9999")], options.Listen);
        }

        [Fact]
        public void Parse_NoListen_DefaultsToAllAddressesOn9453()
        {
            var options = EngineOptions.Parse(["--node-name", "n1"]);

            Assert.Equal(new IPEndPoint(IPAddress.Any, 9453), Assert.Single(options.Listen));
        }

        [Theory]
        [InlineData("--listen", "198.18.0.1", "is not ADDRESS:PORT")]
        [InlineData("--node-name", "bad name", "is not a valid node name")]
        [InlineData("--bogus", "x", "unknown option '--bogus'")]
        public void Parse_BadArgument_SaysWhatIsWrong(string option, string value, string expected)
        {
            var ex = Assert.Throws<UsageException>(() => EngineOptions.Parse([option, value]));
            Assert.Contains(expected, ex.Message);
        }

        [Fact]
        public void Parse_OptionWithoutValue_IsRefused()
        {
            var ex = Assert.Throws<UsageException>(() => EngineOptions.Parse(["--home"]));
            Assert.Contains("--home needs a value", ex.Message);
        }
    }
}
