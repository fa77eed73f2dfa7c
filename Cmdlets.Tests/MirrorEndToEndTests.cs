// The mirror-module cmdlets against real engines: an admin's session from the client namespace.
using System;
using System.IO;
using System.Linq;
using ServiceKeeper.Testing;
using Xunit;
using Xunit.Abstractions;

namespace ServiceKeeper.Cmdlets.Tests
{
    public class MirrorEndToEndTests(ITestOutputHelper output)
    {
        private const string StartPrim = "#!/bin/sh\nmkdir -p \"$SK_MODULE_DIR/www\" && echo \"$SK_NODE\" > \"$SK_MODULE_DIR/www/index.html\"\n" +
            "setsid python3 -m http.server 8080 --directory \"$SK_MODULE_DIR/www\" > /dev/null 2>&1 < /dev/null &\necho $! > \"$SK_MODULE_DIR/http.pid\"\n" +
            // Ready when it answers: the module is PRIM only once the application serves.
            "for i in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done\n";
        private const string StopPrim = "#!/bin/sh\n[ -f \"$SK_MODULE_DIR/http.pid\" ] && kill \"$(cat \"$SK_MODULE_DIR/http.pid\")\" 2>/dev/null\nrm -f \"$SK_MODULE_DIR/http.pid\"; exit 0\n";

        [Fact]
        public void AddStartSwapMaintainStop_AsAnAdminWouldFromTheClient()
        {
            using var env = new EngineLab(output.WriteLine, 2);
            var scripts = Directory.CreateTempSubdirectory("sk-scripts-");
            try
            {
                File.WriteAllText(Path.Combine(scripts.FullName, "start_prim"), StartPrim);
                File.WriteAllText(Path.Combine(scripts.FullName, "stop_prim"), StopPrim);
                var vip = $"198.18.{env.Lab.Options.Subnet}.50";
                var result = NamespaceShell.Run(env.Lab.Client!.Namespace, $$"""
                    $cred = [pscredential]::new('admin', (ConvertTo-SecureString '{{EngineLab.AdminKey}}' -AsPlainText -Force))
                    # A client retries for a few seconds, as clients of a service that just moved do.
                    function Get-Vip { foreach ($i in 1..50) { try { return (Invoke-WebRequest http://{{vip}}:8080/ -TimeoutSec 1 -DisableKeepAlive).Content.Trim() } catch { Start-Sleep -Milliseconds 200 } }; 'no answer' }
                    Connect-SKCluster -ComputerName {{env.Nodes[0].Address}} -Credential $cred -SkipCertificateCheck
                    New-SKCluster -Name c1 -Node {{env.Nodes[0].Address}},{{env.Nodes[1].Address}} | Out-Null
                    Add-SKMirrorModule -Name web -Node n1,n2 -VirtualIP {{vip}}/24 -Witness {{env.Lab.Client.Address}} -ScriptPath '{{scripts.FullName}}'
                    Get-SKModule | Start-SKModule -Wait -Timeout 60 -PassThru
                    "answer before swap: " + (Get-Vip)
                    Set-SKPrimary -Name web -Node n2
                    Start-SKSwap -Name web -Wait -Timeout 60 -Confirm:$false -PassThru
                    "answer after swap: " + (Get-Vip)
                    Get-SKResource -Name web
                    Set-SKMaintenance -Name web -Failover Off -PassThru -Confirm:$false
                    Get-SKLog -Name web -Node n1 -Tail 200
                    Stop-SKModule -Name web -Confirm:$false
                    "n1", "n2" | ForEach-Object { Wait-SKState -Name web -Node $_ -State STOP -Timeout 60 }
                    """, TimeSpan.FromMinutes(4));

                output.WriteLine(result.ToString());
                // The only error: Set-SKPrimary on the up-to-date secondary of a running primary.
                Assert.Equal(["InvalidModuleState,ServiceKeeper.Commands.SetSKPrimaryCommand"], result.ErrorIds);
                Assert.Null(result.Terminating);
                var text = result.Output.Where(o => o.BaseObject is string).Select(o => (string)o.BaseObject).ToList();
                Assert.Contains("answer before swap: n1", text);
                Assert.Contains("answer after swap: n2", text);

                var states = result.OfType("ServiceKeeper.Contracts.ModuleState");
                string Row(int i) => $"{states[i].Properties["Node"].Value} {states[i].Properties["State"].Value} {states[i].Properties["Ready"].Value}";
                // Start -Wait, then the swap, then maintenance (two nodes each), then the two STOP waits.
                Assert.Equal(["n1 PRIM True", "n2 SECOND True"], new[] { Row(0), Row(1) }.OrderBy(r => r));
                Assert.Equal(["n1 SECOND True", "n2 PRIM True"], new[] { Row(2), Row(3) }.OrderBy(r => r));
                Assert.All(states.Skip(4).Take(2), s => Assert.False((bool)s.Properties["FailoverEnabled"].Value));
                Assert.All(states.Skip(6), s => Assert.Equal("STOP", s.Properties["State"].Value));

                var resources = result.OfType("ServiceKeeper.Contracts.ModuleResource");
                Assert.Contains(resources, r => (string)r.Properties["Resource"].Value == "splitbrain.witness" && (string)r.Properties["Node"].Value == "n1");
                var log = result.OfType("ServiceKeeper.Contracts.LogLine").Select(l => (string)l.Properties["Text"].Value).ToList();
                Assert.Contains(log, l => l.Contains("swap requested"));
            }
            finally
            {
                scripts.Delete(recursive: true);
            }
        }
            [Fact]
        public void ReplicatedDirectory_FromAddToTest_AsAnAdminWouldFromTheClient()
        {
            const string dir = "/srv/skcmd";
            using var env = new EngineLab(output.WriteLine, 2, options: new NetLabOptions().AddBindMount("data", dir));
            // What the application wrote on n1 before the module existed: the secondary receives it by resync.
            File.WriteAllText(env.Nodes[0].RootPath("data/existing.txt"), "written before the module\n");
            var vip = $"198.18.{env.Lab.Options.Subnet}.55";
            var result = NamespaceShell.Run(env.Lab.Client!.Namespace, $$"""
                $cred = [pscredential]::new('admin', (ConvertTo-SecureString '{{EngineLab.AdminKey}}' -AsPlainText -Force))
                Connect-SKCluster -ComputerName {{env.Nodes[0].Address}} -Credential $cred -SkipCertificateCheck
                New-SKCluster -Name c1 -Node {{env.Nodes[0].Address}},{{env.Nodes[1].Address}} | Out-Null
                Add-SKMirrorModule -Name files -Node n1,n2 -VirtualIP {{vip}}/24 -Witness {{env.Lab.Client.Address}} -ReplicatedDirectory {{dir}} | Out-Null
                Start-SKModule -Name files -Wait -Timeout 120 | Out-Null
                Get-SKReplication -Name files
                "identical: " + (Test-SKReplication -Name files -Quiet)
                Get-SKReplication -Name nosuchmodule
                """, TimeSpan.FromMinutes(4));

            output.WriteLine(result.ToString());
            Assert.Null(result.Terminating);
            Assert.Equal(["ModuleNotFound,ServiceKeeper.Commands.GetSKReplicationCommand"], result.ErrorIds);
            var rows = result.OfType("ServiceKeeper.Contracts.ReplicationStatus")
                .ToDictionary(r => (string)r.Properties["Node"].Value, r => (string)r.Properties["State"].Value);
            Assert.Equal("replicating", rows["n1"]);
            Assert.Equal("receiving", rows["n2"]);
            Assert.Contains("identical: True", result.Output.Where(o => o.BaseObject is string).Select(o => (string)o.BaseObject));
            Assert.Equal("written before the module\n", File.ReadAllText(env.Nodes[1].RootPath("data/existing.txt")));
        }
    }
}
