// The heartbeats of one module: sends this node's payload to every peer on every ring each pulse, and turns
// what arrives into events for the module's owner (PeerMessage, RingUp/Down, PeerFound/Lost).
//
// Threads: the service's sender thread calls RunDue (send, evaluate liveness); its receive threads call
// OnPacket. Events are raised on those threads, one at a time and in order (the dispatch lock), so the
// owner must only hand them to its actor loop and return: never block, never wait for the heartbeat threads.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace ServiceKeeper.Engine.Heartbeat
{
    public sealed partial class HeartbeatChannel : IDisposable
    {
        public static readonly TimeSpan MinPulse = TimeSpan.FromMilliseconds(10);

        // A starved receive thread leaves heartbeats unread in its socket; judging liveness then would lose a
        // peer whose packets are right there. Wait for the receivers to drain, but not forever: a flood of
        // junk must not be able to postpone a real failover by more than this.
        internal static readonly TimeSpan MaxLossDeferral = TimeSpan.FromMilliseconds(250);
        private static readonly TimeSpan DeferralRetry = TimeSpan.FromMilliseconds(5);

        private readonly HeartbeatService _service;
        private readonly Action<HeartbeatEvent> _onEvent;
        private readonly ILogger _logger;
        private readonly object _dispatch = new();
        private readonly object _gate = new();
        private readonly PeerLiveness _liveness;
        private readonly Dictionary<string, ReplayGuard> _guards = new(StringComparer.Ordinal);
        private readonly HeartbeatCounters _counters;
        private readonly (int Ring, IPEndPoint[] Targets)[] _sendPlan;
        private readonly TimeSpan _evaluateEvery;

        private byte[] _payload;
        private volatile bool _sendNow = true;
        private volatile bool _closed;

        // Sender thread only.
        private ulong _sequence;
        private TimeSpan _nextSend;
        private TimeSpan _nextEvaluate;
        private TimeSpan? _deferredSince;

        internal HeartbeatChannel(
            HeartbeatService service, string module, IReadOnlyList<HeartbeatPeer> peers, TimeSpan pulse, TimeSpan timeout,
            Action<HeartbeatEvent> onEvent, byte[] payload, HeartbeatCounters serviceCounters, ILogger logger, TimeSpan now)
        {
            _service = service;
            Module = module;
            Peers = peers;
            Pulse = pulse;
            Timeout = timeout;
            _onEvent = onEvent;
            _payload = payload;
            _logger = logger;
            _counters = new HeartbeatCounters(serviceCounters);
            _liveness = new PeerLiveness(peers.Select(p => (p.Node, (IReadOnlyCollection<int>)p.Rings.Keys.ToArray())), timeout, now);
            foreach (var peer in peers) _guards.Add(peer.Node, new ReplayGuard());
            _sendPlan = peers.SelectMany(p => p.Rings)
                .GroupBy(r => r.Key)
                .OrderBy(g => g.Key)
                .Select(g => (g.Key, g.Select(r => r.Value).ToArray()))
                .ToArray();
            _evaluateEvery = pulse / 2;
            _nextSend = now + pulse;
            _nextEvaluate = now + _evaluateEvery;
        }

        public string Module { get; }
        public IReadOnlyList<HeartbeatPeer> Peers { get; }
        public TimeSpan Pulse { get; }
        public TimeSpan Timeout { get; }
        public bool IsClosed => _closed;

        /// <summary>This channel's share of the counters (authenticated traffic only).</summary>
        public HeartbeatStatistics Statistics => _counters.Snapshot();

        public PeerStatus GetPeerStatus(string node)
        {
            lock (_gate) return _liveness.StatusOf(node);
        }

        public RingStatus GetRingStatus(string node, int ring)
        {
            lock (_gate) return _liveness.StatusOf(node, ring);
        }

        /// <summary>Replaces the payload and sends it at once, so a state change reaches the peers without
        /// waiting for the next pulse. Returns immediately (the sender thread sends); ignored once closed.</summary>
        public void SetPayload(ReadOnlySpan<byte> payload)
        {
            if (payload.Length > HeartbeatPacket.MaxPayloadBytes)
                throw new ArgumentException($"A heartbeat payload is at most {HeartbeatPacket.MaxPayloadBytes} bytes; got {payload.Length}.", nameof(payload));
            if (_closed) return;
            Volatile.Write(ref _payload, payload.ToArray());
            _sendNow = true;
            _service.Wake();
        }

        /// <summary>Stops sending and raising events. Once it returns no event is raised any more, except
        /// when called from the event callback itself. Idempotent.</summary>
        public void Close()
        {
            if (Monitor.IsEntered(_dispatch)) _closed = true;
            else lock (_dispatch) _closed = true;
            _service.Remove(this);
        }

        public void Dispose() => Close();

        internal void MarkClosed()
        {
            if (Monitor.IsEntered(_dispatch)) _closed = true;
            else lock (_dispatch) _closed = true;
        }

        /// <summary>Sender thread: sends and evaluates what is due; returns when it next needs to run.</summary>
        internal TimeSpan RunDue(TimeSpan now, bool receiveBacklog, Span<byte> buffer)
        {
            if (_closed) return TimeSpan.MaxValue;
            if (_sendNow || now >= _nextSend)
            {
                // Cleared before sending: a SetPayload racing with this round sets it again and gets its own.
                _sendNow = false;
                SendRound(buffer);
                // Keep the cadence after a small delay; after a long stall, restart it from now rather than
                // sending a burst of catch-up rounds.
                if (now >= _nextSend) _nextSend = now - _nextSend >= Pulse ? now + Pulse : _nextSend + Pulse;
            }
            if (now >= _nextEvaluate)
            {
                if (ShouldEvaluate(receiveBacklog, now, ref _deferredSince, MaxLossDeferral))
                {
                    Evaluate(now);
                    _nextEvaluate = now + _evaluateEvery;
                }
                else _nextEvaluate = now + DeferralRetry;
            }
            return _nextSend < _nextEvaluate ? _nextSend : _nextEvaluate;
        }

        /// <summary>Pure: judge liveness now, or wait for the receive threads to drain their sockets first.</summary>
        internal static bool ShouldEvaluate(bool receiveBacklog, TimeSpan now, ref TimeSpan? deferredSince, TimeSpan maxDeferral)
        {
            if (!receiveBacklog)
            {
                deferredSince = null;
                return true;
            }
            deferredSince ??= now;
            if (now - deferredSince.Value < maxDeferral) return false;
            deferredSince = null;
            return true;
        }

        /// <summary>Receive thread: an authenticated packet naming this module arrived on <paramref name="ring"/>.</summary>
        internal void OnPacket(HeartbeatPacket packet, int ring, TimeSpan now)
        {
            lock (_dispatch)
            {
                if (_closed) return;
                ReplayVerdict verdict;
                IReadOnlyList<HeartbeatEvent> transitions;
                lock (_gate)
                {
                    if (!_guards.TryGetValue(packet.Sender, out var guard))
                    {
                        _counters.Increment(HeartbeatCounter.UnknownPeer);
                        return;
                    }
                    // Sent on one ring, received on another: a relayed copy must not make a dead ring look alive.
                    if (packet.Ring != ring || !_liveness.Knows(packet.Sender, ring))
                    {
                        _counters.Increment(HeartbeatCounter.Misrouted);
                        return;
                    }
                    verdict = guard.Check(packet.Incarnation, packet.Sequence, ring);
                    if (verdict == ReplayVerdict.Replayed)
                    {
                        _counters.Increment(HeartbeatCounter.Replayed);
                        return;
                    }
                    _counters.Increment(HeartbeatCounter.Received);
                    transitions = _liveness.Heard(packet.Sender, ring, now);
                }
                foreach (var transition in transitions) Raise(transition);
                if (verdict == ReplayVerdict.Fresh)
                    Raise(new PeerMessage(packet.Sender, ring, packet.Incarnation, packet.Payload));
            }
        }

        private void SendRound(Span<byte> buffer)
        {
            var payload = Volatile.Read(ref _payload);
            var sequence = ++_sequence;
            var sentAt = _service.UnixTimeMs();
            foreach (var (ring, targets) in _sendPlan)
            {
                var packet = new HeartbeatPacket(_service.ClusterId, Module, _service.LocalNode, _service.Incarnation,
                    sequence, ring, sentAt, payload);
                var length = _service.Encode(packet, buffer);
                foreach (var target in targets) _service.Send(ring, buffer[..length], target, _counters);
            }
        }

        private void Evaluate(TimeSpan now)
        {
            lock (_dispatch)
            {
                if (_closed) return;
                IReadOnlyList<HeartbeatEvent> transitions;
                lock (_gate) transitions = _liveness.Evaluate(now);
                foreach (var transition in transitions) Raise(transition);
            }
        }

        private void Raise(HeartbeatEvent e)
        {
            switch (e)
            {
                case PeerFound found: LogPeerFound(_logger, Module, found.Node); break;
                case PeerLost lost: LogPeerLost(_logger, Module, lost.Node, (long)Timeout.TotalMilliseconds); break;
                case RingUp up: LogRingUp(_logger, Module, up.Ring, up.Node); break;
                case RingDown down: LogRingDown(_logger, Module, down.Ring, down.Node, (long)Timeout.TotalMilliseconds); break;
            }
            try
            {
                _onEvent(e);
            }
            catch (Exception ex)
            {
                // The owner's bug must not stop heartbeats of this or any other module.
                LogHandlerFailed(_logger, Module, e.GetType().Name, ex);
            }
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: peer {Node} found")]
        private static partial void LogPeerFound(ILogger logger, string module, string node);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: peer {Node} lost (nothing heard on any ring for {TimeoutMs} ms)")]
        private static partial void LogPeerLost(ILogger logger, string module, string node, long timeoutMs);

        [LoggerMessage(Level = LogLevel.Information, Message = "{Module}: ring {Ring} to {Node} up")]
        private static partial void LogRingUp(ILogger logger, string module, int ring, string node);

        [LoggerMessage(Level = LogLevel.Warning, Message = "{Module}: ring {Ring} to {Node} down (nothing heard for {TimeoutMs} ms)")]
        private static partial void LogRingDown(ILogger logger, string module, int ring, string node, long timeoutMs);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Module}: the handler of heartbeat event {Event} threw")]
        private static partial void LogHandlerFailed(ILogger logger, string module, string @event, Exception exception);
    }
}
