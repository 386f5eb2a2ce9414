namespace Gpu.Engine;

/// <summary>
/// An error the user can fix (bad file, bad flag, missing device, ...). The CLI prints its
/// message as one line on stderr, without a stack trace, and exits with <see cref="ExitCode"/>.
/// </summary>
public sealed class UserError(string message, int exitCode = 2) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
