// [Fact] for tests that build network namespaces. They run (and fail if the host cannot) unless
// SK_SKIP_NETNS=1, which skips them with the reason.
using System;
using ServiceKeeper.Testing;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Testing;

public sealed class NetnsFactAttribute : FactAttribute
{
    public NetnsFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("SK_SKIP_NETNS") == "1")
        {
            Skip = NetLab.IsSupported(out var reason)
                ? "SK_SKIP_NETNS=1 (network namespace tests switched off)"
                : $"SK_SKIP_NETNS=1 and network namespaces are unavailable here: {reason}";
        }
    }
}
