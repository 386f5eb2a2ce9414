using System.Buffers.Binary;
using System.Globalization;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.RegularExpressions;

namespace Gpu.Engine.Data;

/// <summary>
/// An image file read in place through a memory mapping, for training sets larger than host memory
/// (<c>--data-path stream</c>): an uncompressed IDX file of unsigned bytes, or a C-order .npy array
/// ([N, features] or [N, height, width]) of uint8 or little-endian float32. Only the header is read when
/// it opens (a float32 file is also scanned once, in chunks, for the checks and the [0, 1] scaling that
/// <see cref="TableData"/> applies when it loads one, so the pixels are exactly those of the loaded file).
/// Rows are read by <see cref="CopyRows"/> through a view of just the file range they span, unmapped
/// again at once: the file's pages never stay mapped, so they do not count as the process's memory and the
/// kernel may drop them from its cache whenever it likes. Gzipped files cannot be mapped (<see cref="TryOpen"/> says so).
/// </summary>
internal sealed class MappedImages
{
    /// <summary>Bytes scanned per view when a whole file is read (checks, fingerprint).</summary>
    const int ChunkBytes = 8 << 20;

    readonly MemoryMappedFile file;
    readonly long dataOffset;
    readonly int elementSize;   // 1 (uint8) or 4 (float32)
    readonly double scale;      // float32 only: TableData.Scale's factor (255 for 0..1 values, else 1)
    public string Path { get; }
    /// <summary>How the file's values become pixels, in TableData.Scale's words.</summary>
    public string Scaling { get; } = Dataset.ByteScaling;
    public int Count { get; }
    public int Features { get; }

    MappedImages(string path, MemoryMappedFile file, long dataOffset, int count, int features, int elementSize, PixelRange range)
    {
        Path = path; this.file = file; this.dataOffset = dataOffset; Count = count; Features = features; this.elementSize = elementSize;
        scale = 1;
        if (elementSize == 4) (scale, Scaling) = TableData.Scale(integer: false, ScanFloats(), range, path);
        else if (System.IO.Path.GetExtension(path).Equals(".npy", StringComparison.OrdinalIgnoreCase)) Scaling = TableData.Scale(integer: true, 0, range, path).Scaling;   // as a loaded uint8 .npy says it
    }

    /// <summary>
    /// The file mapped, or null with <paramref name="why"/> saying why it cannot be (gzip-compressed, a data
    /// type other than uint8 or float32, CSV): the caller then loads it. A file that can be mapped but is
    /// broken (truncated, bad header, NaN pixels) is a <see cref="UserError"/>, as when it is loaded.
    /// </summary>
    public static MappedImages? TryOpen(string path, out string? why, PixelRange range = PixelRange.Auto)
    {
        why = null;
        InputFile.Require(path);
        var head = new byte[4096];
        long length;
        using (var f = File.OpenRead(path))
        {
            length = f.Length;
            int n = 0, r;
            while (n < head.Length && (r = f.Read(head, n, head.Length - n)) > 0) n += r;
            Array.Resize(ref head, n);
        }
        if (head.Length >= 2 && head[0] == 0x1f && head[1] == 0x8b)
        {
            why = $"{path} is gzip-compressed and cannot be memory-mapped, so it is loaded into memory; to stream it from disk, decompress it first (gunzip -k)";
            return null;
        }
        string ext = System.IO.Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".csv") { why = $"{path} is CSV text and cannot be memory-mapped, so it is loaded into memory; to stream it from disk, save it as .npy (uint8)"; return null; }
        var (offset, count, features, size, reason) = ext == ".npy" ? NpyHeader(path, head, length) : IdxHeader(path, head, length);
        if (reason != null) { why = reason; return null; }
        if (count == 0) throw new UserError($"{path}: the dataset is empty");
        if (size == 1 && range == PixelRange.Unit && ext == ".npy")   // rare: uint8 values meant as 0..1 (0 and 1) are checked and scaled as the loaded reader does
        {
            why = $"{path} holds uint8 values and --pixel-range 0-1 asks to scale them, so it is loaded into memory to check that every value is 0 or 1";
            return null;
        }
        var mapped = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try { return new MappedImages(path, mapped, offset, count, features, size, range); }
        catch { mapped.Dispose(); throw; }
    }

    static (long Offset, int Count, int Features, int Size, string? Why) IdxHeader(string path, byte[] h, long length)
    {
        var (dims, header) = Idx.Header(path, h, length);
        if (dims.Length < 2) throw new UserError($"{path}: expected an image file with 2 to 4 dimensions, got {dims.Length}");
        long features = 1;
        foreach (int d in dims[1..]) features *= d;   // at most the file's length: Idx.Header checked it
        if (features > int.MaxValue) throw new UserError($"{path}: images of {features} pixels are too large");
        return (header, dims[0], (int)features, 1, null);
    }

    static (long Offset, int Count, int Features, int Size, string? Why) NpyHeader(string path, byte[] h, long length)
    {
        if (h.Length < 10 || h[0] != 0x93 || Encoding.ASCII.GetString(h, 1, 5) != "NUMPY") throw new UserError($"{path}: not a NumPy .npy file (bad magic)");
        int major = h[6];
        if (major is < 1 or > 3) throw new UserError($"{path}: .npy format version {major}.{h[7]}; expected 1.0 to 3.0");
        int lengthBytes = major == 1 ? 2 : 4;
        long headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(h.AsSpan(8)) : BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(8));
        long start = 8 + lengthBytes + headerLength;
        if (start > h.Length) return (0, 0, 0, 0, $"{path} has a .npy header too long to read in place, so it is loaded into memory");
        string header = Encoding.Latin1.GetString(h, 8 + lengthBytes, (int)headerLength);
        if (Regex.IsMatch(header, @"'fortran_order':\s*True")) throw new UserError($"{path}: .npy array in Fortran order; save it with np.ascontiguousarray");
        var descr = Regex.Match(header, @"'descr':\s*'([<>|=])([biuf])(\d+)'");
        int size = !descr.Success ? 0 : (descr.Groups[2].Value, descr.Groups[3].Value, descr.Groups[1].Value) switch
        {
            ("u", "1", _) => 1,
            ("f", "4", "<" or "=") => 4,
            _ => 0,
        };
        if (size == 0)
            return (0, 0, 0, 0, $"{path} holds {(descr.Success ? descr.Groups[2].Value + descr.Groups[3].Value : "an unsupported type")}, not uint8 or float32, and cannot be read in place, " +
                "so it is loaded into memory; to stream it from disk, save it with arr.astype(np.uint8)");
        var shapeText = Regex.Match(header, @"'shape':\s*\(([^)]*)\)");
        if (!shapeText.Success) throw new UserError($"{path}: .npy header has no shape");
        var shape = shapeText.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(t => long.TryParse(t, out long v) && v >= 0 ? v : throw new UserError($"{path}: bad .npy shape ({shapeText.Groups[1].Value})")).ToArray();
        if (shape.Length is < 2 or > 3)
            throw new UserError($"{path}: expected an image array of shape [N, features] or [N, height, width], got [{string.Join(", ", shape)}]");
        long features = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        if (shape[0] > int.MaxValue || features > int.MaxValue || features == 0) throw new UserError($"{path}: .npy shape [{string.Join(", ", shape)}] is not supported");
        if (length - start != shape[0] * features * size)
            throw new UserError($"{path}: .npy header promises {shape[0] * features} values of {size} bytes ({string.Join(" x ", shape)}) but the file holds {length - start} bytes: truncated or corrupt");
        return (start, (int)shape[0], (int)features, size, null);
    }

    /// <summary>
    /// The checks of a float file, as <see cref="TableData"/> does them when it loads one: no NaN, Inf or
    /// negative value; returns the largest value, which <see cref="TableData.Scale"/> turns into the scaling.
    /// </summary>
    double ScanFloats()
    {
        double max = 0;
        long values = (long)Count * Features, done = 0;
        var chunk = new float[ChunkBytes / 4];
        while (done < values)
        {
            int n = (int)Math.Min(chunk.Length, values - done);
            using (var view = file.CreateViewAccessor(dataOffset + 4 * done, 4L * n, MemoryMappedFileAccess.Read))
                view.ReadArray(0, chunk, 0, n);
            for (int i = 0; i < n; i++)
            {
                double v = chunk[i];
                long at = done + i;
                if (!double.IsFinite(v))
                    throw new UserError($"{Path}: {(double.IsNaN(v) ? "NaN" : "Inf")} at image {at / Features}, pixel {at % Features}; clean the data (e.g. np.nan_to_num) first");
                if (v < 0) throw new UserError($"{Path}: negative pixel {v.ToString(CultureInfo.InvariantCulture)} at image {at / Features}, pixel {at % Features}; pixels must be 0..255 (or 0..1 as floats)");
                if (v > max) max = v;
            }
            done += n;
        }
        return max;
    }

    /// <summary>
    /// Copies the pixels (as bytes, converted exactly as a loaded file's) of <paramref name="rows"/>, file row
    /// indices in ascending order, into <paramref name="dst"/> one after the other. One view spans them all
    /// and is unmapped on return.
    /// </summary>
    public void CopyRows(ReadOnlySpan<int> rows, Span<byte> dst)
    {
        if (rows.Length == 0) return;
        long first = rows[0], last = rows[^1], rowBytes = (long)Features * elementSize;
        if (first < 0 || last >= Count || last < first) throw new ArgumentOutOfRangeException(nameof(rows));
        using var view = file.CreateViewAccessor(dataOffset + first * rowBytes, (last - first + 1) * rowBytes, MemoryMappedFileAccess.Read);
        var handle = view.SafeMemoryMappedViewHandle;
        unsafe
        {
            byte* p = null;
            handle.AcquirePointer(ref p);
            try
            {
                p += view.PointerOffset;
                for (int i = 0; i < rows.Length; i++)
                {
                    if (i > 0 && rows[i] <= rows[i - 1]) throw new ArgumentException("rows must ascend", nameof(rows));
                    var src = new ReadOnlySpan<byte>(p + (rows[i] - first) * rowBytes, (int)rowBytes);
                    var to = dst.Slice(i * Features, Features);
                    if (elementSize == 1) src.CopyTo(to);
                    else
                        for (int c = 0; c < Features; c++)
                            to[c] = (byte)Math.Round(BinaryPrimitives.ReadSingleLittleEndian(src.Slice(4 * c)) * scale);   // TableData.ToPixels's rounding
                }
            }
            finally { handle.ReleasePointer(); }
        }
    }
}
