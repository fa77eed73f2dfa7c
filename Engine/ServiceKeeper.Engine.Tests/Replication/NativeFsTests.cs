// The pure helpers of NativeFs.
using System.Linq;
using ServiceKeeper.Engine.Replication;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Replication
{
    public sealed class NativeFsTests
    {
        [Fact]
        public void Coalesce_MergesRangesThatFollowEachOther_KeepsGapsAndOrder()
        {
            var ranges = new (long, long)[] { (0, 4096), (4096, 4096), (8192, 4096), (65536, 4096), (0, 0), (69632, 8192), (4096, 4096) };

            var merged = NativeFs.Coalesce(ranges).ToList();

            Assert.Equal(new (long, long)[] { (0, 12288), (65536, 12288), (4096, 4096) }, merged);
        }

        [Fact]
        public void Coalesce_OfNothingOrEmptyRanges_IsEmpty()
        {
            Assert.Empty(NativeFs.Coalesce([]));
            Assert.Empty(NativeFs.Coalesce([(100, 0), (200, -1)]));
        }
    }
}
