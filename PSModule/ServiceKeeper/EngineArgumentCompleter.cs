// Tab completion of names the engine knows (modules, nodes), from the engine the command line points at.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Threading;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Completes a parameter with names asked of the engine, honouring -ComputerName/-Credential/
    /// -SkipCertificateCheck already typed and the session's connection. Completion must never fail or
    /// hang the prompt: any error gives no completions, and the engine gets a short time to answer.
    /// </summary>
    public abstract class EngineArgumentCompleter : IArgumentCompleter
    {
        private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

        /// <summary>The candidates: name and tooltip.</summary>
        protected abstract IEnumerable<KeyValuePair<string, string>> GetNames(SKApiClient client, CancellationToken ct);

        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            try
            {
                var endpoint = SKConnection.Resolve(
                    Unwrap(fakeBoundParameters?["ComputerName"]) as string,
                    Unwrap(fakeBoundParameters?["Credential"]) as PSCredential,
                    IsSet(fakeBoundParameters?["SkipCertificateCheck"]),
                    CurrentConnection());
                endpoint.Timeout = Timeout;
                List<KeyValuePair<string, string>> names;
                using (var client = new SKApiClient(endpoint))
                using (var cts = new CancellationTokenSource(Timeout))
                    names = GetNames(client, cts.Token).ToList();

                var word = (wordToComplete ?? "").Trim('\'', '"');
                var pattern = new WildcardPattern(WildcardPattern.Escape(word) + "*", WildcardOptions.IgnoreCase);
                return names
                    .Where(n => pattern.IsMatch(n.Key))
                    .OrderBy(n => n.Key, StringComparer.OrdinalIgnoreCase)
                    .Select(n => new CompletionResult(Quote(n.Key), n.Key, CompletionResultType.ParameterValue, n.Value))
                    .ToList();
            }
            catch (Exception)
            {
                return Enumerable.Empty<CompletionResult>();
            }
        }

        private static SKConnection? CurrentConnection()
        {
            // Completion runs on the pipeline thread of the session, so a script block reads its variables.
            var value = ScriptBlock.Create("$global:" + SKConnection.VariableName).Invoke().FirstOrDefault();
            return Unwrap(value) as SKConnection;
        }

        private static object? Unwrap(object? value) => value is PSObject wrapped ? wrapped.BaseObject : value;

        private static bool IsSet(object? value)
        {
            switch (Unwrap(value))
            {
                case SwitchParameter s: return s.IsPresent;
                case bool b: return b;
                default: return false;
            }
        }

        private static string Quote(string name) =>
            name.IndexOfAny(new[] { ' ', '\'', '"', '$', '`', ',', ';', '(', ')', '{', '}', '@', '&', '#', '|', '<', '>', '[', ']' }) < 0
                ? name
                : "'" + name.Replace("'", "''") + "'";
    }
}
