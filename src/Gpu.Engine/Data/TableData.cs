using System.Globalization;

namespace Gpu.Engine.Data;

/// <summary>
/// The range of the values in an NPY or CSV image file (<c>--pixel-range</c>): <c>0-255</c> (read as they are),
/// <c>0-1</c> (times 255), or <c>auto</c>: the type's convention, integers 0..255, floats 0..1 unless a value is
/// above 1 (then 0..255). A very dark 0..255 float file (every value at most 1) needs <c>0-255</c>.
/// </summary>
internal enum PixelRange { Auto, Unit, Byte }

internal static class PixelRanges
{
    public static string Name(PixelRange r) => r switch { PixelRange.Unit => "0-1", PixelRange.Byte => "0-255", _ => "auto" };

    public static PixelRange Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "auto" => PixelRange.Auto,
        "0-1" or "0..1" or "1" => PixelRange.Unit,
        "0-255" or "0..255" or "255" => PixelRange.Byte,
        _ => throw new UserError($"--pixel-range {text}: give 0-255 (values as they are), 0-1 (values times 255) or auto (integers 0-255, floats 0-1 unless a value is above 1)"),
    };
}

/// <summary>
/// Readers for the other formats people training MLPs in NumPy keep their data in, giving the same
/// <see cref="Dataset"/> (uint8 pixels, int labels) as the IDX reader:
/// NPY image arrays ([N, features] or [N, height, width]; uint8, or floats in [0, 255] or in [0, 1])
/// with an integer label array [N], and CSV files of rows <c>label,pixel0,...,pixelF</c> with an optional header.
/// Every value is checked: no NaN or Inf, pixels within range, labels whole numbers in 0..classes-1.
/// </summary>
internal static class TableData
{
    /// <summary>
    /// Reads an image file (IDX, .npy or .csv by extension) and its labels (IDX or .npy; none for .csv, whose first column is the label).
    /// With <paramref name="map"/> the images are read in place (<see cref="MappedImages"/>) when the file allows it; when
    /// it does not, they are loaded and <paramref name="map"/> gets a one-line note saying why. <paramref name="range"/>: see <see cref="PixelRange"/>.
    /// </summary>
    public static Dataset Read(string images, string? labels, string name, int classes = 10, Action<string>? map = null, PixelRange range = PixelRange.Auto)
    {
        string ext = Path.GetExtension(images).ToLowerInvariant();
        if (ext == ".csv")
        {
            if (labels != null) throw new UserError($"{labels}: a CSV file holds its labels in its first column; give no separate labels file");
            map?.Invoke($"{images} is CSV text and cannot be memory-mapped, so it is loaded into memory; to stream it from disk, save it as .npy (uint8)");
            return ReadCsv(images, name, classes, range);
        }
        if (labels == null) throw new UserError($"{images}: a labels file is needed (IDX or .npy)");
        if (TryMap(images, labels, name, classes, map, range) is Dataset mapped) return mapped;
        if (ext == ".npy") return ReadNpy(images, labels, name, classes, range);
        return Idx.ReadPair(images, labels, name, classes);
    }

    /// <summary>The images read in place with their labels loaded, or null (no <paramref name="map"/>, or a file that cannot be mapped, which <paramref name="map"/> is told).</summary>
    internal static Dataset? TryMap(string images, string labels, string name, int classes, Action<string>? map, PixelRange range = PixelRange.Auto)
    {
        if (map == null) return null;
        var file = MappedImages.TryOpen(images, out var why, range);
        if (file == null) { map(why!); return null; }
        return new Dataset(name, file, null, MatchingLabels(labels, file.Count, images, classes), classes);
    }

    public static Dataset ReadNpy(string imagesPath, string labelsPath, string name, int classes = 10, PixelRange range = PixelRange.Auto)
    {
        var (pixels, n, features, scaling) = ReadNpyImages(imagesPath, range);
        return new Dataset(name, pixels, MatchingLabels(labelsPath, n, imagesPath, classes), features, classes) { Scaling = scaling };
    }

    /// <summary>An NPY image array ([N, features] or [N, height, width]) as uint8 pixels, and how they were scaled.</summary>
    static (byte[] Pixels, int Count, int Features, string Scaling) ReadNpyImages(string path, PixelRange range)
    {
        var images = Npy.Read(path);
        if (images.Shape.Length is < 2 or > 3)
            throw new UserError($"{path}: expected an image array of shape [N, features] or [N, height, width], got [{string.Join(", ", images.Shape)}]");
        int n = images.Shape[0], features = images.Shape.Skip(1).Aggregate(1, (a, b) => a * b);
        var (pixels, scaling) = ToPixels(images.Values, images.IsInteger, path, features, range);
        return (pixels, n, features, scaling);
    }

    /// <summary>The labels in <paramref name="labelsPath"/>, which must number <paramref name="count"/> (the images in <paramref name="imagesPath"/>).</summary>
    static int[] MatchingLabels(string labelsPath, int count, string imagesPath, int classes)
    {
        int[] y = ReadLabels(labelsPath, classes);
        if (y.Length != count) throw new UserError($"{imagesPath} holds {count} images but {labelsPath} holds {y.Length} labels; use matching files");
        return y;
    }

    static int[] ReadLabels(string path, int classes)
    {
        if (Path.GetExtension(path).ToLowerInvariant() != ".npy")
        {
            var (dims, data) = Idx.Read(path);
            if (dims.Length != 1) throw new UserError($"{path}: expected a 1-D label file, got {dims.Length} dimensions");
            return data.Select((b, i) => Label(b, path, $"index {i}", classes)).ToArray();
        }
        var a = Npy.Read(path);
        if (a.Shape.Length != 1 && !(a.Shape.Length == 2 && a.Shape[1] == 1))
            throw new UserError($"{path}: expected a 1-D label array, got shape [{string.Join(", ", a.Shape)}]");
        var y = new int[a.Values.Length];
        for (int i = 0; i < y.Length; i++) y[i] = Label(a.Values[i], path, $"index {i}", classes);
        return y;
    }

    static int Label(double v, string path, string where, int classes)
    {
        if (!double.IsFinite(v)) throw new UserError($"{path}: label {v} at {where} is not a number; labels must be whole numbers 0..{classes - 1}");
        if (v != Math.Floor(v) || v < 0 || v >= classes)
            throw new UserError($"{path}: label {v.ToString(CultureInfo.InvariantCulture)} at {where} is outside 0..{classes - 1}");
        return (int)v;
    }

    /// <summary>
    /// Pixels as bytes, rounded, and how they were scaled: with <see cref="PixelRange.Byte"/> values must lie in
    /// 0..255 and are kept; with <see cref="PixelRange.Unit"/> they must lie in [0, 1] and are scaled by 255; with
    /// <see cref="PixelRange.Auto"/> integers are 0..255 and floats 0..1 unless one is above 1 (then 0..255).
    /// </summary>
    static (byte[] Pixels, string Scaling) ToPixels(double[] values, bool integer, string path, int features, PixelRange range)
    {
        double max = 0;
        for (long i = 0; i < values.Length; i++)
        {
            double v = values[i];
            if (!double.IsFinite(v))
                throw new UserError($"{path}: {(double.IsNaN(v) ? "NaN" : "Inf")} at image {i / features}, pixel {i % features}; clean the data (e.g. np.nan_to_num) first");
            if (v < 0) throw new UserError($"{path}: negative pixel {v.ToString(CultureInfo.InvariantCulture)} at image {i / features}, pixel {i % features}; pixels must be 0..255 (or 0..1 as floats)");
            max = Math.Max(max, v);
        }
        var (scale, scaling) = Scale(integer, max, range, path);
        var pixels = new byte[values.Length];
        for (long i = 0; i < values.Length; i++) pixels[i] = (byte)Math.Round(values[i] * scale);
        return (pixels, scaling);
    }

    /// <summary>
    /// The one scaling rule, for loaded and for memory-mapped files (<see cref="MappedImages"/>): the factor the
    /// values of a file (non-negative, largest <paramref name="max"/>) are multiplied by before rounding to bytes,
    /// and the words that say so. Values above 255, or above 1 with <see cref="PixelRange.Unit"/>, are a <see cref="UserError"/>.
    /// </summary>
    internal static (double Scale, string Scaling) Scale(bool integer, double max, PixelRange range, string path)
    {
        if (max > 255) throw new UserError($"{path}: pixel value {max.ToString(CultureInfo.InvariantCulture)} above 255; pixels must be 0..255 (or 0..1 as floats)");
        if (range == PixelRange.Unit && max > 1)
            throw new UserError($"{path}: pixel value {max.ToString(CultureInfo.InvariantCulture)} above 1 with --pixel-range 0-1; give --pixel-range 0-255 for values 0..255");
        string type = integer ? "integers" : "floats";
        return range switch
        {
            PixelRange.Unit => (255.0, $"{type} read as 0..1 (--pixel-range 0-1), times 255"),
            PixelRange.Byte => (1.0, $"{type} read as 0..255 (--pixel-range 0-255)"),
            _ when integer => (1.0, "integers read as 0..255 (--pixel-range auto: integer convention)"),
            _ when max > 1 => (1.0, $"floats read as 0..255 (--pixel-range auto: the largest value, {max.ToString("G4", CultureInfo.InvariantCulture)}, is above 1)"),
            _ => (255.0, "floats read as 0..1 and times 255 (--pixel-range auto: float convention, every value <= 1; give --pixel-range 0-255 for a dark 0..255 file)"),
        };
    }

    public static Dataset ReadCsv(string path, string name, int classes = 10, PixelRange range = PixelRange.Auto)
    {
        var (pixels, labels, features, scaling) = ParseCsv(path, classes, pixelsPerImage: null, range);
        return new Dataset(name, pixels, labels!, features, classes) { Scaling = scaling };
    }

    /// <summary>
    /// Reads CSV rows of pixels. With <paramref name="pixelsPerImage"/> null every row is <c>label,pixel0,...</c>;
    /// given, a row may also be pixels only: the first column is a label when the header names it "label"
    /// or when rows have one value more than <paramref name="pixelsPerImage"/>. Labels are null when there are none.
    /// </summary>
    static (byte[] Pixels, int[]? Labels, int Features, string Scaling) ParseCsv(string path, int classes, int? pixelsPerImage, PixelRange range)
    {
        InputFile.Require(path);
        var labels = new List<int>();
        var values = new List<double>();
        int features = -1;
        bool? labelledHint = pixelsPerImage == null ? true : null;   // from the header, until the first data row decides
        bool labelled = false;
        bool sawFloat = false;
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0) continue;
            var fields = line.Split(',');
            if (lineNo == 1 && !double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out _))   // a header
            {
                if (fields[0].Trim().Trim('"').Equals("label", StringComparison.OrdinalIgnoreCase)) labelledHint = true;
                continue;
            }
            if (features < 0)
            {
                labelled = labelledHint ?? fields.Length == pixelsPerImage + 1;
                features = fields.Length - (labelled ? 1 : 0);
                if (features < 1) throw new UserError($"{path}:{lineNo}: expected rows label,pixel0,pixel1,...; found one column");
                if (pixelsPerImage is int want && features != want)
                    throw new UserError($"{path}:{lineNo}: rows of {fields.Length} values give {features} pixels{(labelled ? " after the label" : "")}, " +
                        $"but the model takes {want} pixels per image; give rows of {want} pixels, optionally after a label column");
            }
            else if (fields.Length - (labelled ? 1 : 0) != features)
                throw new UserError($"{path}:{lineNo}: {fields.Length - (labelled ? 1 : 0)} pixels where earlier rows have {features}");
            int first = 0;
            if (labelled)
            {
                if (!double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double label))
                    throw new UserError($"{path}:{lineNo}: label '{fields[0]}' is not a number");
                labels.Add(Label(label, path, $"line {lineNo}", classes));
                first = 1;
            }
            for (int j = first; j < fields.Length; j++)
            {
                if (!double.TryParse(fields[j], NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                    throw new UserError($"{path}:{lineNo}: pixel {j - first} '{fields[j]}' is not a number");
                if (!double.IsFinite(v)) throw new UserError($"{path}:{lineNo}: {(double.IsNaN(v) ? "NaN" : "Inf")} at pixel {j - first}; clean the data first");
                sawFloat |= v != Math.Floor(v);
                values.Add(v);
            }
        }
        if (features < 0) throw new UserError($"{path}: the dataset is empty (no data rows)");
        var (pixels, scaling) = ToPixels(values.ToArray(), integer: !sawFloat, path, features, range);
        return (pixels, labelled ? labels.ToArray() : null, features, scaling);
    }

    /// <summary>
    /// Images to run a trained model on (predict): IDX, .npy ([N, features] or [N, height, width]; uint8 or float)
    /// or .csv (pixels, with or without a label column). Labels come from <paramref name="labels"/> (IDX or .npy),
    /// or the CSV's label column, or are null. Every image must have <paramref name="features"/> pixels.
    /// </summary>
    public static (byte[] Pixels, int Count, int[]? Labels, string Scaling) ReadImages(string images, string? labels, int features, int classes,
        PixelRange range = PixelRange.Auto)
    {
        string ext = Path.GetExtension(images).ToLowerInvariant();
        byte[] pixels;
        int count, have;
        int[]? y = null;
        string scaling = Dataset.ByteScaling;
        if (ext == ".csv")
        {
            if (labels != null) throw new UserError($"{labels}: a CSV file holds its labels in its first column; give no separate labels file");
            (pixels, y, have, scaling) = ParseCsv(images, classes, features, range);
            count = pixels.Length / have;
        }
        else
        {
            if (ext == ".npy") (pixels, count, have, scaling) = ReadNpyImages(images, range);
            else
            {
                var (dims, data) = Idx.Read(images);
                if (dims.Length < 2) throw new UserError($"{images}: expected an image file with 2 or more dimensions, got {dims.Length}");
                (pixels, count, have) = (data, dims[0], dims.Skip(1).Aggregate(1, (a, b) => a * b));
            }
            if (labels != null) y = MatchingLabels(labels, count, images, classes);
        }
        if (have != features)
            throw new UserError($"{images}: images of {have} pixels, but the model takes {features}; give images of the size it was trained on");
        return (pixels, count, y, scaling);
    }

    /// <summary>
    /// A folder of NPY or CSV files: <c>*train*images*.npy</c> + <c>*train*labels*.npy</c> and the same for
    /// test (or <c>t10k</c>), or <c>*train*.csv</c> and <c>*test*.csv</c>. Null when the folder has neither.
    /// </summary>
    public static DataPair? TryReadFolder(string folder, Action<string>? map = null, PixelRange range = PixelRange.Auto)
    {
        string? Find(string pattern, params string[] words) => Directory.GetFiles(folder, pattern)
            .Where(f => words.All(w => Path.GetFileName(f).Contains(w, StringComparison.OrdinalIgnoreCase))).OrderBy(f => f).FirstOrDefault();
        string? trainImages = Find("*.npy", "train", "image"), trainLabels = Find("*.npy", "train", "label");
        string? testImages = Find("*.npy", "test", "image") ?? Find("*.npy", "t10k", "image");
        string? testLabels = Find("*.npy", "test", "label") ?? Find("*.npy", "t10k", "label");
        if (trainImages != null && trainLabels != null && testImages != null && testLabels != null)
            return Pair(Read(trainImages, trainLabels, "train", map: map, range: range), Read(testImages, testLabels, "test", map: map, range: range), folder);
        string? trainCsv = Find("*.csv", "train"), testCsv = Find("*.csv", "test");
        if (trainCsv != null && testCsv != null)
            return Pair(Read(trainCsv, null, "train", map: map, range: range), Read(testCsv, null, "test", map: map, range: range), folder);
        return null;
    }

    public static DataPair Pair(Dataset train, Dataset test, string folder)
    {
        if (train.Features != test.Features)
            throw new UserError($"train images have {train.Features} features but test images have {test.Features}");
        return new DataPair(train, test, folder);
    }
}
