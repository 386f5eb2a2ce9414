using System.Globalization;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Cli;

/// <summary>gradcheck and landscape end to end, in-process.</summary>
public sealed class AnalysisCliTests : TempFolderTest
{
    [Test]
    public void Gradcheck_passes_on_a_small_network_and_dumps_every_parameter()
    {
        var dump = Path.Combine(dir, "grad.csv");
        var r = Run("gradcheck", "--data", Repo.FashionMnist, "--layers", "12,6", "--activation", "tanh", "--params", "all", "--device", "cpu", "--dump", dump);
        Assert.That(r.Code, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("checking all 9,568 parameters").And.Contain("the first 5 training images")
            .And.Contain("relative error").And.Contain("largest element-wise relative error").And.Contain("gradient check passed"));
        var lines = File.ReadAllLines(dump);
        Assert.That(lines[0], Is.EqualTo("index,layer,param,row,col,analytic,numeric,abs_diff,rel_error,kink"));
        Assert.That(lines, Has.Length.EqualTo(9568 + 1));
        var last = lines[^1].Split(',');
        Assert.That((last[0], last[1], last[2], last[3]), Is.EqualTo(("9567", "3", "b", "9")));
        Assert.That(double.Parse(last[5], CultureInfo.InvariantCulture), Is.EqualTo(double.Parse(last[6], CultureInfo.InvariantCulture)).Within(1e-4));
    }

    [Test]
    public void Gradcheck_fails_with_exit_code_4_above_the_threshold()
    {
        var r = Run("gradcheck", "--data", Repo.FashionMnist, "--layers", "10", "--params", "200", "--device", "cpu", "--threshold", "1e-12");
        AssertOneLineError(r, "gradient check failed: relative error", 4);
        Assert.That(r.Err, Does.Contain("above --threshold 1.00e-12").And.Contain("largest element-wise error at layer"));
        Assert.That(r.Out, Does.Contain("checking a seeded sample of 200 of 7,960 parameters"));
    }

    [Test]
    public void Gradcheck_checks_a_trained_model()
    {
        var model = Path.Combine(dir, "model");
        var t = Run("train", "--data", Repo.FashionMnist, "--limit", "600", "--epochs", "1", "--layers", "16", "--activation", "sigmoid",
            "--device", "cpu", "--output", model);
        Assert.That(t.Code, Is.Zero, t.Err);
        var r = Run("gradcheck", "--model", model, "--params", "300", "--examples", "3", "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("784-16-10 sigmoid").And.Contain("the first 3 training images").And.Contain("gradient check passed"));
    }

    [Test]
    public void Help_describes_both_verbs()
    {
        Assert.That(Run("gradcheck", "--help").Out, Does.Contain("--params").And.Contain("--epsilon").And.Contain("--threshold").And.Contain("--dump").And.Contain("--model"));
        Assert.That(Run("landscape", "--help").Out, Does.Contain("--record-every").And.Contain("--grid").And.Contain("--eval-images").And.Contain("--lr"));
        Assert.That(Run("--help").Out, Does.Contain("gradcheck").And.Contain("landscape"));
    }

    [Test] public void Gradcheck_bad_params() => AssertOneLineError(Run("gradcheck", "--params", "some", "--device", "cpu"), "--params 'some'", 2);
    [Test] public void Gradcheck_model_and_layers() => AssertOneLineError(Run("gradcheck", "--model", dir, "--layers", "5"), "--layers cannot be combined with --model", 2);
    [Test] public void Gradcheck_missing_model() => AssertOneLineError(Run("gradcheck", "--model", Path.Combine(dir, "none")), "folder not found", 2);

    [Test]
    public void Landscape_writes_the_csv_and_the_picture()
    {
        var output = Path.Combine(dir, "land");
        var r = Run("landscape", "--data", Repo.FashionMnist, "--limit", "1000", "--layers", "8", "--epochs", "2", "--grid", "6",
            "--eval-images", "500", "--device", "cpu", "--output", output);
        Assert.That(r.Code, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("PC1 explains").And.Contain("wrote landscape.csv and landscape.png"));
        var rows = File.ReadAllLines(Path.Combine(output, "landscape.csv"));
        Assert.That(rows[0], Is.EqualTo("kind,step,a,b,loss"));
        var grid = rows.Skip(1).Where(l => l.StartsWith("grid,")).ToArray();
        var path = rows.Skip(1).Where(l => l.StartsWith("path,")).Select(l => l.Split(',')).ToArray();
        Assert.That(grid, Has.Length.EqualTo(36));
        Assert.That(path, Has.Length.EqualTo(17), "steps 0..16: 8 steps per epoch, recorded after every step");
        Assert.That(rows, Has.Length.EqualTo(1 + 36 + 17));
        foreach (var row in rows.Skip(1))
            foreach (var v in row.Split(',').Skip(2))
                Assert.That(double.IsFinite(double.Parse(v, CultureInfo.InvariantCulture)), Is.True, row);
        Assert.That((path[^1][1], double.Parse(path[^1][2], CultureInfo.InvariantCulture), double.Parse(path[^1][3], CultureInfo.InvariantCulture)),
            Is.EqualTo(("16", 0.0, 0.0)));
        var png = File.ReadAllBytes(Path.Combine(output, "landscape.png"));
        Assert.That(png.Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }));
        Assert.That(png, Has.Length.GreaterThan(20_000));
    }

    [Test] public void Landscape_grid_too_small() => AssertOneLineError(Run("landscape", "--grid", "1", "--device", "cpu", "--limit", "300", "--output", dir), "--grid 1", 2);
    [Test] public void Landscape_too_many_points() =>
        AssertOneLineError(Run("landscape", "--record-every", "1", "--device", "cpu", "--output", dir), "at most 500", 2);
}
