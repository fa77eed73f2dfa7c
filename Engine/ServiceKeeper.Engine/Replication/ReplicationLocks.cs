// Ordering locks of the primary. A live mutation holds them from IMutationSink.Begin to Complete, a resync
// step while it reads a piece of a file and queues it, so both reach the secondary in the order they
// happened here:
//   - a namespace lock per tree: shared by namespace/metadata operations and resync reads, exclusive for
//     renames (they move paths under everyone's feet) and while both trees are listed for a resync;
//   - per-file locks (striped by path hash): data operations of one file and resync reads of it.
// Neither lock is tied to a thread (Begin and Complete may run on different threads).
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace ServiceKeeper.Engine.Replication
{
    /// <summary>Reader/writer lock, writer-preferring, usable from sync and async code, not thread-affine.</summary>
    internal sealed class AsyncRwLock
    {
        private readonly object _gate = new();
        private int _readers;
        private bool _writer;
        private readonly Queue<TaskCompletionSource> _waitingWriters = new();
        private readonly Queue<TaskCompletionSource> _waitingReaders = new();

        public Task EnterReadAsync()
        {
            lock (_gate)
            {
                if (!_writer && _waitingWriters.Count == 0) { _readers++; return Task.CompletedTask; }
                var t = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waitingReaders.Enqueue(t);
                return t.Task;
            }
        }

        public Task EnterWriteAsync()
        {
            lock (_gate)
            {
                if (!_writer && _readers == 0) { _writer = true; return Task.CompletedTask; }
                var t = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waitingWriters.Enqueue(t);
                return t.Task;
            }
        }

        public void ExitRead()
        {
            TaskCompletionSource? wake = null;
            lock (_gate)
            {
                _readers--;
                if (_readers == 0 && _waitingWriters.Count > 0) { _writer = true; wake = _waitingWriters.Dequeue(); }
            }
            wake?.SetResult();
        }

        public void ExitWrite()
        {
            List<TaskCompletionSource> wake = new();
            lock (_gate)
            {
                _writer = false;
                if (_waitingWriters.Count > 0 && _waitingReaders.Count == 0) { _writer = true; wake.Add(_waitingWriters.Dequeue()); }
                else
                {
                    while (_waitingReaders.Count > 0) { _readers++; wake.Add(_waitingReaders.Dequeue()); }
                }
            }
            foreach (var t in wake) t.SetResult();
        }
    }

    /// <summary>Per-path mutexes, striped: two paths may share one (harmless: it only orders more).</summary>
    internal sealed class StripedLocks
    {
        private readonly SemaphoreSlim[] _locks;

        public StripedLocks(int count)
        {
            _locks = new SemaphoreSlim[count];
            for (int i = 0; i < count; i++) _locks[i] = new SemaphoreSlim(1, 1);
        }

        public int IndexOf(string path) => (int)((uint)StringComparer.Ordinal.GetHashCode(path) % (uint)_locks.Length);

        public SemaphoreSlim this[int index] => _locks[index];
    }

    /// <summary>Bounds the resync bytes in flight; live replication is never held by it.</summary>
    internal sealed class ByteWindow(long capacity)
    {
        private readonly object _gate = new();
        private long _used;
        private readonly Queue<(long bytes, TaskCompletionSource tcs)> _waiting = new();

        public Task TakeAsync(long bytes, CancellationToken ct)
        {
            lock (_gate)
            {
                if (_waiting.Count == 0 && (_used == 0 || _used + bytes <= capacity)) { _used += bytes; return Task.CompletedTask; }
                var t = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiting.Enqueue((bytes, t));
                ct.Register(() => t.TrySetCanceled());
                return t.Task;
            }
        }

        public void Release(long bytes)
        {
            var wake = new List<TaskCompletionSource>();
            lock (_gate)
            {
                _used = Math.Max(0, _used - bytes);
                while (_waiting.Count > 0 && (_used == 0 || _used + _waiting.Peek().bytes <= capacity))
                {
                    var (b, t) = _waiting.Dequeue();
                    if (t.Task.IsCanceled) continue;
                    _used += b;
                    wake.Add(t);
                }
            }
            foreach (var t in wake) t.TrySetResult();
        }

        public void Reset()
        {
            lock (_gate)
            {
                _used = 0;
                while (_waiting.Count > 0) _waiting.Dequeue().tcs.TrySetCanceled();
            }
        }
    }
}
