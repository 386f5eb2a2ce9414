namespace Gpu.Engine;

/// <summary>
/// An error the user can fix (bad file, bad flag, missing device, ...). The CLI prints its
/// message as one line on stderr, without a stack trace, and exits with <see cref="ExitCode"/>.
/// </summary>
public sealed class UserError(string message, int exitCode = 2) : Exception(message)
{
    /// <summary>The exit code the CLI ends with: 2 for bad input, 3 for a diverged run, 4 for a device or check failure.</summary>
    public int ExitCode { get; } = exitCode;
}
