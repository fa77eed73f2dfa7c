// The engine's heartbeat transport: one UDP socket per ring (a local address on one cluster lan, so the
// socket tells the ring), one receive thread per socket and one sender thread for every channel. All
// modules share the port; the module name inside each authenticated packet picks the channel.
//
// Threads are dedicated, not pooled, and boosted (HeartbeatThreads): a saturated CPU or a starved thread
// pool must never silence heartbeats, since silence is what fails a module over.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;

namespace ServiceKeeper.Engine.Heartbeat
{
    public sealed partial class HeartbeatService : IDisposable, IAsyncDisposable
    {
        public const int DefaultPort = 9454;

        private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);
        private static readonly TimeSpan IdleWait = TimeSpan.FromSeconds(1);
        private static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(5);
        private const int PollMicroseconds = 250_000;
        private const int ReceiveBufferBytes = 64 * 1024;
        private const int DscpCs6 = 0xC0; // "network control": heartbeats go first in switches that honour it

        private readonly byte[] _key;
        private readonly ILogger _logger;
        private readonly TimeProvider _time;
        private readonly long _origin;
        private readonly RingSocket[] _rings;
        private readonly Thread _sender;
        private readonly AutoResetEvent _wake = new(false);
        private readonly HeartbeatCounters _counters = new();
        private readonly object _channelsLock = new();
        private readonly Dictionary<string, HeartbeatChannel> _byModule = new(StringComparer.Ordinal);
        private volatile HeartbeatChannel[] _channels = [];
        private readonly object _throttleLock = new();
        private readonly LogThrottle _throttle = new(LogInterval);
        private volatile bool _stopping;
        private int _disposed;

        /// <summary>
        /// Binds one socket per ring address (index = ring index = cluster lan index) on <paramref name="port"/>
        /// and starts the threads; throws SocketException when an address is not local or the port is taken.
        /// <paramref name="incarnation"/> must grow at every engine start (persist a counter; a wall clock can
        /// step back), or peers that remember the previous one drop everything as replayed.
        /// </summary>
        public HeartbeatService(
            Guid clusterId, ReadOnlySpan<byte> clusterKey, string localNode, ulong incarnation, int port,
            IReadOnlyList<IPAddress> ringAddresses, ILogger logger, TimeProvider time)
        {
            if (clusterKey.Length < 16) throw new ArgumentException("The cluster key must be at least 16 bytes.", nameof(clusterKey));
            if (!HeartbeatPacket.IsValidName(localNode))
                throw new ArgumentException($"Node name '{localNode}' must be 1..{HeartbeatPacket.MaxNameBytes} UTF-8 bytes.", nameof(localNode));
            if (port is < 0 or > IPEndPoint.MaxPort) throw new ArgumentOutOfRangeException(nameof(port), port, "not a UDP port");
            if (ringAddresses.Count is 0 or > HeartbeatPacket.MaxRings)
                throw new ArgumentException($"Give 1..{HeartbeatPacket.MaxRings} ring addresses; got {ringAddresses.Count}.", nameof(ringAddresses));

            ClusterId = clusterId;
            _key = clusterKey.ToArray();
            LocalNode = localNode;
            Incarnation = incarnation;
            _logger = logger;
            _time = time;
            _origin = time.GetTimestamp();

            _rings = new RingSocket[ringAddresses.Count];
            try
            {
                for (var i = 0; i < _rings.Length; i++) _rings[i] = new RingSocket(i, Bind(ringAddresses[i], port));
            }
            catch
            {
                foreach (var ring in _rings) ring?.Socket.Dispose();
                throw;
            }
            LocalEndPoints = _rings.Select(r => r.Local).ToArray();

            foreach (var ring in _rings)
                ring.Receiver = HeartbeatThreads.Start($"sk-hb-recv-{ring.Index}", () => ReceiveLoop(ring), OnBoostFailed);
            _sender = HeartbeatThreads.Start("sk-hb-send", SendLoop, OnBoostFailed);
            LogStarted(_logger, string.Join(", ", LocalEndPoints), localNode, incarnation);
        }

        public Guid ClusterId { get; }
        public string LocalNode { get; }
        public ulong Incarnation { get; }

        /// <summary>Where each ring listens, by ring index (the actual port when 0 was asked for).</summary>
        public IReadOnlyList<IPEndPoint> LocalEndPoints { get; }

        public HeartbeatStatistics Statistics => _counters.Snapshot();

        /// <summary>
        /// Starts the heartbeats of <paramref name="module"/>: from now on its payload goes to every peer on each
        /// of the peer's rings every <paramref name="pulse"/>, and <paramref name="onEvent"/> receives what the
        /// peers send and who is up or lost. A peer is lost when every ring has been silent longer than
        /// <paramref name="timeout"/>. See <see cref="HeartbeatEvent"/> for the rules of the callback.
        /// </summary>
        public HeartbeatChannel OpenChannel(
            string module, IReadOnlyList<HeartbeatPeer> peers, TimeSpan pulse, TimeSpan timeout,
            Action<HeartbeatEvent> onEvent, ReadOnlySpan<byte> payload = default)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            ArgumentNullException.ThrowIfNull(onEvent);
            if (!HeartbeatPacket.IsValidName(module))
                throw new ArgumentException($"Module name '{module}' must be 1..{HeartbeatPacket.MaxNameBytes} UTF-8 bytes.", nameof(module));
            if (pulse < HeartbeatChannel.MinPulse)
                throw new ArgumentOutOfRangeException(nameof(pulse), pulse, $"the pulse is at least {HeartbeatChannel.MinPulse.TotalMilliseconds} ms");
            if (timeout < 2 * pulse)
                throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "the timeout is at least twice the pulse");
            if (payload.Length > HeartbeatPacket.MaxPayloadBytes)
                throw new ArgumentException($"A heartbeat payload is at most {HeartbeatPacket.MaxPayloadBytes} bytes.", nameof(payload));
            CheckPeers(peers);

            lock (_channelsLock)
            {
                ObjectDisposedException.ThrowIf(_disposed != 0, this);
                if (_byModule.ContainsKey(module))
                    throw new InvalidOperationException($"Heartbeats of module '{module}' are already open on this node.");
                var channel = new HeartbeatChannel(this, module, peers.ToArray(), pulse, timeout, onEvent, payload.ToArray(), _counters, _logger, Now());
                _byModule.Add(module, channel);
                _channels = _byModule.Values.ToArray();
                _wake.Set();
                return channel;
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            _stopping = true;
            HeartbeatChannel[] channels;
            lock (_channelsLock)
            {
                channels = _byModule.Values.ToArray();
                _byModule.Clear();
                _channels = [];
            }
            foreach (var channel in channels) channel.MarkClosed();
            _wake.Set();
            var senderStopped = Join(_sender);
            foreach (var ring in _rings) ring.Socket.Dispose();
            foreach (var ring in _rings) Join(ring.Receiver);
            // A sender still inside WaitOne would throw on a disposed handle; leave it to the finalizer then.
            if (senderStopped) _wake.Dispose();
        }

        /// <summary>Stopping takes at most one receive poll (250 ms); done on a pool thread to keep callers async.</summary>
        public ValueTask DisposeAsync() => new(Task.Run(Dispose));

        internal TimeSpan Now() => _time.GetElapsedTime(_origin);

        internal long UnixTimeMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

        internal int Encode(HeartbeatPacket packet, Span<byte> buffer) => packet.Encode(buffer, _key);

        internal void Wake()
        {
            try { _wake.Set(); }
            catch (ObjectDisposedException) { }
        }

        internal void Remove(HeartbeatChannel channel)
        {
            lock (_channelsLock)
            {
                if (_byModule.TryGetValue(channel.Module, out var current) && ReferenceEquals(current, channel))
                {
                    _byModule.Remove(channel.Module);
                    _channels = _byModule.Values.ToArray();
                }
            }
        }

        internal void Send(int ring, ReadOnlySpan<byte> datagram, IPEndPoint to, HeartbeatCounters channelCounters)
        {
            try
            {
                _rings[ring].Socket.SendTo(datagram, SocketFlags.None, to);
                channelCounters.Increment(HeartbeatCounter.Sent);
            }
            catch (SocketException ex)
            {
                // A down interface or an unreachable peer is what heartbeats exist to survive: count, log rarely.
                channelCounters.Increment(HeartbeatCounter.SendErrors);
                if (ShouldLog($"send {to}", out var suppressed))
                    LogSendFailed(_logger, to.ToString(), ring, ex.SocketErrorCode.ToString(), suppressed);
            }
            catch (ObjectDisposedException)
            {
                // Stopping.
            }
        }

        private void CheckPeers(IReadOnlyList<HeartbeatPeer> peers)
        {
            if (peers.Count == 0) throw new ArgumentException("A channel needs at least one peer.", nameof(peers));
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var peer in peers)
            {
                if (!HeartbeatPacket.IsValidName(peer.Node))
                    throw new ArgumentException($"Peer name '{peer.Node}' must be 1..{HeartbeatPacket.MaxNameBytes} UTF-8 bytes.", nameof(peers));
                if (string.Equals(peer.Node, LocalNode, StringComparison.Ordinal))
                    throw new ArgumentException($"The local node '{LocalNode}' cannot be its own peer.", nameof(peers));
                if (!names.Add(peer.Node)) throw new ArgumentException($"Peer '{peer.Node}' is listed twice.", nameof(peers));
                if (peer.Rings.Count == 0) throw new ArgumentException($"Peer '{peer.Node}' has no ring.", nameof(peers));
                foreach (var (ring, endpoint) in peer.Rings)
                {
                    if ((uint)ring >= (uint)_rings.Length)
                        throw new ArgumentException($"Peer '{peer.Node}' is on ring {ring}, which has no local address here.", nameof(peers));
                    if (endpoint.AddressFamily != _rings[ring].Local.AddressFamily)
                        throw new ArgumentException($"Peer '{peer.Node}' ring {ring} address {endpoint} is not of the ring's address family.", nameof(peers));
                }
            }
        }

        private static Socket Bind(IPAddress address, int port)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                if (OperatingSystem.IsWindows())
                {
                    // Otherwise an ICMP port-unreachable from a stopped peer makes the next receive fail.
                    const int SioUdpConnReset = -1744830452;
                    socket.IOControl(SioUdpConnReset, [0, 0, 0, 0], null);
                }
                if (address.AddressFamily == AddressFamily.InterNetwork)
                {
                    try { socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.TypeOfService, DscpCs6); }
                    catch (SocketException) { /* best effort: QoS marking is a bonus */ }
                }
                socket.SendTimeout = 100;
                socket.Bind(new IPEndPoint(address, port));
                return socket;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        private void ReceiveLoop(RingSocket ring)
        {
            var buffer = GC.AllocateUninitializedArray<byte>(ReceiveBufferBytes);
            EndPoint any = new IPEndPoint(ring.Local.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
            while (!_stopping)
            {
                int received;
                var from = any;
                try
                {
                    // Poll first so that stopping never depends on a blocked receive being woken by a close.
                    if (!ring.Socket.Poll(PollMicroseconds, SelectMode.SelectRead)) continue;
                    received = ring.Socket.ReceiveFrom(buffer, SocketFlags.None, ref from);
                }
                catch (ObjectDisposedException)
                {
                    break;
                }
                catch (SocketException ex)
                {
                    if (_stopping) break;
                    if (ShouldLog($"receive ring {ring.Index}", out var suppressed))
                        LogReceiveFailed(_logger, ring.Index, ex.SocketErrorCode.ToString(), suppressed);
                    Thread.Sleep(10); // an error that repeats at once must not spin a boosted thread
                    continue;
                }
                try
                {
                    OnDatagram(buffer.AsSpan(0, received), ring.Index, from as IPEndPoint);
                }
                catch (Exception ex)
                {
                    LogDatagramFailed(_logger, ring.Index, ex);
                }
            }
        }

        private void OnDatagram(ReadOnlySpan<byte> datagram, int ring, IPEndPoint? from)
        {
            var now = Now();
            if (!HeartbeatPacket.TryDecode(datagram, ClusterId, _key, out var packet, out var error))
            {
                _counters.Increment(error switch
                {
                    DecodeError.WrongCluster => HeartbeatCounter.WrongCluster,
                    DecodeError.Forged => HeartbeatCounter.Forged,
                    _ => HeartbeatCounter.Malformed,
                });
                var source = from?.Address.ToString() ?? "?";
                if (ShouldLog(source, out var suppressed))
                    LogDropped(_logger, from?.ToString() ?? "?", ring, error.ToString(), suppressed, (int)LogInterval.TotalSeconds);
                return;
            }
            HeartbeatChannel? channel;
            lock (_channelsLock) _byModule.TryGetValue(packet.Module, out channel);
            if (channel == null)
            {
                // Normal while a module starts on one node before the other; authenticated, so not logged.
                _counters.Increment(HeartbeatCounter.UnknownModule);
                return;
            }
            channel.OnPacket(packet, ring, now);
        }

        private void SendLoop()
        {
            var buffer = new byte[HeartbeatPacket.MaxBytes];
            while (!_stopping)
            {
                var now = Now();
                var next = now + IdleWait;
                var backlog = HasReceiveBacklog();
                foreach (var channel in _channels)
                {
                    try
                    {
                        var due = channel.RunDue(now, backlog, buffer);
                        if (due < next) next = due;
                    }
                    catch (Exception ex)
                    {
                        LogChannelFailed(_logger, channel.Module, ex);
                    }
                }
                var wait = next - Now();
                if (wait <= TimeSpan.Zero) continue;
                if (wait > IdleWait) wait = IdleWait;
                try { _wake.WaitOne((int)Math.Ceiling(wait.TotalMilliseconds)); }
                catch (ObjectDisposedException) { break; }
            }
        }

        private bool HasReceiveBacklog()
        {
            foreach (var ring in _rings)
            {
                try
                {
                    if (ring.Socket.Available > 0) return true;
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                }
            }
            return false;
        }

        private bool ShouldLog(string key, out int suppressed)
        {
            var now = Now();
            lock (_throttleLock) return _throttle.ShouldLog(key, now, out suppressed);
        }

        private void OnBoostFailed(string error) => LogBoostFailed(_logger, Thread.CurrentThread.Name ?? "?", error);

        private sealed class RingSocket(int index, Socket socket)
        {
            public int Index { get; } = index;
            public Socket Socket { get; } = socket;
            public IPEndPoint Local { get; } = (IPEndPoint)socket.LocalEndPoint!;
            public Thread? Receiver { get; set; }
        }

        private static bool Join(Thread? thread)
        {
            if (thread == null || thread == Thread.CurrentThread) return false;
            return thread.Join(JoinTimeout);
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "heartbeats listening on {EndPoints} (node {Node}, incarnation {Incarnation})")]
        private static partial void LogStarted(ILogger logger, string endPoints, string node, ulong incarnation);

        [LoggerMessage(Level = LogLevel.Warning, Message = "heartbeat from {Source} on ring {Ring} dropped: {Reason} ({Suppressed} more dropped and not logged in the last {Seconds} s)")]
        private static partial void LogDropped(ILogger logger, string source, int ring, string reason, int suppressed, int seconds);

        [LoggerMessage(Level = LogLevel.Warning, Message = "heartbeat to {Destination} on ring {Ring} failed: {Error} ({Suppressed} more not logged)")]
        private static partial void LogSendFailed(ILogger logger, string destination, int ring, string error, int suppressed);

        [LoggerMessage(Level = LogLevel.Warning, Message = "heartbeat receive on ring {Ring} failed: {Error} ({Suppressed} more not logged)")]
        private static partial void LogReceiveFailed(ILogger logger, int ring, string error, int suppressed);

        [LoggerMessage(Level = LogLevel.Error, Message = "heartbeat datagram on ring {Ring} could not be handled")]
        private static partial void LogDatagramFailed(ILogger logger, int ring, Exception exception);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: heartbeat send/evaluate failed")]
        private static partial void LogChannelFailed(ILogger logger, string module, Exception exception);

        [LoggerMessage(Level = LogLevel.Information, Message = "heartbeat thread {Thread} runs at normal priority: {Error}")]
        private static partial void LogBoostFailed(ILogger logger, string thread, string error);
    }
}
