// [Fact] for LinuxDirectory tests: they need Linux and root (chown, mknod); elsewhere they skip and say why.
using System;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Replication
{
    public sealed class LinuxDirectoryFactAttribute : FactAttribute
    {
        public LinuxDirectoryFactAttribute()
        {
            if (!OperatingSystem.IsLinux())
                Skip = "LinuxDirectory needs Linux";
            else if (Environment.UserName != "root")
                Skip = "LinuxDirectory tests need root (chown, mknod)";
        }
    }
}
