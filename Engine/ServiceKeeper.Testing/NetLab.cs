// A throw-away cluster of network namespaces wired to a bridge, for tests and the demo.
// Layout, addresses and failure injection follow DESIGN.md "Test hosts: network namespaces".
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;

namespace ServiceKeeper.Testing;

/// <summary>
/// N node namespaces (and a client namespace) on one or two bridges in a switch namespace.
/// Nothing touches the root namespace's network; everything the lab makes carries its prefix and
/// is removed by <see cref="Dispose"/>, or by <see cref="RemoveLeftovers"/> after a crash.
/// </summary>
/// <remarks>
/// <code>
///   &lt;prefix&gt;-sw:  br0 ─┬─ &lt;prefix&gt;-n1-p ══ eth0 &lt;prefix&gt;-n1  198.18.S.1
///                   ├─ &lt;prefix&gt;-n2-p ══ eth0 &lt;prefix&gt;-n2  198.18.S.2
///                   └─ &lt;prefix&gt;-cl-p ══ eth0 &lt;prefix&gt;-cl  198.18.S.100
///               br1 ─┬─ &lt;prefix&gt;-n1-q ══ eth1 &lt;prefix&gt;-n1  198.19.S.1   (SecondNetwork)
///                   └─ &lt;prefix&gt;-n2-q ══ eth1 &lt;prefix&gt;-n2  198.19.S.2
/// </code>
/// Not thread-safe: drive one lab from one test at a time. Methods are synchronous so PowerShell can call them.
/// </remarks>
public sealed class NetLab : IDisposable
{
    /// <summary>nft table (family inet) that <see cref="DropPackets(LabNode, int)"/> installs in a node.</summary>
    public const string DropTableName = "sk_lab_drop";

    /// <summary>Maximum nodes: .100 is the client's address.</summary>
    public const int MaxNodes = 99;

    // "sk" + up to 7 more: "<prefix>-n99-p" stays within the 15 characters of an interface name.
    private static readonly Regex PrefixPattern = new("^sk[a-z0-9]{1,7}$", RegexOptions.CultureInvariant);

    private readonly Action<string> _log;
    private readonly List<LabNode> _nodes = new();
    private readonly object _outputLock = new();
    private int _disposed;

    private NetLab(string prefix, int nodeCount, NetLabOptions options)
    {
        Prefix = prefix;
        Options = options;
        LabDirectory = LabDirectoryOf(prefix);
        SwitchNamespace = prefix + "-sw";
        _log = line =>
        {
            try
            {
                options.Log?.Invoke($"[{prefix}] {line}");
            }
            catch (Exception)
            {
                // A broken logger must not break the lab.
            }
        };
        for (var i = 1; i <= nodeCount; i++)
        {
            _nodes.Add(new LabNode(prefix, i, options.Subnet, options.SecondNetwork, options.ApiPort));
        }
        Client = options.CreateClient ? new LabClient(prefix, options.Subnet) : null;
    }

    /// <summary>Prefix of every namespace, interface and folder of this lab.</summary>
    public string Prefix { get; }

    public NetLabOptions Options { get; }

    /// <summary>/tmp/&lt;prefix&gt;.</summary>
    public string LabDirectory { get; }

    /// <summary>"&lt;prefix&gt;-sw": holds br0 (and br1) and the switch-side veths.</summary>
    public string SwitchNamespace { get; }

    public IReadOnlyList<LabNode> Nodes => _nodes;

    /// <summary>The client namespace, or null when <see cref="NetLabOptions.CreateClient"/> is false.</summary>
    public LabClient? Client { get; }

    /// <summary>Every namespace of the lab, nodes first, the switch last.</summary>
    public IReadOnlyList<string> Namespaces =>
        _nodes.Select(n => n.Namespace).Concat(Client is null ? Array.Empty<string>() : new[] { Client.Namespace }).Append(SwitchNamespace).ToList();

    /// <summary>The node called <paramref name="name"/> ("n1").</summary>
    public LabNode GetNode(string name) =>
        _nodes.FirstOrDefault(n => n.Name == name) ?? throw new ArgumentException($"The lab has no node '{name}'.", nameof(name));

    // ---------------------------------------------------------------- creation and cleanup

    /// <summary>Creates a lab with default options.</summary>
    public static NetLab Create(string prefix, int nodeCount) => Create(prefix, nodeCount, null);

    /// <summary>
    /// Removes leftovers of <paramref name="prefix"/>, then builds the namespaces, bridges, veths,
    /// addresses and node folders. Throws <see cref="NotSupportedException"/> when the host cannot
    /// (see <see cref="IsSupported"/>); on any other failure removes what it made and rethrows.
    /// </summary>
    public static NetLab Create(string prefix, int nodeCount, NetLabOptions? options)
    {
        ValidatePrefix(prefix);
        options ??= new NetLabOptions();
        if (nodeCount is < 1 or > MaxNodes)
        {
            throw new ArgumentOutOfRangeException(nameof(nodeCount), nodeCount, $"A lab has 1..{MaxNodes} nodes.");
        }
        if (options.Subnet is < 0 or > 255)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Subnet, "Subnet is the third byte of an address: 0..255.");
        }
        if (options.ApiPort is < 1 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ApiPort, "ApiPort must be 1..65535.");
        }
        if (!IsSupported(out var reason))
        {
            throw new NotSupportedException($"NetLab cannot run here: {reason} (set SK_SKIP_NETNS=1 to skip namespace tests).");
        }

        var lab = new NetLab(prefix, nodeCount, options);
        RemoveLeftoversCore(prefix, deleteFiles: true, lab._log, options.CommandTimeout);
        try
        {
            lab.Build();
            return lab;
        }
        catch
        {
            lab.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Whether this host can run a lab: Linux, root, and iproute2, util-linux (unshare, setsid,
    /// mount, umount) and nftables present. <paramref name="reason"/> says what is missing.
    /// </summary>
    public static bool IsSupported(out string reason)
    {
        if (!OperatingSystem.IsLinux())
        {
            reason = "network namespaces need Linux";
            return false;
        }
        if (!Environment.IsPrivilegedProcess)
        {
            reason = "creating network namespaces needs root";
            return false;
        }
        var missing = new[] { "ip", "unshare", "setsid", "mount", "umount", "nft", "sh", "mkdir" }
            .Where(t => HostTools.Find(t) is null)
            .ToList();
        if (missing.Count > 0)
        {
            reason = $"missing tools: {string.Join(", ", missing)} (packages iproute2, util-linux, mount, nftables)";
            return false;
        }
        if (!File.Exists("/proc/self/ns/net"))
        {
            reason = "the kernel has no network namespaces (/proc/self/ns/net missing)";
            return false;
        }
        reason = string.Empty;
        return true;
    }

    /// <summary>
    /// Removes everything a lab with this prefix may have left: kills the processes in its
    /// namespaces, unmounts what is mounted under /tmp/&lt;prefix&gt;, deletes the namespaces (their
    /// veths go with them) and /tmp/&lt;prefix&gt;. Only exact lab names are touched
    /// (&lt;prefix&gt;-sw, -cl, -n&lt;i&gt;), so "skt1" never removes "skt12"'s lab. Never throws.
    /// </summary>
    public static void RemoveLeftovers(string prefix)
    {
        ValidatePrefix(prefix);
        RemoveLeftoversCore(prefix, deleteFiles: true, _ => { }, TimeSpan.FromSeconds(30));
    }

    /// <summary>
    /// Stops the engines (TERM, then KILL after 10 s), kills every other process in the lab's
    /// namespaces, unmounts anything under /tmp/&lt;prefix&gt;, deletes the namespaces and, unless
    /// <see cref="NetLabOptions.KeepFiles"/>, /tmp/&lt;prefix&gt;. Never throws; safe to call twice.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        Try("stop engines", StopAllEngines);
        RemoveLeftoversCore(Prefix, deleteFiles: !Options.KeepFiles, _log, Options.CommandTimeout);
        // The Process objects stay undisposed: callers may still read ExitCode from them.
    }

    private static void ValidatePrefix(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        if (!PrefixPattern.IsMatch(prefix))
        {
            throw new ArgumentException(
                $"Lab prefix '{prefix}' must be 'sk' followed by 1..7 lowercase letters or digits (interface names are limited to 15 characters).",
                nameof(prefix));
        }
    }

    private static string LabDirectoryOf(string prefix) => Path.Combine("/tmp", prefix);

    private static void RemoveLeftoversCore(string prefix, bool deleteFiles, Action<string> log, TimeSpan timeout)
    {
        var ours = new Regex($"^{Regex.Escape(prefix)}-(sw|cl|n[0-9]{{1,2}})$", RegexOptions.CultureInvariant);
        var namespaces = new List<string>();
        TryStatic(log, "list namespaces", () => namespaces.AddRange(HostTools.ListNetns(timeout).Where(n => ours.IsMatch(n))));
        // The switch last: deleting the hosts first takes their veths away cleanly.
        namespaces = namespaces.OrderBy(n => n.EndsWith("-sw", StringComparison.Ordinal) ? 1 : 0).ThenBy(n => n, StringComparer.Ordinal).ToList();

        foreach (var ns in namespaces)
        {
            TryStatic(log, $"kill processes in {ns}", () => HostTools.KillAllIn(ns, timeout, log));
        }

        var dir = LabDirectoryOf(prefix);
        TryStatic(log, $"unmount under {dir}", () =>
        {
            foreach (var mountPoint in HostTools.MountsUnder(dir))
            {
                log($"umount -l {mountPoint}");
                var r = HostTools.Run(HostTools.Require("umount"), new[] { "-l", mountPoint }, timeout);
                if (!r.Succeeded)
                {
                    log($"umount -l {mountPoint} failed: {r.StdErr.Trim()}");
                }
            }
        });

        foreach (var ns in namespaces)
        {
            TryStatic(log, $"delete namespace {ns}", () =>
            {
                log($"ip netns del {ns}");
                var r = HostTools.Run(HostTools.Ip, new[] { "netns", "del", ns }, timeout);
                if (!r.Succeeded && File.Exists(Path.Combine(HostTools.NetnsDirectory, ns)))
                {
                    log($"ip netns del {ns} failed ({r.StdErr.Trim()}); once more");
                    r = HostTools.Run(HostTools.Ip, new[] { "netns", "del", ns }, timeout * 2);
                    if (!r.Succeeded) log($"ip netns del {ns} failed: {r.StdErr.Trim()}");
                }
            });
        }

        if (deleteFiles)
        {
            TryStatic(log, $"delete {dir}", () =>
            {
                if (Directory.Exists(dir))
                {
                    log($"rm -rf {dir}");
                    Directory.Delete(dir, recursive: true);
                }
            });
        }
    }

    private static void TryStatic(Action<string> log, string what, Action action)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            log($"{what} failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private void Try(string what, Action action) => TryStatic(_log, what, action);

    private void Build()
    {
        Directory.CreateDirectory(LabDirectory);
        var sw = SwitchNamespace;
        IpOk("netns", "add", sw);
        IpOk("-n", sw, "link", "set", "lo", "up");
        IpOk("-n", sw, "link", "add", "br0", "type", "bridge");
        IpOk("-n", sw, "link", "set", "br0", "up");
        if (Options.SecondNetwork)
        {
            IpOk("-n", sw, "link", "add", "br1", "type", "bridge");
            IpOk("-n", sw, "link", "set", "br1", "up");
        }

        foreach (var node in _nodes)
        {
            AddHost(node.Namespace, node.SwitchPort, "eth0", "br0", node.Address);
            if (node.SwitchPort2 is not null && node.Address2 is not null)
            {
                AddLink(node.Namespace, node.SwitchPort2, "eth1", "br1", node.Address2);
            }
            Directory.CreateDirectory(node.Home);
            Directory.CreateDirectory(node.Root);
            foreach (var bind in Options.BindMounts)
            {
                Directory.CreateDirectory(node.RootPath(bind.SourceSubdir));
            }
        }
        if (Client is not null)
        {
            AddHost(Client.Namespace, Client.SwitchPort, "eth0", "br0", Client.Address);
        }
    }

    private void AddHost(string ns, string switchPort, string ifName, string bridge, string address)
    {
        IpOk("netns", "add", ns);
        IpOk("-n", ns, "link", "set", "lo", "up");
        AddLink(ns, switchPort, ifName, bridge, address);
    }

    // The veth pair is created inside the switch namespace, so it never appears in the root namespace.
    private void AddLink(string ns, string switchPort, string ifName, string bridge, string address)
    {
        IpOk("-n", SwitchNamespace, "link", "add", switchPort, "type", "veth", "peer", "name", ifName, "netns", ns);
        IpOk("-n", SwitchNamespace, "link", "set", switchPort, "master", bridge, "up");
        IpOk("-n", ns, "addr", "add", address + "/24", "dev", ifName);
        IpOk("-n", ns, "link", "set", ifName, "up");
    }

    private ExecResult IpOk(params string[] args)
    {
        _log("ip " + string.Join(' ', args));
        return HostTools.Run(HostTools.Ip, args, Options.CommandTimeout).EnsureSuccess();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed != 0, this);

    // ---------------------------------------------------------------- engines and node processes

    /// <summary>
    /// The engine executable: env SK_ENGINE if set, else <c>out/engine/servicekeeper</c> in
    /// AppContext.BaseDirectory, the current directory or any of their parents.
    /// </summary>
    /// <exception cref="FileNotFoundException">Not found; the message says how to build it.</exception>
    public static string FindEngine()
    {
        var fromEnv = Environment.GetEnvironmentVariable("SK_ENGINE");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return File.Exists(fromEnv)
                ? Path.GetFullPath(fromEnv)
                : throw new FileNotFoundException(
                    $"SK_ENGINE is '{fromEnv}', which does not exist. Run `dotnet pwsh ./build.ps1 -Task Build` or correct SK_ENGINE.", fromEnv);
        }
        var starts = new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() };
        foreach (var start in starts)
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "out", "engine", "servicekeeper");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }
        throw new FileNotFoundException(
            $"The ServiceKeeper engine was not found: no out/engine/servicekeeper in or above '{starts[0]}' or '{starts[1]}', and SK_ENGINE is not set. " +
            "Run `dotnet pwsh ./build.ps1 -Task Build` first (it publishes the engine to out/engine/), or set SK_ENGINE to the engine executable.");
    }

    /// <summary>
    /// Starts <c>ENGINE run --home HOME --node-name NAME --listen ADDRESS:PORT EXTRA...</c> in the
    /// node's network namespace and a private mount namespace with the configured bind mounts,
    /// in its own session (process group). Writes &lt;home&gt;/api/admin.key (0600) first when
    /// <paramref name="adminKey"/> is not null or empty. Output is appended to <see cref="LabNode.LogPath"/>.
    /// Returns at once; call <see cref="WaitForEngine"/>.
    /// </summary>
    public Process StartEngine(LabNode node, string? adminKey, params string[] extraArgs)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(node);
        if (node.IsRunning)
        {
            throw new InvalidOperationException($"An engine is already running on {node.Name} (pid {node.EngineProcess!.Id}).");
        }
        var engine = Options.EnginePath ?? FindEngine();
        if (!File.Exists(engine))
        {
            throw new FileNotFoundException($"Engine '{engine}' does not exist. Run `dotnet pwsh ./build.ps1 -Task Build`.", engine);
        }

        Directory.CreateDirectory(node.Home);
        if (!string.IsNullOrEmpty(adminKey))
        {
            WriteSecret(Path.Combine(node.Home, "api", "admin.key"), adminKey);
        }

        var args = new List<string> { "run", "--home", node.Home, "--node-name", node.Name, "--listen", node.ApiEndpoint };
        args.AddRange(extraArgs ?? Array.Empty<string>());
        var psi = NodeStartInfo(node, engine, args, node.LogPath);
        AppendOutput(node, $"==== {DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture)} lab: {HostTools.FormatCommandLine(engine, args)}");
        _log($"start engine on {node.Name}: {HostTools.FormatCommandLine(psi.FileName, psi.ArgumentList)}");

        var process = new Process { StartInfo = psi };
        // Only ip/setsid/unshare speak here (the script redirects itself to engine.out first).
        process.OutputDataReceived += (_, e) => AppendOutput(node, e.Data);
        process.ErrorDataReceived += (_, e) => AppendOutput(node, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();

        node.EngineProcess = process;
        node.EngineMountNamespace = null;
        return process;
    }

    /// <summary>
    /// Waits until the engine's &lt;home&gt;/run/api.sock accepts a connection. Throws
    /// <see cref="InvalidOperationException"/> if the engine exits first and <see cref="TimeoutException"/>
    /// after <paramref name="timeout"/>, both with the last lines of engine.out.
    /// </summary>
    public void WaitForEngine(LabNode node, TimeSpan timeout)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(node);
        var process = node.EngineProcess ?? throw new InvalidOperationException($"No engine was started on {node.Name}.");
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                process.WaitForExit(); // lets the output pump finish
                throw new InvalidOperationException(
                    $"The engine on {node.Name} exited with code {process.ExitCode} before {node.ApiSocketPath} accepted a connection. " +
                    $"Last lines of {node.LogPath}:\n{HostTools.Tail(node.LogPath, 40)}");
            }
            if (CanConnect(node.ApiSocketPath))
            {
                RememberMountNamespace(node, process);
                return;
            }
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException(
                    $"The engine on {node.Name} (pid {process.Id}) did not accept connections on {node.ApiSocketPath} within {timeout.TotalSeconds:0.#} s. " +
                    $"Last lines of {node.LogPath}:\n{HostTools.Tail(node.LogPath, 40)}");
            }
            Thread.Sleep(100);
        }
    }

    /// <summary>SIGTERM to the engine; after 10 s without exit, <see cref="KillEngine"/>. No-op when it is not running.</summary>
    public void StopEngine(LabNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var process = node.EngineProcess;
        if (process is null || !node.IsRunning)
        {
            return;
        }
        RememberMountNamespace(node, process);
        _log($"kill -TERM {process.Id} (engine on {node.Name})");
        HostTools.Signal(process.Id, HostTools.SigTerm);
        if (process.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            process.WaitForExit();
            return;
        }
        _log($"engine on {node.Name} ignored SIGTERM for 10 s");
        KillEngine(node);
    }

    /// <summary>
    /// kill -9 the engine, its process group and every process of the node namespace that shares
    /// the engine's mount namespace (the scripts and applications it started), as a crash would.
    /// </summary>
    public void KillEngine(LabNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var process = node.EngineProcess;
        if (process is null)
        {
            return;
        }
        if (node.IsRunning)
        {
            RememberMountNamespace(node, process);
            _log($"kill -9 -{process.Id} (engine on {node.Name} and its process group)");
            HostTools.Signal(-process.Id, HostTools.SigKill);
            HostTools.Signal(process.Id, HostTools.SigKill);
        }
        var mnt = node.EngineMountNamespace;
        if (mnt is not null && mnt != HostTools.NamespaceOf(Environment.ProcessId, "mnt"))
        {
            foreach (var pid in HostTools.NetnsPids(node.Namespace, Options.CommandTimeout))
            {
                if (HostTools.NamespaceOf(pid, "mnt") == mnt)
                {
                    _log($"kill -9 {pid} (child of the engine on {node.Name})");
                    HostTools.Signal(pid, HostTools.SigKill);
                }
            }
        }
        if (process.WaitForExit(TimeSpan.FromSeconds(5)))
        {
            process.WaitForExit();
        }
    }

    /// <summary>
    /// Starts a program the way <see cref="StartEngine"/> starts the engine (node network namespace,
    /// private mount namespace with the bind mounts, own session), with stdin, stdout and stderr
    /// redirected to the returned <see cref="Process"/>. The caller disposes it; Dispose of the lab kills it.
    /// </summary>
    public Process StartInNode(LabNode node, string fileName, params string[] args)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(node);
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        var psi = NodeStartInfo(node, fileName, args ?? Array.Empty<string>(), outputFile: null);
        _log($"start in {node.Name}: {HostTools.FormatCommandLine(psi.FileName, psi.ArgumentList)}");
        return Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {fileName} in {node.Name}.");
    }

    /// <summary>
    /// Starts a program in the client namespace (own session), output discarded: background load for a
    /// test. The caller disposes it; Dispose of the lab kills it with everything else in its namespaces.
    /// </summary>
    public Process StartInClient(string fileName, params string[] args)
    {
        ThrowIfDisposed();
        var client = Client ?? throw new InvalidOperationException("This lab has no client namespace.");
        var psi = new ProcessStartInfo(HostTools.Require("ip")) { UseShellExecute = false, RedirectStandardInput = true };
        foreach (var a in new[] { "netns", "exec", client.Namespace, HostTools.Require("setsid"), fileName }.Concat(args ?? Array.Empty<string>()))
        {
            psi.ArgumentList.Add(a);
        }
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        _log($"start in client: {HostTools.FormatCommandLine(psi.FileName, psi.ArgumentList)}");
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {fileName} in the client namespace.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>
    /// Runs a command to completion as <see cref="StartInNode"/> would start it (so it sees the
    /// node's bind mounts), with the lab's command timeout.
    /// </summary>
    public ExecResult ExecInNodeWithMounts(LabNode node, string command, params string[] args)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(node);
        var psi = NodeStartInfo(node, command, args ?? Array.Empty<string>(), outputFile: null);
        return HostTools.Run(psi.FileName, psi.ArgumentList, Options.CommandTimeout);
    }

    /// <summary>
    /// Runs a command in the running engine's network and mount namespaces (nsenter), so it sees what the
    /// engine mounted (replicated directories) as the module's application does.
    /// </summary>
    public ExecResult ExecInEngineMounts(LabNode node, TimeSpan timeout, string command, params string[] args)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(node);
        var pid = node.EngineProcess is { HasExited: false } p ? p.Id
            : throw new InvalidOperationException($"No engine runs on {node.Name}.");
        return HostTools.Run(HostTools.Require("nsenter"), ["--target", pid.ToString(CultureInfo.InvariantCulture), "--mount", "--net", "--", command, .. args], timeout);
    }

    // ip netns exec NS setsid unshare --mount --propagation private sh -c SCRIPT sk-NODE FILE ARGS...
    // The program and its arguments travel as sh positional parameters ("$@"), never inside the
    // script text; only the lab's own paths are quoted into it.
    private ProcessStartInfo NodeStartInfo(LabNode node, string fileName, IEnumerable<string> args, string? outputFile)
    {
        var script = new StringBuilder();
        if (outputFile is not null)
        {
            script.Append("exec >>").Append(HostTools.Quote(outputFile)).Append(" 2>&1 </dev/null\n");
        }
        var mkdir = HostTools.Quote(HostTools.Require("mkdir"));
        var mount = HostTools.Quote(HostTools.Require("mount"));
        foreach (var bind in Options.BindMounts)
        {
            var source = HostTools.Quote(node.RootPath(bind.SourceSubdir));
            var target = HostTools.Quote(bind.Target);
            script.Append("[ -d ").Append(target).Append(" ] || ").Append(mkdir).Append(" -p ").Append(target).Append(" || exit 97\n");
            script.Append(mount).Append(" --bind ").Append(source).Append(' ').Append(target).Append(" || exit 97\n");
        }
        script.Append("exec \"$@\"\n");

        var psi = new ProcessStartInfo(HostTools.Ip)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = node.NodeDirectory,
        };
        foreach (var a in new[]
                 {
                     "netns", "exec", node.Namespace,
                     HostTools.Require("setsid"),
                     HostTools.Require("unshare"), "--mount", "--propagation", "private",
                     HostTools.Require("sh"), "-c", script.ToString(), "sk-" + node.Name,
                     fileName,
                 })
        {
            psi.ArgumentList.Add(a);
        }
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        return psi;
    }

    private void AppendOutput(LabNode node, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_outputLock)
        {
            try
            {
                File.AppendAllText(node.LogPath, line + "\n");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The lab is being removed.
            }
        }
    }

    private static void WriteSecret(string path, string content)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("NetLab runs on Linux only.");
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        using (var stream = new FileStream(path, options))
        using (var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)))
        {
            writer.Write(content);
        }
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite); // the file may have existed
    }

    private static bool CanConnect(string socketPath)
    {
        if (!File.Exists(socketPath))
        {
            return false;
        }
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static void RememberMountNamespace(LabNode node, Process process)
    {
        try
        {
            if (!process.HasExited && HostTools.NamespaceOf(process.Id, "mnt") is { } mnt)
            {
                node.EngineMountNamespace = mnt;
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    private void StopAllEngines()
    {
        var running = _nodes.Where(n => n.IsRunning).ToList();
        foreach (var node in running)
        {
            Try($"TERM engine on {node.Name}", () =>
            {
                RememberMountNamespace(node, node.EngineProcess!);
                _log($"kill -TERM {node.EngineProcess!.Id} (engine on {node.Name})");
                HostTools.Signal(node.EngineProcess!.Id, HostTools.SigTerm);
            });
        }
        var clock = Stopwatch.StartNew();
        while (running.Any(n => n.IsRunning) && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(50);
        }
        foreach (var node in running)
        {
            Try($"kill engine on {node.Name}", () => KillEngine(node));
        }
    }

    // ---------------------------------------------------------------- failure injection

    /// <summary>Cuts every network cable of the node (switch-side veths down; the node sees no carrier).</summary>
    public void Cut(LabNode node) => Cut(node, null);

    /// <summary>Cuts the node's cable on network 1 (eth0), 2 (eth1), or every network when null.</summary>
    public void Cut(LabNode node, int? network) => SetPorts(node, network, "down");

    /// <summary>Reconnects every network cable of the node.</summary>
    public void Heal(LabNode node) => Heal(node, null);

    /// <summary>Reconnects the node on network 1, 2, or every network when null.</summary>
    public void Heal(LabNode node, int? network) => SetPorts(node, network, "up");

    private void SetPorts(LabNode node, int? network, string state)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(node);
        foreach (var port in Networks(node, network).Select(n => n == 1 ? node.SwitchPort : node.SwitchPort2!))
        {
            IpOk("-n", SwitchNamespace, "link", "set", port, state);
        }
    }

    private IEnumerable<int> Networks(LabNode node, int? network) => network switch
    {
        null => node.SwitchPort2 is null ? new[] { 1 } : new[] { 1, 2 },
        1 => new[] { 1 },
        2 when node.SwitchPort2 is not null => new[] { 2 },
        2 => throw new InvalidOperationException("The lab has no second network (NetLabOptions.SecondNetwork)."),
        _ => throw new ArgumentOutOfRangeException(nameof(network), network, "Network is 1, 2 or null (all)."),
    };

    /// <summary>Drops <paramref name="percent"/>% of the packets the node receives on eth0, at random.</summary>
    public void DropPackets(LabNode node, int percent) => DropPackets(node, percent, 1);

    /// <summary>
    /// Drops <paramref name="percent"/>% (0..100) of the packets the node receives on network 1
    /// (eth0), 2 (eth1) or every network when null, with an nft <c>numgen random</c> rule in table
    /// inet <see cref="DropTableName"/> inside the node. Replaces the earlier rate of that network.
    /// </summary>
    public void DropPackets(LabNode node, int percent, int? network)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(node);
        if (percent is < 0 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "A drop rate is 0..100 percent.");
        }
        foreach (var n in Networks(node, network))
        {
            if (percent == 0)
            {
                node.DropPercents.Remove(n);
            }
            else
            {
                node.DropPercents[n] = percent;
            }
        }
        ApplyDrops(node);
    }

    /// <summary>Stops every packet drop on the node (removes its nft table).</summary>
    public void ClearDrop(LabNode node) => ClearDrop(node, null);

    /// <summary>Stops dropping packets on network 1, 2 or (null) every network of the node.</summary>
    public void ClearDrop(LabNode node, int? network) => DropPackets(node, 0, network);

    private void ApplyDrops(LabNode node)
    {
        var nft = HostTools.Require("nft");
        var ruleset = new StringBuilder();
        // "table" first makes "delete" safe when the table does not exist yet; one file = one atomic change.
        ruleset.Append("table inet ").Append(DropTableName).Append('\n');
        ruleset.Append("delete table inet ").Append(DropTableName).Append('\n');
        if (node.DropPercents.Count > 0)
        {
            ruleset.Append("table inet ").Append(DropTableName).Append(" {\n");
            ruleset.Append("  chain input {\n    type filter hook input priority -300; policy accept;\n");
            foreach (var (network, percent) in node.DropPercents.OrderBy(d => d.Key))
            {
                var device = network == 1 ? "eth0" : "eth1";
                ruleset.Append("    iifname \"").Append(device).Append('"')
                    .Append(percent >= 100 ? " drop\n" : $" numgen random mod 100 < {percent.ToString(CultureInfo.InvariantCulture)} drop\n");
            }
            ruleset.Append("  }\n}\n");
        }
        _log($"nft in {node.Name}: {ruleset.ToString().Replace('\n', ' ')}");
        HostTools.Run(HostTools.Ip, new[] { "netns", "exec", node.Namespace, nft, "-f", "/dev/stdin" }, Options.CommandTimeout, ruleset.ToString())
            .EnsureSuccess();
    }

    // ---------------------------------------------------------------- commands

    /// <summary>
    /// Runs a command in network namespace <paramref name="ns"/> (<c>ip netns exec</c>), or directly
    /// when <paramref name="ns"/> is null or empty, with <see cref="NetLabOptions.CommandTimeout"/>.
    /// No shell: each argument is passed as is.
    /// </summary>
    public ExecResult Exec(string? ns, string command, params string[] args) => Exec(Options.CommandTimeout, ns, command, args);

    /// <summary>As <see cref="Exec(string?, string, string[])"/> with its own time limit; a command that overruns is killed (ExitCode -1, TimedOut).</summary>
    public ExecResult Exec(TimeSpan timeout, string? ns, string command, params string[] args)
    {
        ThrowIfDisposed();
        ArgumentException.ThrowIfNullOrEmpty(command);
        args ??= Array.Empty<string>();
        if (string.IsNullOrEmpty(ns))
        {
            return HostTools.Run(command, args, timeout);
        }
        return HostTools.Run(HostTools.Ip, new[] { "netns", "exec", ns, command }.Concat(args), timeout);
    }

    /// <summary>
    /// Runs a command in the node's network namespace. It does NOT enter the engine's private mount
    /// namespace, so it sees the host's files at bind-mount targets: read a node's files from
    /// <see cref="LabNode.Root"/>, or use <see cref="ExecInNodeWithMounts"/>.
    /// </summary>
    public ExecResult ExecInNode(LabNode node, string command, params string[] args)
    {
        ArgumentNullException.ThrowIfNull(node);
        return Exec(node.Namespace, command, args);
    }

    /// <summary>True if one ping (1 s timeout) from namespace <paramref name="fromNamespace"/> to <paramref name="address"/> is answered.</summary>
    public bool Ping(string fromNamespace, string address)
    {
        var ping = HostTools.Find("ping")
            ?? throw new InvalidOperationException("'ping' was not found: install iputils-ping.");
        return Exec(TimeSpan.FromSeconds(10), fromNamespace, ping, "-n", "-c", "1", "-W", "1", address).Succeeded;
    }

    /// <summary>True if one ping from the node to <paramref name="address"/> is answered.</summary>
    public bool Ping(LabNode from, string address)
    {
        ArgumentNullException.ThrowIfNull(from);
        return Ping(from.Namespace, address);
    }

    // ---------------------------------------------------------------- logs

    /// <summary>
    /// Copies each node's &lt;home&gt;/log/** and engine.out to &lt;destinationDir&gt;/&lt;node&gt;/.
    /// Best effort: a file that cannot be copied is skipped.
    /// </summary>
    public void CollectLogs(string destinationDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(destinationDir);
        foreach (var node in _nodes)
        {
            var target = Path.Combine(destinationDir, node.Name);
            Try($"collect logs of {node.Name}", () =>
            {
                Directory.CreateDirectory(target);
                if (File.Exists(node.LogPath))
                {
                    File.Copy(node.LogPath, Path.Combine(target, "engine.out"), overwrite: true);
                }
                if (Directory.Exists(node.LogDirectory))
                {
                    foreach (var file in Directory.EnumerateFiles(node.LogDirectory, "*", SearchOption.AllDirectories))
                    {
                        Try($"copy {file}", () =>
                        {
                            var copy = Path.Combine(target, "log", Path.GetRelativePath(node.LogDirectory, file));
                            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
                            File.Copy(file, copy, overwrite: true);
                        });
                    }
                }
            });
        }
    }

    /// <summary>Writes the last 200 lines of every node's engine.out and log files, for a failed test's output.</summary>
    public void DumpLogsTo(TextWriter writer) => DumpLogsTo(writer, 200);

    /// <summary>Writes the last <paramref name="maxLinesPerFile"/> lines of every node's engine.out and log files.</summary>
    public void DumpLogsTo(TextWriter writer, int maxLinesPerFile)
    {
        ArgumentNullException.ThrowIfNull(writer);
        foreach (var node in _nodes)
        {
            var files = new List<string> { node.LogPath };
            try
            {
                if (Directory.Exists(node.LogDirectory))
                {
                    files.AddRange(Directory.EnumerateFiles(node.LogDirectory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                writer.WriteLine($"===== {node.Name}: cannot list {node.LogDirectory}: {e.Message}");
            }
            foreach (var file in files)
            {
                writer.WriteLine($"===== {node.Name}: {file}");
                writer.WriteLine(HostTools.Tail(file, maxLinesPerFile));
            }
        }
    }

    /// <summary><see cref="DumpLogsTo(TextWriter)"/> as a string (for ITestOutputHelper.WriteLine).</summary>
    public string DumpLogs()
    {
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        DumpLogsTo(writer);
        return writer.ToString();
    }

    public override string ToString() => $"NetLab {Prefix}: {_nodes.Count} node(s){(Client is null ? string.Empty : " + client")}{(Options.SecondNetwork ? ", 2 networks" : string.Empty)}";
}
