using System.Diagnostics;
using Gpu.Engine.Data;
using ILGPU;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Cli;

/// <summary>
/// <c>--data-path stream</c> over uncompressed files reads them in place: the same model bit for bit as the
/// resident path (and as the stream path over loaded data) when the set fits the buffer, and a file larger
/// than the memory the process is allowed trains in a child process whose peak memory stays far below it.
/// </summary>
public sealed class StreamFromDiskTests : TempFolderTest
{
    static readonly string[] Net = ["--device", "cpu", "--layers", "16", "--epochs", "2", "--seed", "4", "--batch-size", "100"];

    /// <summary>The first 3,000 training and 1,000 test images of Fashion-MNIST as IDX files, gzipped (gz) or plain, and as .npy files.</summary>
    (string Gz, string Plain, string[] Npy) Data()
    {
        var full = Idx.ReadFolder(Repo.FashionMnist);
        var (train, test) = (full.Train.Take(3000), full.Test.Take(1000));
        string gz = Path.Combine(dir, "gz"), plain = Path.Combine(dir, "plain");
        Directory.CreateDirectory(gz); Directory.CreateDirectory(plain);
        foreach (var (stem, d) in new[] { ("train", train), ("t10k", test) })
        {
            byte[] images = SyntheticData.Idx([d.Count, 28, 28], d.Pixels), labels = SyntheticData.Idx([d.Count], d.Labels.Select(l => (byte)l).ToArray());
            SyntheticData.Gz(Path.Combine(gz, $"{stem}-images-idx3-ubyte.gz"), images);
            SyntheticData.Gz(Path.Combine(gz, $"{stem}-labels-idx1-ubyte.gz"), labels);
            File.WriteAllBytes(Path.Combine(plain, $"{stem}-images-idx3-ubyte"), images);
            File.WriteAllBytes(Path.Combine(plain, $"{stem}-labels-idx1-ubyte"), labels);
            TestFiles.WriteNpy(Path.Combine(dir, $"{stem}_images.npy"), "|u1", [d.Count, 784], d.Pixels);
            TestFiles.WriteNpy(Path.Combine(dir, $"{stem}_labels.npy"), "<i8", [d.Count], TestFiles.Longs(d.Labels.Select(l => (long)l)));
        }
        string N(string f) => Path.Combine(dir, f);
        return (gz, plain, ["--train-images", N("train_images.npy"), "--train-labels", N("train_labels.npy"), "--test-images", N("t10k_images.npy"), "--test-labels", N("t10k_labels.npy")]);
    }

    (byte[] Model, string Out) Train(string name, params string[] args)
    {
        var output = Path.Combine(dir, name);
        var r = Run(["train", .. Net, .. args, "--output", output]);
        Assert.That(r.Code, Is.Zero, r.Err);
        return (File.ReadAllBytes(Path.Combine(output, "model.npy")), r.Out);
    }

    [Test]
    public void A_set_that_fits_trains_bit_for_bit_as_resident_and_a_smaller_buffer_block_shuffles_deterministically()
    {
        var (gz, plain, npy) = Data();
        var resident = Train("resident", "--data", gz, "--data-path", "resident");
        var loaded = Train("loaded", "--data", gz, "--data-path", "stream");   // gzip: loaded into memory, today's streamed path
        Assert.That(loaded.Out, Does.Contain("gzip-compressed and cannot be memory-mapped").And.Not.Contain("read in place"));
        var mapped = Train("mapped", "--data", plain, "--data-path", "stream");
        Assert.That(mapped.Out, Does.Contain("training images read in place").And.Contain("they fit the 1024 MB --stream-buffer: read once, fully shuffled"));
        var mappedNpy = Train("npy", [.. npy, "--data-path", "stream"]);
        Assert.That(mappedNpy.Out, Does.Contain("read in place"));
        Assert.That(loaded.Model, Is.EqualTo(resident.Model), "stream over loaded data = resident");
        Assert.That(mapped.Model, Is.EqualTo(resident.Model), "stream from a mapped IDX file = resident");
        Assert.That(mappedNpy.Model, Is.EqualTo(resident.Model), "stream from a mapped .npy file = resident");
        string Test(string o) => o.Split('\n').Single(l => l.StartsWith("test accuracy"))[..40];
        Assert.That(Test(mapped.Out), Is.EqualTo(Test(resident.Out)));

        // 1 MB holds two blocks of 1,024 rows, fewer than the 2,700 training rows: block-shuffled, another order, yet the same every time
        var blocks = Train("blocks", "--data", plain, "--data-path", "stream", "--stream-buffer", "1");
        Assert.That(blocks.Out, Does.Contain("each epoch shuffles blocks of 1,024 rows, and rows within 2 blocks at a time"));
        Assert.That(blocks.Model, Is.Not.EqualTo(resident.Model));
        Assert.That(Train("blocks2", "--data", plain, "--data-path", "stream", "--stream-buffer", "1").Model, Is.EqualTo(blocks.Model));
        AssertOneLineError(Run(["train", .. Net, "--data", plain, "--data-path", "stream", "--stream-buffer", "0"]), "--stream-buffer 0: give a whole number of MB >= 1");
    }

    [Test]
    public void A_training_file_larger_than_the_memory_allowed_trains_an_epoch_read_in_place()
    {
        new DeviceCase("opencl", OptimizationLevel.O2).OpenOrIgnore().Dispose();   // POCL: five times the CPU accelerator's speed here
        const int rows = 1_000_000, features = 784;
        long fileBytes = (long)rows * features;
        string images = Path.Combine(dir, "big_images.npy"), labels = Path.Combine(dir, "big_labels.npy");
        TestFiles.WriteNpy(images, "|u1", [rows, features], []);
        var random = new Random(11);
        using (var f = new FileStream(images, FileMode.Append))
        {
            var chunk = new byte[8 << 20];
            for (long left = fileBytes; left > 0; left -= chunk.Length)
            {
                random.NextBytes(chunk);
                f.Write(chunk, 0, (int)Math.Min(chunk.Length, left));
            }
        }
        var y = new byte[rows];
        for (int i = 0; i < rows; i++) y[i] = (byte)random.Next(10);
        TestFiles.WriteNpy(labels, "|u1", [rows], y);
        var test = Idx.ReadFolder(Repo.FashionMnist).Test.Take(1000);
        TestFiles.WriteNpy(Path.Combine(dir, "test_images.npy"), "|u1", [1000, features], test.Pixels);
        TestFiles.WriteNpy(Path.Combine(dir, "test_labels.npy"), "|u1", [1000], test.Labels.Select(l => (byte)l).ToArray());

        var psi = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "gpu")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "train", "--train-images", images, "--train-labels", labels, "--test-images", Path.Combine(dir, "test_images.npy"),
                     "--test-labels", Path.Combine(dir, "test_labels.npy"), "--device", "opencl", "--layers", "1", "--epochs", "1", "--batch-size", "1024",
                     "--data-path", "stream", "--stream-buffer", "32" })
            psi.ArgumentList.Add(a);
        // the memory limit: a managed heap of 128 MB, a sixth of the file (loading it would fail), and a peak of anonymous resident
        // memory (RssAnon, sampled: what the process itself holds, not the file's pages the page cache maps in and may keep,
        // which VmHWM counts and which varied from 260 to 423 MB between machines) under half of it
        psi.Environment["DOTNET_GCHeapHardLimit"] = "0x8000000";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        long peakKb = 0;
        while (!p.HasExited)
        {
            try
            {
                var hwm = File.ReadLines($"/proc/{p.Id}/status").FirstOrDefault(l => l.StartsWith("RssAnon:"));
                if (hwm != null) peakKb = Math.Max(peakKb, long.Parse(hwm.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]));
            }
            catch (IOException) { }   // it exited between the check and the read
            Thread.Sleep(20);
        }
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.Zero, stderr.Result + stdout.Result);
        Assert.That(stdout.Result, Does.Contain("training images read in place").And.Contain("900,000 train / 100,000 validation images"));
        Assert.That(stdout.Result, Does.Contain("epoch   1/1"));
        TestContext.Out.WriteLine($"peak anonymous resident memory {peakKb / 1024} MB for a {fileBytes >> 20} MB training file");
        Assert.That(peakKb * 1024, Is.GreaterThan(0).And.LessThan(fileBytes / 2), "peak anonymous resident memory (RssAnon) well below the file's size");
    }
}
