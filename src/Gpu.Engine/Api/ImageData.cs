using Gpu.Engine;
using Gpu.Engine.Data;

namespace Gpu;

/// <summary>
/// A training set and a test set of images (uint8 pixels with class labels), read from a data folder or
/// from files the way <c>gpu train</c> reads them: IDX (the MNIST / Fashion-MNIST files), NPY or CSV.
/// </summary>
public sealed class ImageData
{
    readonly Lazy<DataPair> pair;
    /// <summary>The images, read on first use (<see cref="Open"/>) or at once (<see cref="Load"/>, <see cref="LoadFiles"/>).</summary>
    internal DataPair Pair => pair.Value;
    /// <summary>Whether the images have been read (training reads data it was handed unread in its own way: memory-mapped for --data-path stream).</summary>
    internal bool IsLoaded => pair.IsValueCreated;
    internal DataSource Source { get; }
    /// <summary>The training images kept (0: all), as <c>--limit</c> records it.</summary>
    internal int Limit { get; }

    ImageData(DataSource source, DataPair pair, int limit) { Source = source; this.pair = new(pair); Limit = limit; _ = this.pair.Value; }

    ImageData(DataSource source, int limit) { Source = source; pair = new(() => source.Load().Limited(limit, null)); Limit = limit; }

    /// <summary>
    /// The data <paramref name="files"/> name, read when first used (so that <see cref="Network.Train(Device, ImageData, Gpu.Engine.Settings.TrainOptions, RunOptions)"/>
    /// reads it as its data path needs), with only the first <paramref name="limit"/> training images (0: all), as <c>gpu train --limit</c>.
    /// </summary>
    /// <param name="files">A data folder, or explicit files, and the pixel range of NPY and CSV images.</param>
    /// <param name="limit">Training images to keep (0: all).</param>
    public static ImageData Open(DataFiles files, int limit = 0)
    {
        if (limit < 0) throw new UserError($"--limit {limit}: give a whole number >= 0 (0: all)");
        return new ImageData(files.Source(), limit);
    }

    /// <summary>
    /// Reads a data folder (IDX, NPY or CSV training and test files, as <c>gpu train --data</c>); a relative
    /// path is looked for in the working folder, then in the folders above the program.
    /// </summary>
    /// <param name="folder">The data folder, e.g. <c>data/fashion-mnist</c>.</param>
    public static ImageData Load(string folder)
    {
        var source = DataSource.OfFolder(folder);
        return new ImageData(source, source.Load(), 0);
    }

    /// <summary>Reads explicit files, as <c>gpu train --train-images ... --test-images ...</c>; the labels are null for CSV images, which hold their own.</summary>
    /// <param name="trainImages">Training images: IDX, .npy or .csv.</param>
    /// <param name="trainLabels">Training labels (IDX or .npy), or null for .csv images.</param>
    /// <param name="testImages">Test images, as <paramref name="trainImages"/>.</param>
    /// <param name="testLabels">Test labels, as <paramref name="trainLabels"/>.</param>
    public static ImageData LoadFiles(string trainImages, string? trainLabels, string testImages, string? testLabels)
    {
        var source = DataSource.OfFiles(trainImages, trainLabels, testImages, testLabels);
        return new ImageData(source, source.Load(), 0);
    }

    /// <summary>The same data with only the first <paramref name="count"/> training images (as <c>gpu train --limit</c>); the test set is kept whole.</summary>
    /// <param name="count">Training images to keep, at least 1.</param>
    public ImageData TakeTrain(int count)
    {
        if (count < 1) throw new UserError($"TakeTrain({count}): give a number of training images >= 1");
        return new ImageData(Source, Pair with { Train = Pair.Train.Take(count) }, count);
    }

    /// <summary>Where the data came from, as given.</summary>
    public string Name => Pair.Folder;

    /// <summary>The training images (a share of them is held out for validation when training, see <see cref="Gpu.Engine.Settings.TrainOptions.ValFraction"/>).</summary>
    public Images Train => new(Pair.Train);

    /// <summary>The test images.</summary>
    public Images Test => new(Pair.Test);
}

/// <summary>
/// Where a training set and a test set are, as <c>gpu train</c>'s data flags say it: a <see cref="Folder"/> (<c>--data</c>), or the
/// four files (<c>--train-images</c>, ...; labels null for CSV images, which hold their own), and the <see cref="PixelRange"/> of
/// NPY and CSV images (<c>--pixel-range</c>: auto, 0-255 or 0-1).
/// </summary>
public sealed record DataFiles
{
    /// <summary>The data folder used when none is given: Fashion-MNIST, looked for in the working folder, then above the program, then in Debian's dataset-fashion-mnist.</summary>
    public const string DefaultFolder = DataLocator.DefaultFolder;

    /// <summary>A data folder; used when no image file is given. A relative path is looked for in the working folder, then above the program, then in the system's dataset folder.</summary>
    public string Folder { get; init; } = DefaultFolder;
    /// <summary>Training images: IDX, .npy or .csv.</summary>
    public string? TrainImages { get; init; }
    /// <summary>Training labels: IDX or .npy; null for .csv images.</summary>
    public string? TrainLabels { get; init; }
    /// <summary>Test images, as <see cref="TrainImages"/>.</summary>
    public string? TestImages { get; init; }
    /// <summary>Test labels, as <see cref="TrainLabels"/>.</summary>
    public string? TestLabels { get; init; }
    /// <summary>The range of NPY and CSV values: auto, 0-255 or 0-1 (anything else is a <see cref="UserError"/> saying so).</summary>
    public string PixelRange { get; init { PixelRanges.Parse(value); field = value; } } = "auto";

    /// <summary>Whether files are named rather than a folder.</summary>
    public bool NamesFiles => TrainImages != null || TestImages != null || TrainLabels != null || TestLabels != null;

    internal DataSource Source() => (NamesFiles
        ? DataSource.OfFiles(TrainImages ?? throw new UserError("--test-images needs --train-images too"), TrainLabels,
            TestImages ?? throw new UserError("--train-images needs --test-images too"), TestLabels)
        : DataSource.OfFolder(Folder)) with { PixelRange = PixelRanges.Parse(PixelRange) };
}

/// <summary>Images with their labels: <see cref="Count"/> rows of <see cref="Features"/> uint8 pixels each, row-major.</summary>
public sealed class Images
{
    internal Dataset Set { get; }

    /// <summary>What the class names are read from (see <see cref="Gpu.Engine.Data.ClassNames.For"/>): the origin, or a model's record of its data.</summary>
    readonly string namesFrom;

    internal Images(Dataset set, string? origin = null, bool labelled = true, string? namesFrom = null)
    {
        Set = set; Origin = origin ?? set.Name; HasLabels = labelled; this.namesFrom = namesFrom ?? Origin;
    }

    /// <summary>Number of images.</summary>
    public int Count => Set.Count;

    /// <summary>Pixels per image (784 for 28x28).</summary>
    public int Features => Set.Features;

    /// <summary>Number of classes the labels range over (labels are 0 to Classes - 1).</summary>
    public int Classes => Set.Classes;

    /// <summary>All pixels, row-major [<see cref="Count"/>, <see cref="Features"/>], as read (uint8, 0 to 255).</summary>
    public ReadOnlyMemory<byte> Pixels => Set.Pixels;

    /// <summary>The label of each image; empty when the images came without labels (<see cref="HasLabels"/>).</summary>
    public ReadOnlyMemory<int> Labels => HasLabels ? Set.Labels : ReadOnlyMemory<int>.Empty;

    /// <summary>Whether the images have labels (an image file read by <see cref="Network.ReadImages"/> without its labels has none).</summary>
    public bool HasLabels { get; }

    /// <summary>Where the images came from: a data folder, or a file (with its labels' file).</summary>
    public string Origin { get; }

    /// <summary>How the file's values became these uint8 pixels: "uint8, 0..255 as stored", "floats read as 0..1 (--pixel-range 0-1), times 255".</summary>
    public string Scaling => Set.Scaling;

    /// <summary>The classes' names as this data names them: Fashion-MNIST's for Fashion-MNIST, else the class numbers.</summary>
    public IReadOnlyList<string> ClassNames => Gpu.Engine.Data.ClassNames.For(namesFrom, Classes);

    /// <summary>The first <paramref name="count"/> images (all of them if there are fewer).</summary>
    /// <param name="count">Images to keep, at least 1.</param>
    public Images Take(int count)
    {
        if (count < 1) throw new UserError($"Take({count}): give a number of images >= 1");
        return new Images(Set.Take(count), Origin, HasLabels, namesFrom);
    }
}
