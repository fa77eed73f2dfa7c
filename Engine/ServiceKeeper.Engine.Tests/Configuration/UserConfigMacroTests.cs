using System.Linq;
using System.Net;
using ServiceKeeper.Engine.Configuration;
using Xunit;
using static ServiceKeeper.Engine.Tests.Configuration.ConfigTestFiles;

namespace ServiceKeeper.Engine.Tests.Configuration
{
    public sealed class UserConfigMacroTests
    {
        [Fact]
        public void Macros_AreSubstitutedInAttributesAndText()
        {
            var config = UserConfigFile.Parse("""
                <service mode="mirror" loop_interval="%LOOP%">
                  <macro name="VIP" value="198.18.0.100"/>
                  <heart pulse="%PULSE%"/>
                  <macro name="PULSE" value="250ms"/>
                  <macro name="LOOP" value="6h"/>
                  <vip><interface_list><interface><real_interface>
                    <virtual_addr addr="%VIP%"/>
                  </real_interface></interface></interface_list></vip>
                  <failover><![CDATA[ if (ip.%VIP% == down) then stopstart(); ]]></failover>
                </service>
                """, UserFile);

            Assert.Equal(System.TimeSpan.FromMilliseconds(250), config.Heart!.Pulse);
            Assert.Equal(System.TimeSpan.FromHours(6), config.LoopInterval);
            Assert.Equal(IPAddress.Parse("198.18.0.100"), config.Vip.AllAddresses.Single().Address);
            Assert.Equal(" if (ip.198.18.0.100 == down) then stopstart(); ", config.FailoverRules);
            Assert.Equal("6h", config.Macros["LOOP"]);
        }

        [Fact]
        public void Macros_MayUseOtherMacrosInAnyOrder()
        {
            var config = UserConfigFile.Parse("""
                <service mode="mirror">
                  <macro name="PGDATA" value="%ROOT%/data"/>
                  <macro name="ROOT" value="/var/lib/pgsql"/>
                  <rfs><replicated dir="%PGDATA%"/></rfs>
                </service>
                """, UserFile);

            Assert.Equal("/var/lib/pgsql/data", config.Rfs!.Directories[0].Path);
        }

        [Fact]
        public void Macros_DoublePercentIsALiteralPercentAndALonePercentStays()
        {
            var config = UserConfigFile.Parse("""
                <service mode="mirror">
                  <macro name="X" value="x"/>
                  <user><var name="A" value="%%PATH%% is 100% %X%"/></user>
                </service>
                """, UserFile);

            Assert.Equal("%PATH% is 100% x", config.User.Variables[0].Value);
        }

        [Fact]
        public void Macro_Undefined_NamesTheLineOfItsUseAndTheDefinedOnes()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <macro name="VIP" value="198.18.0.100"/>
                  <macro name="DATA" value="/srv"/>
                  <rfs>
                    <replicated dir="%DATA%/%APP%"/>
                  </rfs>
                </service>
                """, 5, "undefined macro %APP% (defined: DATA, VIP; write %% for a literal '%').");
        }

        [Fact]
        public void Macro_UndefinedInsideText_NamesTheLine()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<failover>\n<![CDATA[ %NOPE% ]]>\n</failover>\n</service>", 3, "undefined macro %NOPE% (no macro is defined");
        }

        [Fact]
        public void Macro_UndefinedInAnotherMacro_NamesTheDefinition()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<macro name=\"A\" value=\"%B%\"/>\n</service>", 2, "undefined macro %B%");
        }

        [Fact]
        public void Macro_ReferringToItself_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<macro name=\"A\" value=\"%B%\"/>\n<macro name=\"B\" value=\"x%A%\"/>\n</service>", 2, "macro 'A' refers to itself: A -> B -> A.");
        }

        [Fact]
        public void Macro_DefinedTwice_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<macro name=\"A\" value=\"1\"/>\n<macro name=\"A\" value=\"2\"/>\n</service>", 3, "macro 'A' is defined twice");
        }

        [Fact]
        public void Macro_WithBadName_IsRefused()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<macro name=\"MY-VIP\" value=\"1\"/>\n</service>", 2, "macro name 'MY-VIP' is not valid");
        }

        [Fact]
        public void Macro_InsideASection_IsAnUnknownElement()
        {
            AssertUserConfigError("<service mode=\"mirror\">\n<heart>\n<macro name=\"A\" value=\"1\"/>\n</heart>\n</service>", 3, "unknown element <macro> in <heart>");
        }

        [Fact]
        public void Macro_ValueIsValidatedAfterSubstitution_AtTheLineOfUse()
        {
            AssertUserConfigError("""
                <service mode="mirror">
                  <macro name="T" value="3 seconds"/>
                  <heart timeout="%T%"/>
                </service>
                """, 3, "'timeout' of <heart> is '3 seconds', not a time value");
        }
    }
}
