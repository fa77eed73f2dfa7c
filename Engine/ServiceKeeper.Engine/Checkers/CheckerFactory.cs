// Builds a module's checkers from its userconfig.xml: one per errd <proc> and one per <check> entry.
using System;
using System.Collections.Generic;
using ServiceKeeper.Engine.Configuration;
using ServiceKeeper.Engine.Network;

namespace ServiceKeeper.Engine.Checkers
{
    public static class CheckerFactory
    {
        public static List<IChecker> Create(UserConfig config, CheckerContext context, IVirtualIpManager vips)
        {
            var checkers = new List<IChecker>();
            foreach (var proc in config.Errd.Processes)
                checkers.Add(new ErrdChecker(proc, config.Errd.PollTimer, context));
            foreach (var check in config.Checks)
            {
                checkers.Add(check switch
                {
                    TcpCheckConfig tcp => new TcpChecker(tcp, context),
                    PingCheckConfig ping => new PingChecker(ping, context),
                    InterfaceCheckConfig intf => new InterfaceChecker(intf, context),
                    IpCheckConfig ip => new IpChecker(ip, context, vips),
                    CustomCheckConfig custom => new CustomChecker(custom, context),
                    ModuleCheckConfig module => new ModuleChecker(module, context),
                    SplitBrainCheckConfig splitBrain => new SplitBrainChecker(splitBrain, context),
                    _ => throw new NotSupportedException($"checker <{check.Kind}> is not implemented"),
                });
            }
            return checkers;
        }
    }
}
