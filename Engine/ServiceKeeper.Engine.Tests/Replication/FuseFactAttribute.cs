// [Fact] for tests that mount the replicated FUSE file system: they need root and a working FUSE
// (libfuse3, /dev/fuse, fusermount3); elsewhere they skip and say why.
using System;
using ServiceKeeper.Engine.Replication;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Replication
{
    public sealed class FuseFactAttribute : FactAttribute
    {
        public FuseFactAttribute()
        {
            if (!OperatingSystem.IsLinux())
                Skip = "FUSE tests need Linux";
            else if (Environment.UserName != "root")
                Skip = "FUSE tests need root (allow_other, chown, a second user)";
            else if (!ReplicatedMount.IsSupported(out var reason))
                Skip = "FUSE is unavailable here: " + reason;
        }
    }
}
