using Gpu.Engine.Data;
using Gpu.Engine.Runs;
using static Gpu.Tests.CliRun;
using static Gpu.Tests.TestFiles;

namespace Gpu.Tests.Data;

/// <summary>--pixel-range: a float file's range comes from the flag or the type's convention, and the data line says which scaling was used.</summary>
public sealed class PixelRangeTests : TempFolderTest
{
    static Dataset Real(int n) => Idx.ReadFolder(Repo.FashionMnist).Test.Take(n);
    string F(string name) => Path.Combine(dir, name);

    /// <summary>Real images darkened to a quarter of their brightness and stored as float 0..255 values: every value is at most 1 only when very dark.</summary>
    (Dataset Real, float[] Dark) DarkFloats(int n)
    {
        var real = Real(n);
        var dark = real.Pixels.Select(p => p / 255f).ToArray();   // 0..1 values, but meant as 0..255 (a nearly black file)
        WriteNpy(F("x.npy"), "<f4", [n, 784], Floats(dark));
        WriteNpy(F("y.npy"), "<i8", [n], Longs(real.Labels.Select(l => (long)l)));
        return (real, dark);
    }

    [Test]
    public void A_dark_0_255_float_file_is_read_as_it_is_with_0_255_and_scaled_by_the_float_convention_otherwise()
    {
        var (real, dark) = DarkFloats(20);
        var auto = TableData.ReadNpy(F("x.npy"), F("y.npy"), "npy");
        Assert.That(auto.Pixels, Is.EqualTo(real.Pixels), "auto: floats all <= 1 are 0..1");
        Assert.That(auto.Scaling, Does.Contain("floats read as 0..1").And.Contain("--pixel-range 0-255"));
        var asBytes = TableData.ReadNpy(F("x.npy"), F("y.npy"), "npy", range: PixelRange.Byte);
        Assert.That(asBytes.Pixels, Is.EqualTo(dark.Select(v => (byte)Math.Round(v)).ToArray()), "0-255: the values as they are");
        Assert.That(asBytes.Scaling, Is.EqualTo("floats read as 0..255 (--pixel-range 0-255)"));
        Assert.That(TableData.ReadNpy(F("x.npy"), F("y.npy"), "npy", range: PixelRange.Unit).Pixels, Is.EqualTo(real.Pixels));
    }

    [TestCase(PixelRange.Auto)]
    [TestCase(PixelRange.Byte)]
    [TestCase(PixelRange.Unit)]
    public void A_memory_mapped_float_file_is_scaled_by_the_same_rule(object given)   // PixelRange is internal: NUnit passes it as an object
    {
        var range = (PixelRange)given;
        DarkFloats(30);
        var loaded = TableData.Read(F("x.npy"), F("y.npy"), "npy", range: range);
        string? note = null;
        var mapped = TableData.Read(F("x.npy"), F("y.npy"), "npy", map: why => note = why, range: range);
        Assert.That((mapped.Mapped != null, note), Is.EqualTo((true, (string?)null)), "read in place");
        var bytes = new byte[mapped.Count * mapped.Features];
        mapped.CopyRows(0, mapped.Count, bytes);
        Assert.That(bytes, Is.EqualTo(loaded.Pixels));
        Assert.That(mapped.Scaling, Is.EqualTo(loaded.Scaling));
    }

    [Test]
    public void Values_above_1_with_0_1_are_refused_and_auto_reads_them_as_0_255()
    {
        var real = Real(5);
        WriteNpy(F("x.npy"), "<f4", [5, 784], Floats(real.Pixels.Select(p => (float)p)));
        WriteNpy(F("y.npy"), "<i8", [5], Longs(real.Labels.Select(l => (long)l)));
        var e = Assert.Throws<Gpu.Engine.UserError>(() => TableData.ReadNpy(F("x.npy"), F("y.npy"), "npy", range: PixelRange.Unit))!;
        Assert.That(e.Message, Does.Contain("above 1 with --pixel-range 0-1"));
        var auto = TableData.ReadNpy(F("x.npy"), F("y.npy"), "npy");
        Assert.That(auto.Pixels, Is.EqualTo(real.Pixels));
        Assert.That(auto.Scaling, Does.StartWith("floats read as 0..255 (--pixel-range auto: the largest value, 255, is above 1)"));
        File.WriteAllText(F("i.csv"), "label,a,b\n1,0,1\n");
        Assert.That(TableData.ReadCsv(F("i.csv"), "csv").Scaling, Does.StartWith("integers read as 0..255"), "a CSV of whole numbers is integers");
    }

    [Test]
    public void Train_says_the_scaling_in_its_data_line_and_resume_keeps_the_range()
    {
        var (_, _) = DarkFloats(300);
        var test = Real(50);
        WriteNpy(F("tx.npy"), "<f4", [50, 784], Floats(test.Pixels.Select(p => p / 255f)));
        WriteNpy(F("ty.npy"), "<i8", [50], Longs(test.Labels.Select(l => (long)l)));
        string[] Args(string output, params string[] more) => ["train", "--train-images", F("x.npy"), "--train-labels", F("y.npy"), "--test-images", F("tx.npy"),
            "--test-labels", F("ty.npy"), "--layers", "8", "--limit", "0", "--device", "cpu", "--output", output, .. more];
        var auto = Run(Args(F("a"), "--epochs", "1"));
        Assert.That(auto.Code, Is.Zero, auto.Err);
        Assert.That(auto.Out, Does.Contain("; pixels: floats read as 0..1 and times 255 (--pixel-range auto"));
        var bytes = Run(Args(F("b"), "--pixel-range", "0-255", "--epochs", "1"));
        Assert.That(bytes.Code, Is.Zero, bytes.Err);
        Assert.That(bytes.Out, Does.Contain("; pixels: floats read as 0..255 (--pixel-range 0-255)"));
        Assert.That(SavedModel.Read(F("b")).Data!.PixelRange, Is.EqualTo(PixelRange.Byte), "model.json keeps the range");
        var resumed = Run("train", "--resume", F("b"), "--epochs", "2", "--device", "cpu");
        Assert.That(resumed.Code, Is.Zero, resumed.Err);
        Assert.That(resumed.Out, Does.Contain("; pixels: floats read as 0..255 (--pixel-range 0-255)"), "the resumed run reads the data as it trained");
        AssertOneLineError(Run(Args(F("c"), "--pixel-range", "0-100")), "--pixel-range 0-100: give 0-255");
        var predict = Run("predict", "--model", F("b"), "--input", F("tx.npy"), "--pixel-range", "0-1", "--limit", "3", "--device", "cpu");
        Assert.That(predict.Code, Is.Zero, predict.Err);
        Assert.That(predict.Out.Split('\n')[1], Does.Contain("pixels: floats read as 0..1 (--pixel-range 0-1), times 255"));
    }
}
