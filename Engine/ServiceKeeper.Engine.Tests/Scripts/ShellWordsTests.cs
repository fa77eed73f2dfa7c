using ServiceKeeper.Engine.Scripts;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Scripts;

public sealed class ShellWordsTests
{
    [Theory]
    [InlineData("", new string[0])]
    [InlineData("   ", new string[0])]
    [InlineData("a b  c", new[] { "a", "b", "c" })]
    [InlineData("--url 'http://x/a b' \"say \\\"hi\\\"\"", new[] { "--url", "http://x/a b", "say \"hi\"" })]
    [InlineData("a\\ b 'it''s' \"\"", new[] { "a b", "its", "" })]
    [InlineData("C:\\data \\\\server\\share", new[] { "C:\\data", "\\\\server\\share" })]
    [InlineData("'unterminated rest", new[] { "unterminated rest" })]
    public void Split_FollowsSimpleShellQuoting(string text, string[] expected)
    {
        Assert.Equal(expected, ShellWords.Split(text));
    }
}
