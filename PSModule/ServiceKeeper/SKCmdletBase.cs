// What every ServiceKeeper cmdlet shares: where to connect, the engine call, and the one error helper.
using System;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using ServiceKeeper.Contracts;

namespace ServiceKeeper.Commands
{
    /// <summary>
    /// Base of the cmdlets that talk to an engine: -ComputerName, -Credential, -SkipCertificateCheck.
    /// Errors follow one rule: a bad parameter (-ComputerName that does not parse) is terminating, as
    /// parameter validation is; anything that fails for a target (node unreachable, credential refused,
    /// module missing, engine refusal) is a non-terminating error, so a pipeline goes on with the next
    /// input and -ErrorAction decides.
    /// </summary>
    public abstract class SKCmdletBase : PSCmdlet, IDisposable
    {
        private readonly CancellationTokenSource _stopping = new CancellationTokenSource();
        private SKApiClient? _client;

        /// <summary>Engine to talk to: host, address, host:port or [IPv6]:port (HTTPS, default port 9453).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public virtual string? ComputerName { get; set; }

        /// <summary>The password is the node's admin key; the user name is ignored.</summary>
        [Parameter]
        [Credential]
        public virtual PSCredential? Credential { get; set; }

        /// <summary>Accept the engine's TLS certificate without validating it.</summary>
        [Parameter]
        public SwitchParameter SkipCertificateCheck { get; set; }

        /// <summary>Cancelled by Ctrl+C (StopProcessing).</summary>
        protected internal CancellationToken StopToken => _stopping.Token;

        /// <summary>Client of the engine resolved in BeginProcessing.</summary>
        protected internal SKApiClient Client => _client ?? throw new InvalidOperationException("BeginProcessing has not run.");

        protected SKConnection? DefaultConnection => SKConnection.Get(SessionState);

        protected override void BeginProcessing()
        {
            SKEndpoint endpoint;
            try
            {
                endpoint = ResolveEndpoint();
            }
            catch (SKApiException e)
            {
                ThrowTerminatingError(NewErrorRecord(e, e.Target));
                return;
            }
            _client = new SKApiClient(endpoint);
        }

        /// <summary>-ComputerName, else the connection of Connect-SKCluster, else the local engine.</summary>
        protected virtual SKEndpoint ResolveEndpoint() =>
            SKConnection.Resolve(ComputerName, Credential, SkipCertificateCheck.IsPresent, DefaultConnection);

        /// <summary>
        /// Calls the engine and waits for the answer. On failure writes a non-terminating error
        /// (target: <paramref name="target"/>, else what the engine named) and returns false.
        /// </summary>
        protected bool TryCall<T>(Func<SKApiClient, CancellationToken, Task<T>> call, object? target, out T result)
        {
            try
            {
                result = call(Client, StopToken).GetAwaiter().GetResult();
                return true;
            }
            catch (SKApiException e)
            {
                WriteError(NewErrorRecord(e, target));
                result = default!;
                return false;
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }
        }

        /// <summary>Writes a non-terminating error made by the cmdlet itself (not by an API call).</summary>
        protected internal void WriteError(string errorId, string message, object? target) =>
            WriteError(NewErrorRecord(new SKApiException(errorId, message, target?.ToString()), target));

        /// <summary>
        /// Stops the statement for a parameter value that is wrong before any engine is asked (a virtual IP
        /// that does not parse, a file that does not exist): terminating, as parameter validation is.
        /// </summary>
        protected void ThrowInvalidArgument(string message, object? target) =>
            ThrowTerminatingError(NewErrorRecord(new SKApiException(ErrorIds.InvalidArgument, message, target?.ToString()), target));

        /// <summary>Waits <paramref name="delay"/>, or stops the pipeline on Ctrl+C.</summary>
        protected internal void Sleep(TimeSpan delay)
        {
            if (delay > TimeSpan.Zero && StopToken.WaitHandle.WaitOne(delay))
                throw new PipelineStoppedException();
        }

        /// <summary>The one place ErrorRecords are made: the error id is the API's, the category follows from it.</summary>
        internal static ErrorRecord NewErrorRecord(SKApiException exception, object? target)
        {
            var record = new ErrorRecord(exception, exception.ErrorId, CategoryOf(exception.ErrorId), target ?? exception.Target);
            var action = RecommendedActionOf(exception.ErrorId);
            if (action != null)
                record.ErrorDetails = new ErrorDetails(exception.Message) { RecommendedAction = action };
            return record;
        }

        internal static ErrorCategory CategoryOf(string errorId)
        {
            switch (errorId)
            {
                case ErrorIds.AuthenticationFailed: return ErrorCategory.AuthenticationError;
                case ErrorIds.NodeUnreachable: return ErrorCategory.ConnectionError;
                case ErrorIds.ClusterNotFound:
                case ErrorIds.ModuleNotFound:
                case ErrorIds.NodeNotFound:
                case ErrorIds.ResourceNotFound: return ErrorCategory.ObjectNotFound;
                case ErrorIds.ClusterExists:
                case ErrorIds.ModuleExists: return ErrorCategory.ResourceExists;
                case ErrorIds.InvalidArgument:
                case ErrorIds.InvalidComputerName: return ErrorCategory.InvalidArgument;
                case ErrorIds.InvalidConfiguration: return ErrorCategory.InvalidData;
                case ErrorIds.NotSupported:
                case ErrorIds.DataNotUpToDate:
                case ErrorIds.InvalidModuleState: return ErrorCategory.InvalidOperation;
                case ErrorIds.WaitTimeout: return ErrorCategory.OperationTimeout;
                case ErrorIds.ModuleStopped: return ErrorCategory.OperationStopped;
                default: return ErrorCategory.NotSpecified;
            }
        }

        private static string? RecommendedActionOf(string errorId)
        {
            switch (errorId)
            {
                case ErrorIds.AuthenticationFailed:
                    return "Pass the node's admin key (<home>/api/admin.key on that node) as the password of -Credential.";
                case ErrorIds.NodeUnreachable:
                    return "Check that the engine runs on the node (servicekeeper run), and the name, port and firewall given by -ComputerName; without -ComputerName, that this user may open the local engine's socket.";
                case ErrorIds.ClusterNotFound:
                    return "Create the cluster with New-SKCluster, or connect to a node of an existing cluster with -ComputerName or Connect-SKCluster.";
                case ErrorIds.DataNotUpToDate:
                    return "Make the node whose data is up to date primary (Get-SKState shows UpToDate), or wait for it to come back; Set-SKPrimary -Force starts this node anyway and loses the changes made on the other node since they were last in sync.";
                case ErrorIds.WaitTimeout:
                case ErrorIds.ModuleStopped:
                    return "Get-SKState -Name <module> shows why each node is in its state, Get-SKLog -Name <module> what the module did; wait longer with -Timeout if it is still progressing.";
                default:
                    return null;
            }
        }

        protected override void StopProcessing()
        {
            try
            {
                _stopping.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Ctrl+C after the cmdlet finished: nothing left to cancel.
            }
        }

        public void Dispose()
        {
            _client?.Dispose();
            _stopping.Dispose();
        }
    }
}
