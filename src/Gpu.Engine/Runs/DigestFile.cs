using System.Security.Cryptography;
using System.Text;

namespace Gpu.Engine.Runs;

/// <summary>
/// SHA-256 digests of the files in one folder, kept in a file of <c>sha256sum</c>'s format beside them
/// (one <c>&lt;64 hex digits&gt;  &lt;name&gt;</c> line per file), so <c>sha256sum -c</c> checks them too. A file
/// listed there that no longer matches its digest was changed (edited, damaged) after it was written.
/// </summary>
internal static class DigestFile
{
    /// <summary>The SHA-256 of <paramref name="bytes"/> as 64 lower-case hex digits.</summary>
    public static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The digest file's text for these files (name and content each).</summary>
    public static byte[] Text(params (string Name, byte[] Bytes)[] files) =>
        Encoding.UTF8.GetBytes(string.Concat(files.Select(f => $"{Sha256(f.Bytes)}  {f.Name}\n")));

    /// <summary>
    /// Why <paramref name="bytes"/>, the content of the file <paramref name="name"/>, fail the digest file
    /// <paramref name="digestPath"/>: it does not match its digest, or the digest file cannot be read, is
    /// malformed or (when <paramref name="mustBeListed"/>) lists no digest for it. Null when it matches, or is not listed and need not be.
    /// </summary>
    public static string? Mismatch(string digestPath, string name, ReadOnlySpan<byte> bytes, bool mustBeListed = true)
    {
        string digestName = Path.GetFileName(digestPath);
        string? want = Listed(digestPath, name, out string? unreadable);
        if (unreadable != null) return unreadable;
        if (want == null) return mustBeListed ? $"{digestName} lists no digest for it" : null;
        return string.Equals(Sha256(bytes), want, StringComparison.OrdinalIgnoreCase) ? null
            : $"does not match its SHA-256 digest in {digestName}: the file changed (was edited or damaged) after it was written";
    }

    /// <summary>The digest <paramref name="digestPath"/> lists for <paramref name="name"/> (null when none); <paramref name="unreadable"/> says why the file cannot be used.</summary>
    static string? Listed(string digestPath, string name, out string? unreadable)
    {
        unreadable = null;
        string digestName = Path.GetFileName(digestPath);
        string[] lines;
        try { lines = File.ReadAllLines(digestPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { unreadable = $"cannot read {digestName} ({e.Message.TrimEnd('.')})"; return null; }
        foreach (var line in lines.Where(l => l.Length > 0))
        {
            // "<hex>  name" (text mode) or "<hex> *name" (binary mode), as sha256sum writes them
            if (line.Length < 67 || line[64] != ' ' || line[65] is not (' ' or '*') || !line[..64].All(char.IsAsciiHexDigit))
            {
                unreadable = $"{digestName} is malformed (a line is not '<64 hex digits>  <file name>')";
                return null;
            }
            if (line[66..] == name) return line[..64];
        }
        return null;
    }
}
