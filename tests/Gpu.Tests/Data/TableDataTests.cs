using Gpu.Engine.Data;
using Gpu.Engine;
using static Gpu.Tests.TestFiles;

namespace Gpu.Tests.Data;

/// <summary>NPY and CSV inputs: real Fashion-MNIST images round-tripped through both formats, and every kind of bad value.</summary>
public sealed class TableDataTests : TempFolderTest
{
    static Dataset Real(int n) => Idx.ReadFolder(Repo.FashionMnist).Test.Take(n);

    [Test]
    public void Npy_uint8_images_and_int64_labels_equal_the_idx_files()
    {
        var real = Real(100);
        WriteNpy(Path.Combine(dir, "fashion_mnist_train_images.npy"), "|u1", [100, 28, 28], real.Pixels);
        WriteNpy(Path.Combine(dir, "fashion_mnist_train_labels.npy"), "<i8", [100], Longs(real.Labels.Select(l => (long)l)));
        var ds = TableData.ReadNpy(Path.Combine(dir, "fashion_mnist_train_images.npy"), Path.Combine(dir, "fashion_mnist_train_labels.npy"), "npy");
        Assert.That(ds.Features, Is.EqualTo(784));
        Assert.That(ds.Pixels, Is.EqualTo(real.Pixels));
        Assert.That(ds.Labels, Is.EqualTo(real.Labels));
    }

    [TestCase(1.0)]
    [TestCase(255.0)]
    public void Npy_float_images_in_0_1_or_0_255_become_the_same_bytes(double scale)
    {
        var real = Real(20);
        var floats = real.Pixels.Select(p => (float)(p / 255.0 * scale)).ToArray();
        WriteNpy(Path.Combine(dir, "x.npy"), "<f4", [20, 784], Floats(floats));
        WriteNpy(Path.Combine(dir, "y.npy"), "<f4", [20], Floats(real.Labels.Select(l => (float)l)));
        var ds = TableData.ReadNpy(Path.Combine(dir, "x.npy"), Path.Combine(dir, "y.npy"), "npy");
        Assert.That(ds.Pixels, Is.EqualTo(real.Pixels));
    }

    [TestCase(float.NaN, "NaN at image 1, pixel 2")]
    [TestCase(float.PositiveInfinity, "Inf at image 1, pixel 2")]
    [TestCase(300f, "above 255")]
    [TestCase(-1f, "negative pixel")]
    public void Npy_bad_pixels_are_reported(float bad, string message)
    {
        var x = new float[3 * 4]; x[4 + 2] = bad;
        WriteNpy(Path.Combine(dir, "x.npy"), "<f4", [3, 4], Floats(x));
        WriteNpy(Path.Combine(dir, "y.npy"), "<i8", [3], Longs([0, 1, 2]));
        var e = Assert.Throws<UserError>(() => TableData.ReadNpy(Path.Combine(dir, "x.npy"), Path.Combine(dir, "y.npy"), "npy"))!;
        Assert.That(e.Message, Does.Contain(message));
    }

    [Test]
    public void Npy_bad_labels_counts_shapes_and_files_are_reported()
    {
        WriteNpy(Path.Combine(dir, "x.npy"), "|u1", [3, 4], new byte[12]);
        WriteNpy(Path.Combine(dir, "y2.npy"), "<i8", [2], Longs([0, 1]));
        WriteNpy(Path.Combine(dir, "ybad.npy"), "<i8", [3], Longs([0, 1, 10]));
        WriteNpy(Path.Combine(dir, "yfrac.npy"), "<f8", [3], [.. BitConverter.GetBytes(0.0), .. BitConverter.GetBytes(1.5), .. BitConverter.GetBytes(2.0)]);
        WriteNpy(Path.Combine(dir, "x1d.npy"), "|u1", [12], new byte[12]);
        string X(string f) => Path.Combine(dir, f);
        Assert.That(Assert.Throws<UserError>(() => TableData.ReadNpy(X("x.npy"), X("y2.npy"), "n"))!.Message, Does.Contain("3 images").And.Contain("2 labels"));
        Assert.That(Assert.Throws<UserError>(() => TableData.ReadNpy(X("x.npy"), X("ybad.npy"), "n"))!.Message, Does.Contain("label 10"));
        Assert.That(Assert.Throws<UserError>(() => TableData.ReadNpy(X("x.npy"), X("yfrac.npy"), "n"))!.Message, Does.Contain("label 1.5"));
        Assert.That(Assert.Throws<UserError>(() => TableData.ReadNpy(X("x1d.npy"), X("y2.npy"), "n"))!.Message, Does.Contain("[N, features]"));
        File.WriteAllBytes(X("cut.npy"), File.ReadAllBytes(X("x.npy"))[..^3]);
        Assert.That(Assert.Throws<UserError>(() => TableData.ReadNpy(X("cut.npy"), X("y2.npy"), "n"))!.Message, Does.Contain("truncated"));
        File.WriteAllText(X("text.npy"), "not numpy");
        Assert.That(Assert.Throws<UserError>(() => TableData.ReadNpy(X("text.npy"), X("y2.npy"), "n"))!.Message, Does.Contain("not a NumPy"));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void Csv_with_or_without_header_equals_the_idx_files(bool header)
    {
        var real = Real(50);
        File.WriteAllText(Path.Combine(dir, "train.csv"), Csv(real, header));
        var ds = TableData.ReadCsv(Path.Combine(dir, "train.csv"), "csv");
        Assert.That(ds.Pixels, Is.EqualTo(real.Pixels));
        Assert.That(ds.Labels, Is.EqualTo(real.Labels));
    }

    [TestCase("1,0,NaN,3\n", "NaN at pixel 1")]
    [TestCase("1,0,Infinity,3\n", "Inf at pixel 1")]
    [TestCase("1,0,2\n2,0,2,3\n", "3 pixels where earlier rows have 2")]
    [TestCase("11,0,2\n", "label 11")]
    [TestCase("1,0,x\n", "'x' is not a number")]
    [TestCase("label,p0\n", "empty")]
    public void Csv_bad_rows_are_reported(string text, string message)
    {
        File.WriteAllText(Path.Combine(dir, "bad.csv"), text);
        var e = Assert.Throws<UserError>(() => TableData.ReadCsv(Path.Combine(dir, "bad.csv"), "csv"))!;
        Assert.That(e.Message, Does.Contain(message));
    }

    [Test]
    public void A_folder_of_npy_files_is_found_by_name()
    {
        var real = Real(30);
        foreach (var split in new[] { "train", "test" })
        {
            WriteNpy(Path.Combine(dir, $"fashion_mnist_{split}_images.npy"), "|u1", [30, 28, 28], real.Pixels);
            WriteNpy(Path.Combine(dir, $"fashion_mnist_{split}_labels.npy"), "<i8", [30], Longs(real.Labels.Select(l => (long)l)));
        }
        var pair = Idx.ReadFolder(dir);
        Assert.That(pair.Train.Count, Is.EqualTo(30));
        Assert.That(pair.Test.Pixels, Is.EqualTo(real.Pixels));
    }

    [Test]
    public void Train_accepts_explicit_csv_files_and_reports_nan_in_one_line()
    {
        var full = Idx.ReadFolder(Repo.FashionMnist);
        File.WriteAllText(Path.Combine(dir, "train.csv"), Csv(full.Train.Take(600), header: true));
        File.WriteAllText(Path.Combine(dir, "test.csv"), Csv(full.Test.Take(200), header: true));
        var o = new StringWriter(); var err = new StringWriter();
        int code = Gpu.Cli.Program.Run(["train", "--train-images", Path.Combine(dir, "train.csv"), "--test-images", Path.Combine(dir, "test.csv"),
            "--epochs", "1", "--layers", "16", "--device", "cpu"], o, err);
        Assert.That(code, Is.Zero, err.ToString());
        Assert.That(o.ToString(), Does.Contain("test accuracy").And.Contain("540 train"));

        File.AppendAllText(Path.Combine(dir, "test.csv"), "3," + string.Join(",", Enumerable.Repeat("NaN", 784)) + "\n");
        err = new StringWriter();
        code = Gpu.Cli.Program.Run(["train", "--train-images", Path.Combine(dir, "train.csv"), "--test-images", Path.Combine(dir, "test.csv"),
            "--device", "cpu"], new StringWriter(), err);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err.ToString().Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(err.ToString(), Does.StartWith("error: ").And.Contain("NaN at pixel 0"));
    }
}
