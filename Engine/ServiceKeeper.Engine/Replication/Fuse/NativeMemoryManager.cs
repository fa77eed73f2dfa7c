// A Memory<byte> over a native buffer libfuse owns (write data, xattr values): valid only during the
// callback, which is what FsMutation.Data promises. One instance per FUSE thread, re-pointed per call.
using System;
using System.Buffers;

namespace ServiceKeeper.Engine.Replication.Fuse
{
    internal sealed unsafe class NativeMemoryManager : MemoryManager<byte>
    {
        private byte* pointer;
        private int length;

        public Memory<byte> Wrap(byte* data, int size)
        {
            pointer = data;
            length = size;
            return Memory;
        }

        public override Span<byte> GetSpan() => new(pointer, length);

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            if ((uint)elementIndex > (uint)length)
                throw new ArgumentOutOfRangeException(nameof(elementIndex));
            return new MemoryHandle(pointer + elementIndex);
        }

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
