using System;

namespace ServiceKeeper.Contracts
{
    /// <summary>A failed API call, carrying the stable error id the engine (or the transport) gave.</summary>
    public sealed class SKApiException : Exception
    {
        public SKApiException(string errorId, string message, string? target = null, int statusCode = 0, Exception? inner = null)
            : base(message, inner)
        {
            ErrorId = errorId;
            Target = target;
            StatusCode = statusCode;
        }

        public string ErrorId { get; }
        public string? Target { get; }
        public int StatusCode { get; }
    }
}
