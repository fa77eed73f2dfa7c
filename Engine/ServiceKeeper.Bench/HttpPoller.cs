// The client of the failover bench: one python process inside the client namespace that starts an
// HTTP GET to VIP:8080 every 10 ms (each with a 200 ms deadline, several in flight) and prints
// "<CLOCK_MONOTONIC ms> <node that answered | ERR>" for every finished request.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Threading;

namespace ServiceKeeper.Bench;

/// <summary>One finished request: when it finished (CLOCK_MONOTONIC, ms) and who answered (null: ERR).</summary>
public readonly record struct Answer(double AtMs, string? Node);

public sealed class HttpPoller : IDisposable
{
    public const int IntervalMs = 10;
    public const int TimeoutMs = 200;

    // Non-blocking sockets so a request stuck on the cut node never delays the next one: the
    // resolution of the measurement is the interval, not the timeout. Stops by itself after argv[5] s.
    private const string Script = """
        import errno, selectors, socket, sys, time
        vip, port = sys.argv[1], int(sys.argv[2])
        interval, timeout, limit = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
        request = ("GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % vip).encode()
        sel = selectors.DefaultSelector()
        live = {}
        def done(s, what):
            sel.unregister(s)
            s.close()
            del live[s]
            sys.stdout.write("%.1f %s\n" % (time.monotonic() * 1000.0, what))
            sys.stdout.flush()
        def answer(data):
            head, _, body = data.partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0].split()
            words = body.split()
            if len(status) >= 2 and status[1] == b"200" and words:
                return words[0].decode("ascii", "replace")
            return "ERR"
        end = time.monotonic() + limit
        next_at = time.monotonic()
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_at:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                live[s] = [now + timeout, b"", False]
                sel.register(s, selectors.EVENT_WRITE)
                if s.connect_ex((vip, port)) not in (0, errno.EINPROGRESS):
                    done(s, "ERR")
                next_at = max(next_at + interval, now)
            for key, _ in sel.select(max(0.0, min(next_at - time.monotonic(), 0.005))):
                s = key.fileobj
                state = live[s]
                try:
                    if not state[2]:
                        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                            done(s, "ERR")
                            continue
                        s.send(request)
                        state[2] = True
                        sel.modify(s, selectors.EVENT_READ)
                    else:
                        chunk = s.recv(4096)
                        if chunk and len(state[1]) < 65536:
                            state[1] += chunk
                        else:
                            done(s, answer(state[1]))
                except OSError:
                    done(s, "ERR")
            now = time.monotonic()
            for s in [s for s, state in live.items() if state[0] <= now]:
                done(s, "ERR")
        """;

    private readonly Process _process;
    private readonly List<Answer> _answers = new();
    private readonly object _lock = new();

    private HttpPoller(Process process)
    {
        _process = process;
    }

    /// <summary>Starts the poller in <paramref name="clientNamespace"/>; it stops by itself after <paramref name="limit"/>.</summary>
    public static HttpPoller Start(string python, string clientNamespace, string vip, int port, TimeSpan limit)
    {
        var psi = new ProcessStartInfo(Tools.Ip)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[]
        {
            "netns", "exec", clientNamespace, python, "-u", "-c", Script, vip, port.ToString(CultureInfo.InvariantCulture),
            (IntervalMs / 1000.0).ToString(CultureInfo.InvariantCulture), (TimeoutMs / 1000.0).ToString(CultureInfo.InvariantCulture),
            ((int)limit.TotalSeconds).ToString(CultureInfo.InvariantCulture),
        })
        {
            psi.ArgumentList.Add(a);
        }
        var process = new Process { StartInfo = psi };
        var poller = new HttpPoller(process);
        process.OutputDataReceived += (_, e) => poller.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => poller.OnError(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        return poller;
    }

    private readonly List<string> _errors = new();

    /// <summary>What the poller wrote to stderr (a python error, for a failure message).</summary>
    public string Errors
    {
        get { lock (_lock) return string.Join('\n', _errors); }
    }

    public bool HasExited => _process.HasExited;

    private void OnError(string? line)
    {
        if (string.IsNullOrWhiteSpace(line)) return;
        lock (_lock) if (_errors.Count < 50) _errors.Add(line);
    }

    private void OnLine(string? line)
    {
        if (string.IsNullOrWhiteSpace(line)) return;
        var parts = line.Split(' ', 2, StringSplitOptions.TrimEntries);
        if (parts.Length != 2 || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var ms)) return;
        lock (_lock) _answers.Add(new Answer(ms, parts[1] == "ERR" ? null : parts[1]));
    }

    /// <summary>A copy of every answer so far, in the order they finished.</summary>
    public List<Answer> Snapshot()
    {
        lock (_lock) return _answers.ToList();
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(2000);
        }
        catch (InvalidOperationException)
        {
            // Never started or already gone.
        }
        _process.Dispose();
    }
}
