// Frames whose data is sent from where it lies (a large write's tail): the same tag as a copied frame, the same bytes
// on the wire, and the buffer is free again once the connection sent or dropped every frame pointing into it.
using System;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Engine.Replication;
using Xunit;

namespace ServiceKeeper.Engine.Tests.Replication
{
    public sealed class FrameTailTests
    {
        [Theory]
        [InlineData(0, 1)]
        [InlineData(13, 100)]
        [InlineData(113, 256 << 10)]
        [InlineData(64, 1000001)]
        public void StreamingFrameMac_GivesTheTagOfChaCha20Poly1305OverTheConcatenation(int head, int tail)
        {
            if (!OperatingSystem.IsLinux()) return; // the streaming MAC is Linux's (libcrypto); elsewhere frames are copied
            var key = RandomNumberGenerator.GetBytes(32);
            var data = RandomNumberGenerator.GetBytes(head + tail);
            var nonce = new byte[12];
            nonce[0] = 42;
            var expected = new byte[16];
            using (var aead = new ChaCha20Poly1305(key)) aead.Encrypt(nonce, ReadOnlySpan<byte>.Empty, Span<byte>.Empty, expected, data);
            using var mac = StreamingFrameMac.TryCreate(key);
            Assert.NotNull(mac);
            var tag = new byte[16];
            for (int i = 0; i < 2; i++)
            {
                mac.Tag(nonce, data.AsSpan(0, head), data.AsSpan(head), tag);
                Assert.Equal(expected, tag);
            }
        }

        [Fact]
        public async Task TailFrames_ArriveAsCopiedFramesWould_InOrderWithOthers()
        {
            var (a, b) = Pair();
            using var _ = a;
            using var __ = b;
            var lease = new TailLease();
            var random = new Random(7);
            var sizes = new[] { 1, 4096, 256 << 10, (256 << 10) + 5, 1 << 20 };
            var sent = new byte[sizes.Length][];
            for (int i = 0; i < sizes.Length; i++)
            {
                sent[i] = new byte[sizes[i]];
                random.NextBytes(sent[i]);
                var f = new OutFrame(MsgType.Progress, 64);
                f.U32((uint)i);
                f.U32((uint)sizes[i]);
                f.SetTail(sent[i], lease);
                Assert.True(a.Send(f));
                var plain = new OutFrame(MsgType.Progress, 64);
                plain.U32(1000u + (uint)i);
                Assert.True(a.Send(plain, inline: i % 2 == 0));
            }
            for (int i = 0; i < sizes.Length; i++)
            {
                Assert.Equal(MsgType.Progress, b.Read(out var payload));
                var r = new PayloadReader(payload);
                Assert.Equal((uint)i, r.U32());
                Assert.Equal(sent[i], r.Raw((int)r.U32()).ToArray());
                Assert.True(r.End);
                Assert.Equal(MsgType.Progress, b.Read(out payload));
                Assert.Equal(1000u + (uint)i, new PayloadReader(payload).U32());
            }
            var returned = Task.Run(lease.Wait);
            Assert.True(await Completes(returned, TimeSpan.FromSeconds(10)), "the lease was not returned after the frames were sent");
        }

        [Fact]
        public async Task TailLease_IsReturned_WhenTheConnectionClosesWithFramesStillQueued()
        {
            var (a, b) = Pair();
            using var _ = b;
            var lease = new TailLease();
            var data = new byte[1 << 20];
            // The peer never reads: the socket buffers fill and most frames stay queued.
            for (int i = 0; i < 32; i++)
            {
                var f = new OutFrame(MsgType.Progress, 16);
                f.U32((uint)data.Length);
                f.SetTail(data, lease);
                a.Send(f);
            }
            var waiting = Task.Run(lease.Wait);
            Assert.False(await Completes(waiting, TimeSpan.FromMilliseconds(200)), "frames that cannot have been sent released their buffer");
            a.Close(null);
            Assert.True(await Completes(waiting, TimeSpan.FromSeconds(10)), "closing the connection did not release the queued frames");
        }

        /// <summary>True when <paramref name="task"/> completes within <paramref name="within"/>.</summary>
        private static async Task<bool> Completes(Task task, TimeSpan within) => await Task.WhenAny(task, Task.Delay(within)) == task;

        private static (FrameConnection A, FrameConnection B) Pair()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            client.Connect((IPEndPoint)listener.LocalEndpoint);
            var server = listener.AcceptSocket();
            var k1 = RandomNumberGenerator.GetBytes(32);
            var k2 = RandomNumberGenerator.GetBytes(32);
            return (new FrameConnection(client, (k1, k2), "a", _ => { }), new FrameConnection(server, (k2, k1), "b", _ => { }));
        }
    }
}
