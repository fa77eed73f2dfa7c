// /proc reading: names, command lines, long names, and the network-namespace filter that keeps
// the nodes of a one-machine lab from counting each other's processes.
using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using ServiceKeeper.Engine.Checkers;
using ServiceKeeper.Engine.Tests.Testing;
using ServiceKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Checkers;

public sealed class LinuxProcessTableTests
{
    private readonly ITestOutputHelper _output;

    public LinuxProcessTableTests(ITestOutputHelper output) => _output = output;

    [LinuxFact]
    public void Snapshot_ListsAStartedProcess_WithItsNameAndCommandLine()
    {
        using var processes = new TestProcesses();
        var name = TestProcesses.UniqueName();
        var process = processes.Start(processes.SleepBinary(name), "600", "1");
        var table = new LinuxProcessTable();

        ProcessEntry? entry = null;
        Wait.Until(() => (entry = table.Snapshot().FirstOrDefault(p => p.Pid == process.Id)) is not null, "the process in the table");

        Assert.Equal(name, entry!.Name);
        Assert.EndsWith($"{name} 600 1", entry.CommandLine, StringComparison.Ordinal);
        Assert.False(process.HasExited);
        Assert.Contains(table.Snapshot(), p => p.Pid == Environment.ProcessId);
    }

    [LinuxFact]
    public void Snapshot_NameLongerThanComm_IsReportedInFull()
    {
        using var processes = new TestProcesses();
        var name = TestProcesses.UniqueName(24);
        var process = processes.Start(processes.SleepBinary(name), "600");
        var table = new LinuxProcessTable();

        Wait.Until(() => table.Snapshot().Any(p => p.Pid == process.Id), "the process in the table");

        Assert.Equal(name, table.Snapshot().Single(p => p.Pid == process.Id).Name);
    }

    [LinuxFact]
    public void Snapshot_ExitedProcess_IsGone()
    {
        using var processes = new TestProcesses();
        var process = processes.Start(processes.SleepBinary(TestProcesses.UniqueName()), "600");
        var table = new LinuxProcessTable();
        Wait.Until(() => table.Snapshot().Any(p => p.Pid == process.Id), "the process in the table");

        TestProcesses.Kill(process);

        Assert.DoesNotContain(table.Snapshot(), p => p.Pid == process.Id);
    }

    [Theory]
    [InlineData("postgres", "postgres: checkpointer\0", "postgres")]
    [InlineData("skabcdefghijklm", "/tmp/x/skabcdefghijklmnopq\0600\0", "skabcdefghijklmnopq")]
    [InlineData("skabcdefghijklm", "skabcdefghijklmnop: worker 3\0", "skabcdefghijklmnop")]
    [InlineData("skabcdefghijklm", "/usr/bin/other\0", "skabcdefghijklm")]
    [InlineData("kworker/0:1-eve", "", "kworker/0:1-eve")]
    public void NameOf_UsesArgv0_OnlyWhenCommWasCut(string comm, string cmdline, string expected)
    {
        Assert.Equal(expected, LinuxProcessTable.NameOf(comm, Encoding.UTF8.GetBytes(cmdline)));
    }

    [Fact]
    public void CommandLineOf_JoinsArgumentsWithSpaces_AndKernelThreadsShowTheirName()
    {
        Assert.Equal("/bin/sleep 600 x y", LinuxProcessTable.CommandLineOf(Encoding.UTF8.GetBytes("/bin/sleep\0600\0x y\0"), "sleep"));
        Assert.Equal("kthreadd", LinuxProcessTable.CommandLineOf(Array.Empty<byte>(), "kthreadd"));
    }

    [NetnsFact]
    public void Snapshot_LeavesOutProcessesOfAnotherNetworkNamespace()
    {
        using var processes = new TestProcesses();
        var name = TestProcesses.UniqueName();
        var binary = processes.SleepBinary(name);
        var local = processes.Start(binary, "600");
        var table = new LinuxProcessTable();

        using var lab = NetLab.Create("skp" + Guid.NewGuid().ToString("N")[..6], 1, new NetLabOptions { Log = _output.WriteLine, CreateClient = false });
        using var remote = lab.StartInNode(lab.Nodes[0], binary, "601");
        try
        {
            // The lab's process is visible in the shared PID namespace...
            int? remotePid = null;
            Wait.Until(() => (remotePid = FindByCommandLine(name, "601")) is not null, "the lab's process in /proc");
            Assert.NotEqual(
                new FileInfo("/proc/self/ns/net").LinkTarget,
                new FileInfo($"/proc/{remotePid}/ns/net").LinkTarget);

            // ...but not in this node's table, which still has the local one.
            var snapshot = table.Snapshot();
            Assert.DoesNotContain(snapshot, p => p.Pid == remotePid);
            Assert.Contains(snapshot, p => p.Pid == local.Id && p.Name == name);
        }
        finally
        {
            TestProcesses.Kill(remote);
        }
    }

    private static int? FindByCommandLine(string name, string argument)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
                continue;
            try
            {
                var comm = File.ReadAllText(Path.Combine(dir, "comm")).TrimEnd('\n');
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (comm == name && cmdline.Contains(argument))
                    return pid;
            }
            catch (IOException)
            {
            }
        }
        return null;
    }
}
