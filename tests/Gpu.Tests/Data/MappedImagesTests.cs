using Gpu.Engine.Data;
using Gpu.Engine;
using static Gpu.Tests.TestFiles;

namespace Gpu.Tests.Data;

/// <summary>Image files read in place (memory-mapped) give exactly the pixels, subsets and fingerprint of the loaded files.</summary>
public sealed class MappedImagesTests : TempFolderTest
{
    static readonly Dataset Real = Idx.ReadFolder(Repo.FashionMnist).Test.Take(500);

    /// <summary>The labels as .npy, or as IDX for IDX images (the loader pairs IDX images with IDX labels only).</summary>
    string Labels(bool idx = false)
    {
        var p = Path.Combine(dir, idx ? "labels-idx1-ubyte" : "labels.npy");
        var bytes = Real.Labels.Select(l => (byte)l).ToArray();
        if (idx) File.WriteAllBytes(p, SyntheticData.Idx([Real.Count], bytes));
        else WriteNpy(p, "|u1", [Real.Count], bytes);
        return p;
    }

    /// <summary>The file read both ways: in place (asserting it was mapped) and loaded.</summary>
    (Dataset Mapped, Dataset Loaded) Both(string images)
    {
        var notes = new List<string>();
        var labels = Labels(idx: !images.EndsWith(".npy"));
        var mapped = TableData.Read(images, labels, "m", map: notes.Add);
        Assert.That(notes, Is.Empty);
        Assert.That(mapped.Mapped, Is.Not.Null);
        return (mapped, TableData.Read(images, labels, "l"));
    }

    static byte[] Rows(Dataset d)
    {
        var b = new byte[d.Bytes];
        d.CopyRows(0, d.Count, b);
        return b;
    }

    [Test]
    public void Uint8_npy_float32_npy_and_plain_idx_read_in_place_equal_the_loaded_pixels()
    {
        var u8 = Path.Combine(dir, "u8.npy");
        WriteNpy(u8, "|u1", [Real.Count, 28, 28], Real.Pixels);
        var unit = Path.Combine(dir, "unit.npy");   // floats in [0, 1]: scaled by 255, as when loaded
        WriteNpy(unit, "<f4", [Real.Count, 784], Floats(Real.Pixels.Select(p => p / 255f)));
        var wide = Path.Combine(dir, "wide.npy");   // floats in [0, 255]
        WriteNpy(wide, "<f4", [Real.Count, 784], Floats(Real.Pixels.Select(p => Math.Min(p + 0.3f, 255f))));
        var idx = Path.Combine(dir, "images-idx3-ubyte");
        File.WriteAllBytes(idx, SyntheticData.Idx([Real.Count, 28, 28], Real.Pixels));
        foreach (var file in new[] { u8, unit, wide, idx })
        {
            var (mapped, loaded) = Both(file);
            Assert.That(Rows(mapped), Is.EqualTo(loaded.Pixels), file);
            Assert.That(mapped.Labels, Is.EqualTo(loaded.Labels));
            Assert.That(mapped.Features, Is.EqualTo(784));
        }
        Assert.That(Rows(Both(u8).Mapped), Is.EqualTo(Real.Pixels));
    }

    [Test]
    public void A_split_and_a_limit_stay_in_place_and_equal_the_loaded_ones_and_so_does_the_fingerprint()
    {
        var u8 = Path.Combine(dir, "u8.npy");
        WriteNpy(u8, "|u1", [Real.Count, 784], Real.Pixels);
        var (mapped, loaded) = Both(u8);
        var (mt, mv) = mapped.Take(400).Split(0.25, 9);
        var (lt, lv) = loaded.Take(400).Split(0.25, 9);
        foreach (var (m, l) in new[] { (mt, lt), (mv!, lv!) })
        {
            Assert.That(m.Mapped, Is.Not.Null, "still read in place");
            Assert.That(Rows(m), Is.EqualTo(l.Pixels));
            Assert.That(m.Labels, Is.EqualTo(l.Labels));
            Assert.That(m.Features32(3, 5), Is.EqualTo(l.Features32(3, 5)));
        }
        Assert.That(DataFingerprint.Of(new DataPair(mapped, mapped, "x")), Is.EqualTo(DataFingerprint.Of(new DataPair(loaded, loaded, "x"))));
        Assert.That(mapped.Pixels, Is.EqualTo(loaded.Pixels), "asked for every pixel, a mapped set reads them in");
    }

    [Test]
    public void Files_that_cannot_be_mapped_are_loaded_with_a_one_line_note_saying_why()
    {
        var gz = Path.Combine(dir, "images-idx3-ubyte.gz");
        SyntheticData.Gz(gz, SyntheticData.Idx([Real.Count, 784], Real.Pixels));
        var i8 = Path.Combine(dir, "i64.npy");
        WriteNpy(i8, "<i8", [Real.Count, 784], Longs(Real.Pixels.Select(p => (long)p)));
        var idxLabels = Labels(idx: true);
        var csv = Path.Combine(dir, "images.csv");
        File.WriteAllText(csv, Csv(Real, header: true));
        foreach (var (file, why) in new[] { (gz, "gzip-compressed and cannot be memory-mapped"), (i8, "not uint8 or float32"), (csv, "CSV text and cannot be memory-mapped") })
        {
            var notes = new List<string>();
            var d = TableData.Read(file, file == gz ? idxLabels : file == csv ? null : Labels(), "x", map: notes.Add);
            Assert.That(d.Mapped, Is.Null);
            Assert.That(d.Pixels, Is.EqualTo(Real.Pixels));
            Assert.That(notes, Has.Count.EqualTo(1));
            Assert.That(notes[0], Does.Contain(why).And.Contain("loaded into memory").And.Not.Contain("\n"));
        }
    }

    [Test]
    public void Broken_files_are_one_user_error_as_when_loaded()
    {
        var cut = Path.Combine(dir, "cut.npy");
        WriteNpy(cut, "|u1", [Real.Count, 784], Real.Pixels[..^10]);
        Assert.That(Assert.Throws<UserError>(() => MappedImages.TryOpen(cut, out _))!.Message, Does.Contain("truncated or corrupt"));
        var nan = Path.Combine(dir, "nan.npy");
        WriteNpy(nan, "<f4", [2, 3], Floats([0, 1, 2, 3, float.NaN, 5]));
        Assert.That(Assert.Throws<UserError>(() => MappedImages.TryOpen(nan, out _))!.Message, Does.Contain("NaN at image 1, pixel 1"));
        var idx = Path.Combine(dir, "short-idx3-ubyte");
        File.WriteAllBytes(idx, SyntheticData.Idx([10, 784], new byte[9 * 784]));
        Assert.That(Assert.Throws<UserError>(() => MappedImages.TryOpen(idx, out _))!.Message, Does.Contain("truncated or corrupt"));
        var labels = Path.Combine(dir, "few.npy");
        WriteNpy(labels, "|u1", [3], [1, 2, 3]);
        var ok = Path.Combine(dir, "ok.npy");
        WriteNpy(ok, "|u1", [Real.Count, 784], Real.Pixels);
        Assert.That(Assert.Throws<UserError>(() => TableData.Read(ok, labels, "x", map: _ => { }))!.Message, Does.Contain("holds 500 images but").And.Contain("3 labels"));
    }
}
