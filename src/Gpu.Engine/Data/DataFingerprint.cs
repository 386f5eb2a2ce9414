using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Gpu.Engine.Data;

/// <summary>
/// What identifies the data a run trained on, wherever its files lie: the number of training images (after
/// --limit) and test images, the pixels per image, the classes, and a SHA-256 over every pixel and label of
/// both splits. A run may continue on data at another path when the fingerprints match.
/// </summary>
internal sealed record DataFingerprint(int TrainImages, int TestImages, int Features, int Classes, string Sha256)
{
    public static DataFingerprint Of(DataPair data)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var d in new[] { data.Train, data.Test })
        {
            if (d.Mapped == null) h.AppendData(d.Pixels);
            else   // read in place, a few MB at a time: the same bytes as the loaded pixels
            {
                int rows = Math.Max(1, (8 << 20) / d.Features);
                var chunk = new byte[(long)rows * d.Features];
                for (int r = 0; r < d.Count; r += rows)
                {
                    int n = Math.Min(rows, d.Count - r);
                    d.CopyRows(r, n, chunk);
                    h.AppendData(chunk, 0, n * d.Features);
                }
            }
            h.AppendData(MemoryMarshal.AsBytes(d.Labels.AsSpan()));
        }
        return new DataFingerprint(data.Train.Count, data.Test.Count, data.Train.Features, data.Train.Classes, Convert.ToHexStringLower(h.GetHashAndReset()));
    }

    /// <summary>"1,800 training and 10,000 test images of 784 pixels, 10 classes (SHA-256 0123456789ab...)"</summary>
    public string Describe() => $"{TrainImages:N0} training and {TestImages:N0} test images of {Features} pixels, {Classes} classes (SHA-256 {Sha256[..12]}...)";
}
