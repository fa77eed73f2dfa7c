// Two nodes running PostgreSQL (Debian's package) on a replicated directory behind a mirror module's
// VIP, and a client that records every transaction the database told it was committed.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using ServiceKeeper.Contracts;
using ServiceKeeper.Testing;
using Xunit.Abstractions;

namespace ServiceKeeper.Engine.Tests.Integration
{
    internal sealed class PostgresLab : MirrorModuleLab
    {
        public const string Module = "pg";
        /// <summary>The replicated directory, at the same path on both nodes (each node's own copy, bind-mounted there).</summary>
        public const string DataRoot = "/srv/skpg";
        public const string PgBin = "/usr/lib/postgresql/15/bin";

        private const string StartPrim = """
            #!/bin/sh
            PG=/usr/lib/postgresql/15/bin
            log="$SK_MODULE_DIR/postgres.log"; touch "$log"; chown postgres "$log"
            # A replicated postmaster.pid names the other node's postmaster (the engine has stopped ours): on a
            # real cluster its PID means nothing here; on the lab's shared PID space it may be alive.
            rm -f /srv/skpg/data/postmaster.pid
            # -w: the module is PRIM once the database accepts connections (crash recovery included).
            runuser -u postgres -- $PG/pg_ctl -D /srv/skpg/data -l "$log" -w -t 120 start
            """;

        private const string StopPrim = """
            #!/bin/sh
            PG=/usr/lib/postgresql/15/bin; D=/srv/skpg/data
            [ -f "$D/postmaster.pid" ] || exit 0
            if [ "$3" = force ]; then
              kill -9 "$(head -n 1 "$D/postmaster.pid")" 2>/dev/null
              exit 0
            fi
            runuser -u postgres -- $PG/pg_ctl -D "$D" -m fast -w -t 60 stop
            """;

        private readonly ITestOutputHelper _output;

        public PostgresLab(ITestOutputHelper output, string rfsAttributes = "")
            : base(output.WriteLine, new MirrorModuleSetup
            {
                ModuleName = Module,
                VipHost = 70,
                UserConfigXml = $"""
                    <service mode="mirror">
                      <rfs {rfsAttributes}><replicated dir="{DataRoot}"><notreplicated path="data/pg_stat_tmp"/><tocheck path="data/PG_VERSION"/></replicated></rfs>
                    </service>
                    """,
                Scripts = new Dictionary<string, string> { ["start_prim"] = StartPrim, ["stop_prim"] = StopPrim },
                LabOptions = new NetLabOptions().AddBindMount("pg", DataRoot),
                BeforeEnginesStart = InitializeDatabase,
            })
        {
            _output = output;
        }

        /// <summary>initdb into the first node's copy; the second starts empty and receives it by resync.</summary>
        private static void InitializeDatabase(EngineLab env)
        {
            void Run(string command, params string[] args)
            {
                var r = env.Lab.Exec(TimeSpan.FromSeconds(120), null, command, args);
                if (!r.Succeeded) throw new InvalidOperationException($"{command} {string.Join(' ', args)} failed: {r.StdErr}{r.StdOut}");
            }
            var root = env.Nodes[0].RootPath("pg");
            var data = Path.Combine(root, "data");
            Run("chown", "postgres:postgres", root);
            Run("runuser", "-u", "postgres", "--", PgBin + "/initdb", "-D", data, "-A", "trust", "--no-sync", "-E", "UTF8");
            File.AppendAllText(Path.Combine(data, "postgresql.conf"),
                "listen_addresses = '*'\nport = 5432\nunix_socket_directories = ''\nfsync = on\nsynchronous_commit = on\nmax_connections = 40\n");
            File.AppendAllText(Path.Combine(data, "pg_hba.conf"), "host all all 0.0.0.0/0 trust\n");
            Run("chown", "postgres:postgres", Path.Combine(data, "postgresql.conf"), Path.Combine(data, "pg_hba.conf"));
            Run("chown", "postgres:postgres", env.Nodes[1].RootPath("pg"));
        }

        /// <summary>SQL through the VIP from the client namespace; null when it failed.</summary>
        public string? Sql(string sql, int timeoutSeconds = 30)
        {
            var r = Env.Lab.Exec(TimeSpan.FromSeconds(timeoutSeconds), Env.Lab.Client!.Namespace, "psql",
                $"host={Vip} port=5432 user=postgres dbname=postgres connect_timeout=3", "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql);
            return r.Succeeded ? r.StdOut.Trim() : null;
        }

        public void WaitForSql(string sql, int seconds = 120) =>
            WaitFor(() => Sql(sql) != null, "the database answering through the VIP", seconds, Describe);

        /// <summary>Kills everything of the node at once: the engine and every process in its network namespace (the database).</summary>
        public void KillNode(LabNode node)
        {
            Env.Lab.KillEngine(node);
            var pids = Env.Lab.Exec(null, "ip", "netns", "pids", node.Namespace).StdOut
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (pids.Length > 0) Env.Lab.Exec(null, "kill", ["-9", .. pids]);
        }

        protected override void Dispose(bool disposing)
        {
            try
            {
                // The database's own log says why a start failed (the module log only has pg_ctl's words).
                foreach (var node in Env.Nodes)
                {
                    var log = Path.Combine(node.Home, "modules", Module, "postgres.log");
                    if (disposing && File.Exists(log))
                        _output.WriteLine($"===== {node.Name}: {log} (last lines)\n" + string.Join("\n", File.ReadLines(log).TakeLast(40)));
                }
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException)
            {
                _output.WriteLine("postgres.log not shown: " + ex.Message);
            }
            finally
            {
                base.Dispose(disposing); // namespaces, processes (the client's load included) and files, whatever happened above
            }
        }
    }

    /// <summary>
    /// Inserts numbered rows through the VIP one transaction at a time (autocommit), from the client
    /// namespace, and remembers each number the database acknowledged. Failed or unanswered
    /// transactions are retried with the next number: they may or may not exist; acknowledged ones must.
    /// </summary>
    internal sealed class CommitRecorder : IDisposable
    {
        private readonly PostgresLab _lab;
        private readonly ConcurrentBag<int> _acked = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly Thread _thread;
        private int _next;
        private int _failures;

        public CommitRecorder(PostgresLab lab, int first)
        {
            _lab = lab;
            _next = first;
            _thread = new Thread(Run) { IsBackground = true, Name = "commit recorder" };
            _thread.Start();
        }

        public IReadOnlyCollection<int> Acknowledged => _acked.ToArray();
        public int Failures => Volatile.Read(ref _failures);

        private void Run()
        {
            while (!_stop.IsCancellationRequested)
            {
                // A batch of single-statement transactions in one psql: each "INSERT 0 1" echoed is one commit.
                var ids = Enumerable.Range(_next, 20).ToList();
                _next += ids.Count;
                var sql = string.Concat(ids.Select(i => $"INSERT INTO acked VALUES ({i});\\echo ok {i}\n"));
                var r = _lab.Env.Lab.Exec(TimeSpan.FromSeconds(30), _lab.Env.Lab.Client!.Namespace, "sh", "-c",
                    $"printf '%s' \"$1\" | psql 'host={_lab.Vip} port=5432 user=postgres dbname=postgres connect_timeout=2' -qAtX -v ON_ERROR_STOP=1", "sh", sql);
                foreach (var line in r.StdOut.Split('\n'))
                    if (line.StartsWith("ok ", StringComparison.Ordinal)) _acked.Add(int.Parse(line[3..]));
                if (!r.Succeeded)
                {
                    Interlocked.Increment(ref _failures);
                    Thread.Sleep(100);
                }
            }
        }

        public void WaitForMore(int count, int seconds, Func<string> state)
        {
            var target = _acked.Count + count;
            MirrorModuleLab.WaitFor(() => _acked.Count >= target, $"{count} more acknowledged transactions", seconds, () => $"{_acked.Count} acknowledged, {Failures} failed batches; " + state());
        }

        public void Dispose()
        {
            _stop.Cancel();
            _thread.Join(TimeSpan.FromSeconds(60));
            _stop.Dispose();
        }
    }
}
