using Gpu.Engine;
using Gpu.Engine.Data;

namespace Gpu;

/// <summary>
/// A training set and a test set of images (uint8 pixels with class labels), read from a data folder or
/// from files the way <c>gpu train</c> reads them: IDX (the MNIST / Fashion-MNIST files), NPY or CSV.
/// </summary>
public sealed class ImageData
{
    internal DataPair Pair { get; }
    internal DataSource Source { get; }
    /// <summary>The training images kept (0: all), as <c>--limit</c> records it.</summary>
    internal int Limit { get; }

    ImageData(DataSource source, DataPair pair, int limit) { Source = source; Pair = pair; Limit = limit; }

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

/// <summary>Images with their labels: <see cref="Count"/> rows of <see cref="Features"/> uint8 pixels each, row-major.</summary>
public sealed class Images
{
    internal Dataset Set { get; }

    internal Images(Dataset set) => Set = set;

    /// <summary>Number of images.</summary>
    public int Count => Set.Count;

    /// <summary>Pixels per image (784 for 28x28).</summary>
    public int Features => Set.Features;

    /// <summary>Number of classes the labels range over (labels are 0 to Classes - 1).</summary>
    public int Classes => Set.Classes;

    /// <summary>All pixels, row-major [<see cref="Count"/>, <see cref="Features"/>], as read (uint8, 0 to 255).</summary>
    public ReadOnlyMemory<byte> Pixels => Set.Pixels;

    /// <summary>The label of each image.</summary>
    public ReadOnlyMemory<int> Labels => Set.Labels;

    /// <summary>The first <paramref name="count"/> images (all of them if there are fewer).</summary>
    /// <param name="count">Images to keep, at least 1.</param>
    public Images Take(int count)
    {
        if (count < 1) throw new UserError($"Take({count}): give a number of images >= 1");
        return new Images(Set.Take(count));
    }
}
