// Gives fstat, fchmod, fchown and futimens back to an open file whose name is gone (hard_remove).
// The kernel sends GETATTR and SETATTR for them without a file handle, and libfuse's high-level API, which
// works by path, cannot name such a node any more (ESTALE). On a connection ReplicatedMount mounted itself,
// this class sees every request before libfuse (the custom read) and every reply after it (the custom
// writev): it remembers which handles each node has open (OPEN/CREATE replies), and hands one of them to a
// handle-less GETATTR/SETATTR of a node with an open handle, so libfuse calls getattr/chmod/... with that
// handle (fi). libfuse still passes the path when it can name the node, and ReplicatedMount then works by
// path as before (getattr's fstat of the handle reads the same inode); when it cannot (the file's name was
// unlinked or renamed over, whether or not other hard links remain), the path is NULL and ReplicatedMount
// serves the call from the descriptor, replicated under another name of the inode when it has one.
//
// A lent handle is pinned until the reply to the request that borrowed it is written: a RELEASE that comes
// meanwhile leaves its descriptor open, and the last reply closes it (never an fstat on a reused descriptor).
using System.Collections.Generic;
using System.Threading;

namespace ServiceKeeper.Engine.Replication.Fuse
{
    internal sealed unsafe class HandleLender
    {
        private const uint OpGetattr = 3, OpSetattr = 4, OpOpen = 14, OpCreate = 35;
        private const uint GetattrFh = 1;          // fuse_getattr_in.getattr_flags: FUSE_GETATTR_FH
        private const uint SetattrFh = 1 << 6;     // fuse_setattr_in.valid: FATTR_FH
        private const int InHeader = 40, OutHeader = 16, EntryOut = 128;

        private readonly object gate = new();
        private readonly Dictionary<ulong, ulong> opening = new();          // unique -> node (0: CREATE, the node is in the reply)
        private readonly Dictionary<ulong, List<ulong>> handlesOfNode = new();
        private readonly Dictionary<ulong, ulong> nodeOfHandle = new();
        private readonly Dictionary<ulong, ulong> borrowed = new();         // unique -> handle lent to that request
        private readonly Dictionary<ulong, int> lent = new();               // handle -> requests holding it
        private readonly HashSet<ulong> releasedWhileLent = new();
        private int pending; // opening.Count + borrowed.Count, read without the lock on every reply

        /// <summary>A request just read from /dev/fuse (<paramref name="length"/> bytes), before libfuse parses it.</summary>
        public void OnRequest(byte* buffer, nint length)
        {
            if (length < InHeader)
                return;
            uint opcode = *(uint*)(buffer + 4);
            ulong unique = *(ulong*)(buffer + 8);
            ulong node = *(ulong*)(buffer + 16);
            switch (opcode)
            {
                case OpOpen or OpCreate:
                    lock (gate)
                    {
                        opening[unique] = opcode == OpOpen ? node : 0;
                        pending++;
                    }
                    break;
                case OpGetattr or OpSetattr:
                    // fuse_getattr_in { getattr_flags, dummy, fh } / fuse_setattr_in { valid, padding, fh, ... }
                    if (length < InHeader + 16)
                        return;
                    uint* flags = (uint*)(buffer + InHeader);
                    uint fhFlag = opcode == OpGetattr ? GetattrFh : SetattrFh;
                    if ((*flags & fhFlag) != 0 || !TryLend(unique, node, out var fh))
                        return;
                    *(ulong*)(buffer + InHeader + 8) = fh;
                    *flags |= fhFlag;
                    break;
            }
        }

        private bool TryLend(ulong unique, ulong node, out ulong fh)
        {
            fh = 0;
            lock (gate)
            {
                // Whether libfuse can still name the node is known to libfuse alone: any open handle of it is lent
                // (harmless when it can, see the top).
                if (!handlesOfNode.TryGetValue(node, out var handles) || handles.Count == 0)
                    return false;
                fh = handles[0];
                borrowed[unique] = fh;
                lent[fh] = lent.GetValueOrDefault(fh) + 1;
                pending++;
                return true;
            }
        }

        /// <summary>A reply about to be written to /dev/fuse.</summary>
        public void OnReply(IoVec* iov, int count)
        {
            if (Volatile.Read(ref pending) == 0 || count < 1 || iov[0].Length < OutHeader)
                return;
            int error = *(int*)(iov[0].Base + 4);
            ulong unique = *(ulong*)(iov[0].Base + 8);
            lock (gate)
            {
                if (opening.Remove(unique, out var node))
                {
                    pending--;
                    if (error != 0)
                        return;
                    // OPEN: fuse_open_out { fh, ... }; CREATE: fuse_entry_out { nodeid, ... } (128 bytes), then fuse_open_out.
                    int fhAt = 0;
                    if (node == 0)
                    {
                        if (!TryReadReply(iov, count, 0, out node))
                            return;
                        fhAt = EntryOut;
                    }
                    if (!TryReadReply(iov, count, fhAt, out var opened))
                        return;
                    if (!handlesOfNode.TryGetValue(node, out var handles))
                        handlesOfNode[node] = handles = new List<ulong>();
                    handles.Add(opened);
                    nodeOfHandle[opened] = node;
                    return;
                }
                if (borrowed.Remove(unique, out var fh))
                {
                    pending--;
                    if (--lent[fh] > 0)
                        return;
                    lent.Remove(fh);
                    if (releasedWhileLent.Remove(fh))
                        LibC.Close((int)(fh & 0xFFFFFFFF));
                }
            }
        }

        /// <summary>The handle is released: false while a request still holds it (the last reply closes it then).</summary>
        public bool Release(ulong fh)
        {
            lock (gate)
            {
                if (nodeOfHandle.Remove(fh, out var node) && handlesOfNode.TryGetValue(node, out var handles))
                {
                    handles.Remove(fh);
                    if (handles.Count == 0)
                        handlesOfNode.Remove(node);
                }
                if (!lent.ContainsKey(fh))
                    return true;
                releasedWhileLent.Add(fh);
                return false;
            }
        }

        /// <summary>The u64 at <paramref name="offset"/> of the reply's payload (after the out header), across the iovecs.</summary>
        private static bool TryReadReply(IoVec* iov, int count, int offset, out ulong value)
        {
            long at = OutHeader + offset;
            byte* v = stackalloc byte[8];
            int got = 0;
            for (int i = 0; i < count && got < 8; i++)
            {
                long len = (long)iov[i].Length;
                if (at >= len)
                {
                    at -= len;
                    continue;
                }
                while (at < len && got < 8)
                    v[got++] = iov[i].Base[at++];
                at = 0;
            }
            value = *(ulong*)v;
            return got == 8;
        }
    }
}
