// The frame tag of ReplicationProtocol (ChaCha20-Poly1305 with no plaintext, the frame as authenticated data) over
// data in several pieces, so that a large write's bytes are authenticated where libfuse left them instead of being
// copied behind the frame header first. .NET's ChaCha20Poly1305 takes the authenticated data as one span; OpenSSL's
// EVP interface (the library .NET's own implementation calls on Linux) takes it in as many updates as needed and gives
// the same tag (checked by a test against ChaCha20Poly1305).
using System;
using System.IO;
using System.Runtime.InteropServices;

namespace ServiceKeeper.Engine.Replication
{
    internal sealed unsafe partial class StreamingFrameMac : IDisposable
    {
        private const string Library = "libcrypto.so.3";
        private const int EvpCtrlAeadGetTag = 0x10;
        private readonly CipherContext _ctx;

        private StreamingFrameMac(CipherContext ctx) => _ctx = ctx;

        /// <summary>A MAC under <paramref name="key"/>; null where libcrypto 3 cannot be loaded (the sender copies instead).</summary>
        public static StreamingFrameMac? TryCreate(byte[] key)
        {
            if (!OperatingSystem.IsLinux() || key.Length != 32) return null;
            CipherContext? ctx = null;
            try
            {
                ctx = CtxNew();
                if (ctx.IsInvalid) { ctx.Dispose(); return null; }
                fixed (byte* k = key)
                {
                    if (EncryptInit(ctx, ChaCha20Poly1305Cipher(), IntPtr.Zero, k, null) != 1) { ctx.Dispose(); return null; }
                }
                return new StreamingFrameMac(ctx);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                ctx?.Dispose();
                return null;
            }
        }

        /// <summary>The tag of <paramref name="head"/> followed by <paramref name="tail"/> under the 12-byte <paramref name="nonce"/>. One caller at a time.</summary>
        public void Tag(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> head, ReadOnlySpan<byte> tail, Span<byte> tag)
        {
            if (nonce.Length != 12 || tag.Length != 16) throw new ArgumentException("nonce 12 bytes, tag 16 bytes");
            int outLength;
            byte final;
            fixed (byte* n = nonce)
            fixed (byte* h = head)
            fixed (byte* t = tail)
            fixed (byte* g = tag)
            {
                if (EncryptInit(_ctx, IntPtr.Zero, IntPtr.Zero, null, n) != 1
                    || head.Length > 0 && EncryptUpdate(_ctx, null, &outLength, h, head.Length) != 1
                    || tail.Length > 0 && EncryptUpdate(_ctx, null, &outLength, t, tail.Length) != 1
                    || EncryptFinal(_ctx, &final, &outLength) != 1
                    || CtxCtrl(_ctx, EvpCtrlAeadGetTag, 16, g) != 1)
                    throw new IOException("OpenSSL ChaCha20-Poly1305 failed"); // as a broken connection: the sender closes it
            }
        }

        public void Dispose() => _ctx.Dispose();

        /// <summary>An EVP_CIPHER_CTX; freed once no call uses it any more.</summary>
        private sealed class CipherContext() : SafeHandle(IntPtr.Zero, ownsHandle: true)
        {
            public override bool IsInvalid => handle == IntPtr.Zero;

            protected override bool ReleaseHandle()
            {
                CtxFree(handle);
                return true;
            }
        }

        [LibraryImport(Library, EntryPoint = "EVP_CIPHER_CTX_new")]
        private static partial CipherContext CtxNew();

        [LibraryImport(Library, EntryPoint = "EVP_CIPHER_CTX_free")]
        private static partial void CtxFree(IntPtr ctx);

        [LibraryImport(Library, EntryPoint = "EVP_chacha20_poly1305")]
        private static partial IntPtr ChaCha20Poly1305Cipher();

        [LibraryImport(Library, EntryPoint = "EVP_EncryptInit_ex")]
        private static partial int EncryptInit(CipherContext ctx, IntPtr cipher, IntPtr engine, byte* key, byte* iv);

        [LibraryImport(Library, EntryPoint = "EVP_EncryptUpdate")]
        private static partial int EncryptUpdate(CipherContext ctx, byte* output, int* outputLength, byte* input, int inputLength);

        [LibraryImport(Library, EntryPoint = "EVP_EncryptFinal_ex")]
        private static partial int EncryptFinal(CipherContext ctx, byte* output, int* outputLength);

        [LibraryImport(Library, EntryPoint = "EVP_CIPHER_CTX_ctrl")]
        private static partial int CtxCtrl(CipherContext ctx, int type, int arg, byte* ptr);
    }
}
