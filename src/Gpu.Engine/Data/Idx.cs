using System.IO.Compression;

namespace Gpu.Engine.Data;

/// <summary>
/// Reader for the IDX format of MNIST and Fashion-MNIST (gzip-compressed or plain):
/// big-endian magic 0x00000800 | ndims (0x08 = unsigned byte), then ndims big-endian int32 sizes, then the data.
/// </summary>
internal static class Idx
{
    /// <summary>Reads an IDX file of unsigned bytes; returns the dimensions and the data.</summary>
    public static (int[] Dims, byte[] Data) Read(string path)
    {
        InputFile.Require(path);
        byte[] raw;
        try
        {
            using var file = File.OpenRead(path);
            Stream s = file;
            if (IsGzip(path)) s = new GZipStream(file, CompressionMode.Decompress);
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            raw = ms.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new UserError($"{path}: not a valid gzip file ({e.Message.TrimEnd('.')}); re-download or re-copy it");
        }
        catch (IOException e)
        {
            throw new UserError($"{path}: cannot read ({e.Message.TrimEnd('.')})");
        }
        var (dims, header) = Header(path, raw, raw.Length);
        long count = raw.Length - header;
        var data = new byte[count];
        Buffer.BlockCopy(raw, header, data, 0, (int)count);
        return (dims, data);
    }

    /// <summary>
    /// The dimensions and header size of an IDX file of unsigned bytes from its first bytes <paramref name="h"/>, checked
    /// against the file's length (the loaded reader and the memory-mapped one share it): bad magic, 0 or over 4
    /// dimensions, a size not positive, or sizes that do not match the data are one <see cref="UserError"/> each.
    /// </summary>
    public static (int[] Dims, int HeaderBytes) Header(string path, ReadOnlySpan<byte> h, long fileLength)
    {
        if (h.Length < 4) throw new UserError($"{path}: truncated IDX file ({h.Length} bytes, no header)");
        if (h[0] != 0 || h[1] != 0 || h[2] != 0x08)
            throw new UserError($"{path}: not an IDX file of unsigned bytes (magic 0x{h[0]:X2}{h[1]:X2}{h[2]:X2}{h[3]:X2}, expected 0x000008NN)");
        int ndims = h[3];
        if (ndims < 1 || ndims > 4) throw new UserError($"{path}: IDX file with {ndims} dimensions; expected 1 to 4");
        int header = 4 + 4 * ndims;
        if (h.Length < header) throw new UserError($"{path}: truncated IDX header");
        long dataBytes = fileLength - header;
        var dims = new int[ndims];
        long count = 1;
        for (int d = 0; d < ndims; d++)
        {
            int o = 4 + 4 * d;
            dims[d] = (h[o] << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
            if (d == 0 && dims[d] == 0) throw new UserError($"{path}: the file holds no items (an empty dataset)");
            if (dims[d] <= 0) throw new UserError($"{path}: IDX dimension {d} is {dims[d]}; expected a positive size");
            count *= dims[d];
            if (count > dataBytes)   // checked as it grows, so four large sizes cannot overflow
                throw new UserError($"{path}: truncated or corrupt IDX file: its header's sizes ({string.Join(" x ", dims[..(d + 1)])}{(d + 1 < ndims ? " x ..." : "")}) promise more values than its {dataBytes} bytes of data; re-download or re-copy it");
        }
        if (dataBytes != count)
            throw new UserError($"{path}: IDX header promises {count} values ({string.Join(" x ", dims)}) but the file holds {dataBytes}: truncated or corrupt");
        return (dims, header);
    }

    static bool IsGzip(string path)
    {
        using var f = File.OpenRead(path);
        return f.ReadByte() == 0x1f && f.ReadByte() == 0x8b;
    }

    /// <summary>Reads an image file ([N, rows, cols] or [N, features]) and its label file ([N]) into a dataset.</summary>
    public static Dataset ReadPair(string imagesPath, string labelsPath, string name, int classes = 10)
    {
        var (idims, pixels) = Read(imagesPath);
        var (ldims, labelBytes) = Read(labelsPath);
        if (idims.Length < 2) throw new UserError($"{imagesPath}: expected an image file with 2 or more dimensions, got {idims.Length}");
        if (ldims.Length != 1) throw new UserError($"{labelsPath}: expected a 1-D label file, got {ldims.Length} dimensions");
        if (idims[0] != ldims[0])
            throw new UserError($"{imagesPath} holds {idims[0]} images but {labelsPath} holds {ldims[0]} labels; use matching files");
        int features = idims.Skip(1).Aggregate(1, (a, b) => a * b);
        var labels = new int[labelBytes.Length];
        for (int i = 0; i < labels.Length; i++) labels[i] = labelBytes[i];
        return new Dataset(name, pixels, labels, features, classes);
    }

    /// <summary>
    /// Loads a folder holding train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
    /// t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz].
    /// </summary>
    /// <paramref name="shown"/> is the folder as the user gave it (the pair's <see cref="DataPair.Folder"/>).
    /// With <paramref name="map"/> the image files are read in place where they can be (<see cref="TableData.Read"/>).
    public static DataPair ReadFolder(string folder, string? shown = null, Action<string>? map = null, PixelRange range = PixelRange.Auto)
    {
        shown ??= folder;
        if (File.Exists(folder))
            throw new UserError($"--data {shown} is a file; --data takes a folder holding the training and test files (IDX, .npy or .csv); " +
                "for single files give --train-images and --test-images (with --train-labels and --test-labels unless they are .csv)");
        if (!Directory.Exists(folder))
            throw new UserError(shown == DataLocator.DefaultFolder
                ? $"the default data folder '{shown}' is not here, above the program or in {DataLocator.SystemFolder}; {DataLocator.DefaultAdvice}"
                : $"data folder '{shown}' not found; pass --data DIR with the four IDX files (see data/README.md)");
        if (!Directory.GetFiles(folder).Any(f => Path.GetFileName(f).Contains("idx", StringComparison.OrdinalIgnoreCase))
            && TableData.TryReadFolder(folder, map, range) is DataPair table)
            return table with { Folder = shown };   // a folder of .npy or .csv files
        string Find(string stem)
        {
            foreach (var candidate in new[] { stem + ".gz", stem, stem.Replace("-idx", ".idx") + ".gz", stem.Replace("-idx", ".idx") })
            {
                var p = Path.Combine(folder, candidate);
                if (File.Exists(p)) return p;
            }
            throw new UserError($"data folder '{folder}' has no {stem}[.gz]; it needs the four IDX files, or train/test .npy or .csv files (see data/README.md)");
        }
        string name = Path.GetFileName(Path.GetFullPath(folder).TrimEnd('/'));
        var train = TableData.TryMap(Find("train-images-idx3-ubyte"), Find("train-labels-idx1-ubyte"), name + "/train", 10, map)
            ?? ReadPair(Find("train-images-idx3-ubyte"), Find("train-labels-idx1-ubyte"), name + "/train");
        var test = TableData.TryMap(Find("t10k-images-idx3-ubyte"), Find("t10k-labels-idx1-ubyte"), name + "/test", 10, map)
            ?? ReadPair(Find("t10k-images-idx3-ubyte"), Find("t10k-labels-idx1-ubyte"), name + "/test");
        if (train.Features != test.Features)
            throw new UserError($"train images have {train.Features} features but test images have {test.Features}");
        return new DataPair(train, test, shown);
    }
}
