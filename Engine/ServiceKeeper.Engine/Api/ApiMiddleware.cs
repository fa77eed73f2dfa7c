// Authentication (HTTPS needs the admin key; the local socket/pipe is protected by its file mode/ACL)
// and the mapping of failures to the API's error bodies.
using System;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ServiceKeeper.Contracts;
using ServiceKeeper.Engine.Configuration;

namespace ServiceKeeper.Engine.Api
{
    public sealed partial class ApiMiddleware(string adminKey, ILogger<ApiMiddleware> log)
    {
        private readonly byte[] _key = Encoding.UTF8.GetBytes(adminKey);

        public async Task InvokeAsync(HttpContext ctx, RequestDelegate next)
        {
            if (ctx.Request.IsHttps && !IsAuthorized(ctx.Request.Headers.Authorization.ToString()))
            {
                LogRejected(ctx.Request.Method, ctx.Request.Path.ToString(), ctx.Connection.RemoteIpAddress?.ToString() ?? "?");
                ctx.Response.Headers.WWWAuthenticate = "Basic realm=\"ServiceKeeper\"";
                await ApiEndpoints.Write(ctx, new ApiError { ErrorId = ErrorIds.AuthenticationFailed, Message = "The admin key is missing or wrong." }, StatusCodes.Status401Unauthorized);
                return;
            }
            try
            {
                await next(ctx);
            }
            catch (SKApiException ex) when (!ctx.Response.HasStarted)
            {
                await ApiEndpoints.Write(ctx, new ApiError { ErrorId = ex.ErrorId, Message = ex.Message, Target = ex.Target }, StatusOf(ex.ErrorId));
            }
            catch (ConfigurationException ex) when (!ctx.Response.HasStarted)
            {
                await ApiEndpoints.Write(ctx, new ApiError { ErrorId = ErrorIds.InvalidConfiguration, Message = ex.Message, Target = ex.File }, StatusCodes.Status400BadRequest);
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
                // The client went away.
            }
            catch (Exception ex) when (!ctx.Response.HasStarted)
            {
                LogFailed(ex, ctx.Request.Method, ctx.Request.Path.ToString());
                await ApiEndpoints.Write(ctx, new ApiError { ErrorId = ErrorIds.InternalError, Message = "The engine failed: " + ex.Message }, StatusCodes.Status500InternalServerError);
            }
        }

        /// <summary>Basic (any user name, password = admin key) or Bearer (the admin key), compared in constant time.</summary>
        private bool IsAuthorized(string header)
        {
            string? presented = null;
            if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                presented = header[7..].Trim();
            }
            else if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
            {
                try
                {
                    var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
                    int colon = decoded.IndexOf(':');
                    presented = colon >= 0 ? decoded[(colon + 1)..] : null;
                }
                catch (FormatException)
                {
                    return false;
                }
            }
            return presented != null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), _key);
        }

        public static int StatusOf(string errorId) => errorId switch
        {
            ErrorIds.AuthenticationFailed => StatusCodes.Status401Unauthorized,
            ErrorIds.ClusterNotFound or ErrorIds.ModuleNotFound or ErrorIds.NodeNotFound => StatusCodes.Status404NotFound,
            ErrorIds.ClusterExists or ErrorIds.ModuleExists or ErrorIds.DataNotUpToDate or ErrorIds.InvalidModuleState => StatusCodes.Status409Conflict,
            ErrorIds.InvalidArgument or ErrorIds.InvalidConfiguration => StatusCodes.Status400BadRequest,
            ErrorIds.NodeUnreachable => StatusCodes.Status502BadGateway,
            ErrorIds.NotSupported => StatusCodes.Status501NotImplemented,
            _ => StatusCodes.Status500InternalServerError,
        };

        [LoggerMessage(Level = LogLevel.Warning, Message = "rejected {Method} {Path} from {Remote}: missing or wrong admin key")]
        private partial void LogRejected(string method, string path, string remote);

        [LoggerMessage(Level = LogLevel.Error, Message = "{Method} {Path} failed")]
        private partial void LogFailed(Exception ex, string method, string path);
    }
}
