// StartEngine / WaitForEngine / StopEngine / KillEngine against a fake engine (python3): it takes
// the real command line, binds the API address (possible only inside the node's namespace) and
// opens <home>/run/api.sock. Real engines are exercised by the integration suites.
using System;
using System.IO;
using System.Linq;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using System.Threading;
using ServiceKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Testing;

[SupportedOSPlatform("linux")]
public sealed class NetLabEngineTests
{
    private const string FakeEngine = """
        #!/usr/bin/env python3
        import os, signal, socket, subprocess, sys, time
        args = sys.argv[1:]
        def opt(name):
            return args[args.index(name) + 1] if name in args else None
        home, node, listen = opt('--home'), opt('--node-name'), opt('--listen')
        print('fake engine ' + ' '.join(args), flush=True)
        if '--fail' in args:
            print('boom: bad config', file=sys.stderr, flush=True)
            sys.exit(3)
        key = os.path.join(home, 'api', 'admin.key')
        if os.path.exists(key):
            print('admin.key=' + open(key).read(), flush=True)
        if os.path.exists('/srv/x'):
            print('srv/x=' + open('/srv/x').read(), flush=True)
        host, port = listen.rsplit(':', 1)
        tcp = socket.socket()
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((host, int(port)))
        tcp.listen()
        print('listening on ' + listen, flush=True)
        if '--spawn' in args:
            # Its own session: only the shared mount namespace ties it to the engine.
            child = subprocess.Popen(['sleep', '1000'], start_new_session=True)
            print('child=%d' % child.pid, flush=True)
        def bye(*_):
            print('SIGTERM, bye', flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        if '--ignore-term' in args:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if '--no-socket' in args:
            while True:
                time.sleep(1)
        os.makedirs(os.path.join(home, 'run'), exist_ok=True)
        path = os.path.join(home, 'run', 'api.sock')
        if os.path.exists(path):
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen()
        while True:
            conn, _ = server.accept()
            conn.close()
        """;

    private readonly ITestOutputHelper _output;

    public NetLabEngineTests(ITestOutputHelper output) => _output = output;

    private NetLab CreateLab(int nodes, Action<NetLabOptions>? configure = null)
    {
        var options = new NetLabOptions { Log = _output.WriteLine };
        configure?.Invoke(options);
        var lab = NetLab.Create(LabNames.NewPrefix(), nodes, options);
        var fake = Path.Combine(lab.LabDirectory, "fake-engine");
        File.WriteAllText(fake, FakeEngine.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n");
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        options.EnginePath = fake;
        return lab;
    }

    private void Dump(NetLab lab) => _output.WriteLine(lab.DumpLogs());

    [NetnsFact]
    public void StartEngine_RunsInTheNodeWithItsKeyAndMounts_AndStopEngineEndsIt()
    {
        using var lab = CreateLab(2, o => o.AddBindMount("srv", "/srv"));
        var n2 = lab.Nodes[1];
        File.WriteAllText(n2.RootPath("srv/x"), "n2's data");
        try
        {
            var process = lab.StartEngine(n2, "s3cret", "--verbose");
            lab.WaitForEngine(n2, TimeSpan.FromSeconds(20));

            Assert.True(n2.IsRunning);
            Assert.Same(process, n2.EngineProcess);
            var keyFile = Path.Combine(n2.Home, "api", "admin.key");
            Assert.Equal("s3cret", File.ReadAllText(keyFile));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
            var output = File.ReadAllText(n2.LogPath);
            Assert.Contains($"fake engine run --home {n2.Home} --node-name n2 --listen 198.18.0.2:9453 --verbose", output, StringComparison.Ordinal);
            Assert.Contains("admin.key=s3cret", output, StringComparison.Ordinal);
            Assert.Contains("srv/x=n2's data", output, StringComparison.Ordinal);
            Assert.Contains("listening on 198.18.0.2:9453", output, StringComparison.Ordinal); // only n2's namespace has that address
            Assert.False(lab.Nodes[0].IsRunning);

            lab.StopEngine(n2);

            Assert.False(n2.IsRunning);
            Assert.Equal(0, process.ExitCode);
            Assert.Contains("SIGTERM, bye", File.ReadAllText(n2.LogPath), StringComparison.Ordinal);
            lab.StopEngine(n2); // not running: no-op

            // A second start appends to engine.out.
            lab.StartEngine(n2, null);
            lab.WaitForEngine(n2, TimeSpan.FromSeconds(20));
            Assert.Equal(2, Regex.Matches(File.ReadAllText(n2.LogPath), "listening on").Count);
            Assert.Throws<InvalidOperationException>(() => lab.StartEngine(n2, null));
        }
        catch
        {
            Dump(lab);
            throw;
        }
    }

    [NetnsFact]
    public void KillEngine_KillsTheEngineAndEverythingItStarted()
    {
        using var lab = CreateLab(1);
        var n1 = lab.Nodes[0];
        try
        {
            var process = lab.StartEngine(n1, null, "--spawn");
            lab.WaitForEngine(n1, TimeSpan.FromSeconds(20));
            Assert.True(WaitUntil(() => File.ReadAllText(n1.LogPath).Contains("child=", StringComparison.Ordinal)));
            Assert.Equal(2, NodePids(lab, n1).Length);

            lab.KillEngine(n1);

            Assert.False(n1.IsRunning);
            Assert.Equal(137, process.ExitCode); // 128 + SIGKILL
            Assert.True(WaitUntil(() => NodePids(lab, n1).Length == 0), "the engine's child survived: " + string.Join(' ', NodePids(lab, n1)));
        }
        catch
        {
            Dump(lab);
            throw;
        }
    }

    [NetnsFact]
    public void StopEngine_WhenTheEngineIgnoresSigterm_KillsItAfterTenSeconds()
    {
        using var lab = CreateLab(1);
        var n1 = lab.Nodes[0];
        var process = lab.StartEngine(n1, null, "--ignore-term");
        lab.WaitForEngine(n1, TimeSpan.FromSeconds(20));

        lab.StopEngine(n1);

        Assert.False(n1.IsRunning);
        Assert.Equal(137, process.ExitCode);
    }

    [NetnsFact]
    public void WaitForEngine_WhenTheEngineExits_ThrowsWithItsLastOutput()
    {
        using var lab = CreateLab(1);
        var n1 = lab.Nodes[0];
        lab.StartEngine(n1, null, "--fail");

        var e = Assert.Throws<InvalidOperationException>(() => lab.WaitForEngine(n1, TimeSpan.FromSeconds(20)));

        _output.WriteLine(e.Message);
        Assert.Contains("exited with code 3", e.Message, StringComparison.Ordinal);
        Assert.Contains("boom: bad config", e.Message, StringComparison.Ordinal);
    }

    [NetnsFact]
    public void WaitForEngine_WhenTheSocketNeverAppears_TimesOut()
    {
        using var lab = CreateLab(1);
        var n1 = lab.Nodes[0];
        lab.StartEngine(n1, null, "--no-socket");

        var e = Assert.Throws<TimeoutException>(() => lab.WaitForEngine(n1, TimeSpan.FromSeconds(2)));

        Assert.Contains("listening on 198.18.0.1:9453", e.Message, StringComparison.Ordinal);
        Assert.True(n1.IsRunning);
    }

    [NetnsFact]
    public void Dispose_StopsRunningEngines()
    {
        var lab = CreateLab(2);
        var processes = lab.Nodes.Select(n => lab.StartEngine(n, null)).ToList();
        foreach (var node in lab.Nodes)
        {
            lab.WaitForEngine(node, TimeSpan.FromSeconds(20));
        }

        lab.Dispose();

        Assert.All(processes, p => Assert.Equal(0, p.ExitCode)); // stopped by SIGTERM
        Assert.False(Directory.Exists(lab.LabDirectory));
    }

    [NetnsFact]
    public void StartEngine_WhenTheEngineIsMissing_SaysHowToBuildIt()
    {
        using var lab = NetLab.Create(LabNames.NewPrefix(), 1, new NetLabOptions { EnginePath = "/nonexistent/servicekeeper" });

        var e = Assert.Throws<FileNotFoundException>(() => lab.StartEngine(lab.Nodes[0], "key"));

        Assert.Contains("build.ps1 -Task Build", e.Message, StringComparison.Ordinal);
    }

    private static string[] NodePids(NetLab lab, LabNode node) =>
        lab.Exec(null, "ip", "netns", "pids", node.Namespace).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    private static bool WaitUntil(Func<bool> condition)
    {
        for (var i = 0; i < 50 && !condition(); i++)
        {
            Thread.Sleep(100);
        }
        return condition();
    }
}
