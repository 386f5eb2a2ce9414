using System.IO.Compression;
using Gpu.Engine.Data;
using Gpu.Engine;

namespace Gpu.Tests.Data;

public sealed class IdxTests : TempFolderTest
{

    [Test]
    public void Reads_the_real_fashion_mnist_files()
    {
        var data = Idx.ReadFolder(Repo.FashionMnist);
        Assert.That(data.Train.Count, Is.EqualTo(60000));
        Assert.That(data.Test.Count, Is.EqualTo(10000));
        Assert.That(data.Train.Features, Is.EqualTo(784));
        Assert.That(data.Train.Classes, Is.EqualTo(10));
        // Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class
        Assert.That(data.Train.Labels.GroupBy(l => l).Select(g => g.Count()), Is.All.EqualTo(6000));
        Assert.That(data.Test.Labels.GroupBy(l => l).Select(g => g.Count()), Is.All.EqualTo(1000));
        Assert.That(data.Train.Labels.Take(5), Is.EqualTo(new[] { 9, 0, 0, 3, 0 }));   // published first labels
        Assert.That(data.Train.Pixels.Max(), Is.EqualTo(255));
    }

    static byte[] Header(int magic, params int[] dims)
    {
        var h = new List<byte> { 0, 0, (byte)(magic >> 8), (byte)magic };
        foreach (var d in dims) h.AddRange([(byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d]);
        return h.ToArray();
    }

    string Write(string name, byte[] bytes, bool gzip)
    {
        var path = Path.Combine(dir, name);
        if (!gzip) { File.WriteAllBytes(path, bytes); return path; }
        using var f = File.Create(path);
        using var z = new GZipStream(f, CompressionLevel.Fastest);
        z.Write(bytes);
        return path;
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Reads_gzip_and_plain_files(bool gzip)
    {
        var images = Write("i", [.. Header(0x0803, 2, 2, 3), .. Enumerable.Range(0, 12).Select(i => (byte)i)], gzip);
        var labels = Write("l", [.. Header(0x0801, 2), 4, 7], gzip);
        var ds = Idx.ReadPair(images, labels, "tiny");
        Assert.That(ds.Count, Is.EqualTo(2));
        Assert.That(ds.Features, Is.EqualTo(6));
        Assert.That(ds.Labels, Is.EqualTo(new[] { 4, 7 }));
        Assert.That(ds.Pixels[11], Is.EqualTo(11));
    }

    [Test]
    public void Truncated_file_is_reported()
    {
        var p = Write("t.gz", [.. Header(0x0803, 10, 28, 28), .. new byte[100]], gzip: true);
        var e = Assert.Throws<UserError>(() => Idx.Read(p))!;
        Assert.That(e.Message, Does.Contain("truncated"));
    }

    [Test]
    public void Truncated_gzip_stream_is_reported()
    {
        var full = Write("full.gz", [.. Header(0x0803, 100, 28, 28), .. new byte[78400]], gzip: true);
        var bytes = File.ReadAllBytes(full);
        var p = Write("cut.gz", bytes[..(bytes.Length / 2)], gzip: false);
        var e = Assert.Throws<UserError>(() => Idx.Read(p))!;
        Assert.That(e.Message, Does.Contain("cut.gz"));
    }

    [Test]
    public void Wrong_magic_is_reported()
    {
        var p = Write("m2", [0x12, 0x34, 0x08, 0x03, .. new byte[16]], gzip: false);
        var e = Assert.Throws<UserError>(() => Idx.Read(p))!;
        Assert.That(e.Message, Does.Contain("magic"));
    }

    [Test]
    public void Non_byte_data_type_is_reported()
    {
        var p = Write("f", [0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0], gzip: false);   // 0x0D = float32
        Assert.That(Assert.Throws<UserError>(() => Idx.Read(p))!.Message, Does.Contain("magic"));
    }

    [Test]
    public void Image_and_label_count_mismatch_is_reported()
    {
        var images = Write("i", [.. Header(0x0803, 3, 2, 2), .. new byte[12]], gzip: false);
        var labels = Write("l", [.. Header(0x0801, 2), 1, 2], gzip: false);
        var e = Assert.Throws<UserError>(() => Idx.ReadPair(images, labels, "x"))!;
        Assert.That(e.Message, Does.Contain("3 images").And.Contain("2 labels"));
    }

    [Test]
    public void Label_out_of_range_is_reported()
    {
        var images = Write("i", [.. Header(0x0803, 2, 1, 1), 0, 0], gzip: false);
        var labels = Write("l", [.. Header(0x0801, 2), 1, 12], gzip: false);
        Assert.That(Assert.Throws<UserError>(() => Idx.ReadPair(images, labels, "x"))!.Message, Does.Contain("label 12"));
    }

    [Test]
    public void Missing_folder_and_missing_file_are_reported()
    {
        Assert.That(Assert.Throws<UserError>(() => Idx.ReadFolder(Path.Combine(dir, "nope")))!.Message, Does.Contain("not found"));
        Assert.That(Assert.Throws<UserError>(() => Idx.ReadFolder(dir))!.Message, Does.Contain("train-images-idx3-ubyte"));
    }

    [Test]
    public void Validation_split_is_seeded_disjoint_and_complete()
    {
        var data = Idx.ReadFolder(Repo.FashionMnist).Train.Take(1000);
        var (t1, v1) = data.Split(0.1, 42);
        var (t2, v2) = data.Split(0.1, 42);
        var (_, v3) = data.Split(0.1, 43);
        Assert.That(v1!.Count, Is.EqualTo(100));
        Assert.That(t1.Count, Is.EqualTo(900));
        Assert.That(v1.Pixels, Is.EqualTo(v2!.Pixels));
        Assert.That(v1.Pixels, Is.Not.EqualTo(v3!.Pixels));
        Assert.That(t1.Labels.Concat(v1.Labels).OrderBy(l => l), Is.EqualTo(data.Labels.OrderBy(l => l)));
    }

    // Issue 22, case 8: outside the repository the default --data was "not found" with no way on; Debian's
    // dataset-fashion-mnist installs the same files into /usr/share/datasets/fashion-mnist.
    [Test]
    public void The_default_data_folder_is_also_found_where_Debian_installs_it()
    {
        Assert.That(DataLocator.Resolve(DataLocator.DefaultFolder, p => p == DataLocator.SystemFolder), Is.EqualTo("/usr/share/datasets/fashion-mnist"));
        Assert.That(DataLocator.Resolve("data/mnist-10k", p => p == DataLocator.SystemFolder), Is.EqualTo("data/mnist-10k"), "only the default has a system home");
        Assert.That(DataLocator.Resolve(DataLocator.DefaultFolder, p => p == DataLocator.DefaultFolder), Is.EqualTo(DataLocator.DefaultFolder), "the working folder's copy first");
        var e = Assert.Throws<UserError>(() => Idx.ReadFolder(Path.Combine(dir, "nowhere"), shown: DataLocator.DefaultFolder));
        Assert.That(e!.Message, Does.Contain("install Debian's dataset-fashion-mnist").And.Contain("--data DIR"));
    }
}
