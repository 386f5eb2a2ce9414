using System.Globalization;
using System.Text.Json.Nodes;
using System.Text;
using Gpu.Engine.Analysis;
using Gpu.Engine.Data;
using static Gpu.Tests.CliRun;
using static Gpu.Tests.TestFiles;

namespace Gpu.Tests.Cli;

/// <summary>
/// eval, predict and weights end to end on one tiny model trained once for the fixture (784-16-10 on
/// 1,500 Fashion-MNIST images, 2 epochs), checked against what training reported and against an
/// independent NumPy-style reading of model.npy.
/// </summary>
public sealed class ModelToolTests : TempFolderTest
{
    static string fixture = null!, model = null!;
    static Dataset testSet = null!;

    [OneTimeSetUp]
    public static void TrainTinyModel()
    {
        fixture = Path.Combine(Path.GetTempPath(), "gpu-model-tools-" + Guid.NewGuid().ToString("N"));
        model = Path.Combine(fixture, "model");
        var r = Run("train", "--data", Repo.FashionMnist, "--limit", "1500", "--epochs", "2", "--layers", "16", "--device", "cpu", "--output", model);
        Assert.That(r.Code, Is.Zero, r.Err);
        testSet = Idx.ReadFolder(Repo.FashionMnist).Test;
    }

    [OneTimeTearDown]
    public static void RemoveFixture() { if (Directory.Exists(fixture)) Directory.Delete(fixture, true); }

    static JsonNode ReadJson(string path) => JsonNode.Parse(File.ReadAllText(path))!;
    string F(string name) => Path.Combine(dir, name);

    /// <summary>model.npy read byte by byte as np.load does, checking its header: a 1-D little-endian float32 vector.</summary>
    static float[] LoadLikeNumPy(string path, int parameterCount)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.That(bytes[..6], Is.EqualTo(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y' }), "magic");
        Assert.That(bytes[6..8], Is.EqualTo(new byte[] { 1, 0 }), "format version 1.0");
        int headerLength = bytes[8] | bytes[9] << 8;
        string header = Encoding.ASCII.GetString(bytes, 10, headerLength);
        Assert.That(header, Does.StartWith("{").And.EndWith("\n"));
        Assert.That(header, Does.Contain("'descr': '<f4'").And.Contain("'fortran_order': False").And.Contain($"'shape': ({parameterCount},)"));
        Assert.That((10 + headerLength) % 16, Is.Zero, "data aligned as NumPy writes it");
        Assert.That(bytes.Length - 10 - headerLength, Is.EqualTo(4 * parameterCount), "data bytes");
        var p = new float[parameterCount];
        for (int i = 0; i < p.Length; i++) p[i] = BitConverter.ToSingle(bytes, 10 + headerLength + 4 * i);
        return p;
    }

    /// <summary>
    /// NumPy code's unpack of the flat vector and forward pass, in float64 as NumPy computes with float64 inputs:
    /// W[l] = p[o:o+out*in].reshape(out, in) layer after layer, then b[l] = p[o:o+out]; h = relu(W h + b); argmax (first maximum).
    /// </summary>
    static int[] NumPyPredict(float[] p, int[] sizes, byte[] pixels)
    {
        int layers = sizes.Length - 1, o = 0;
        var w = new float[layers][];
        var b = new float[layers][];
        for (int l = 0; l < layers; l++) { w[l] = p[o..(o + sizes[l + 1] * sizes[l])]; o += sizes[l + 1] * sizes[l]; }
        for (int l = 0; l < layers; l++) { b[l] = p[o..(o + sizes[l + 1])]; o += sizes[l + 1]; }
        Assert.That(o, Is.EqualTo(p.Length), "the layout uses every parameter");
        int n = pixels.Length / sizes[0];
        var predicted = new int[n];
        for (int i = 0; i < n; i++)
        {
            var h = new double[sizes[0]];
            for (int j = 0; j < h.Length; j++) h[j] = pixels[i * sizes[0] + j] / 255.0 - 0.5;
            for (int l = 0; l < layers; l++)
            {
                var z = new double[sizes[l + 1]];
                for (int r = 0; r < z.Length; r++)
                {
                    double s = b[l][r];
                    for (int c = 0; c < h.Length; c++) s += (double)w[l][r * sizes[l] + c] * h[c];
                    z[r] = l < layers - 1 ? Math.Max(0, s) : s;
                }
                h = z;
            }
            predicted[i] = Array.IndexOf(h, h.Max());
        }
        return predicted;
    }

    /// <summary>A copy of the fixture's model in this test's folder, to break.</summary>
    string CopyModel()
    {
        var copy = Directory.CreateDirectory(F("copy")).FullName;
        foreach (var file in new[] { "model.json", "model.npy" }) File.Copy(Path.Combine(model, file), Path.Combine(copy, file));
        return copy;
    }

    [Test]
    public void Eval_reproduces_the_test_loss_and_accuracy_training_reported_and_writes_json_and_csv()
    {
        var r = Run("eval", "--model", model, "--device", "cpu", "--output", F("eval"));
        Assert.That(r.Code, Is.Zero, r.Err);
        var metrics = ReadJson(Path.Combine(model, "model.json"))["metrics"]!;
        var e = ReadJson(F("eval/eval.json"));
        Assert.That((double)e["loss"]!, Is.EqualTo((double)metrics["test_loss"]!).Within(1e-9).Percent);
        Assert.That((double)e["accuracy"]!, Is.EqualTo((double)metrics["test_accuracy"]!));
        Assert.That((int)e["count"]!, Is.EqualTo(10_000));
        Assert.That((string)e["device"]!, Does.StartWith("cpu"));
        Assert.That((string)e["data"]!, Is.EqualTo(Repo.FashionMnist));

        var classes = e["classes"]!.AsArray();
        var confusion = e["confusion"]!.AsArray().Select(row => row!.AsArray().Select(v => (int)v!).ToArray()).ToArray();
        Assert.That(classes.Select(c => (string)c!["name"]!), Is.EqualTo(ClassNames.FashionMnist));
        Assert.That(confusion, Has.Length.EqualTo(10));
        for (int c = 0; c < 10; c++)
        {
            int count = testSet.Labels.Count(l => l == c);
            Assert.That((int)classes[c]!["count"]!, Is.EqualTo(count), $"class {c} images");
            Assert.That(confusion[c].Sum(), Is.EqualTo(count), $"row {c} sums to the class's images");
            Assert.That((int)classes[c]!["correct"]!, Is.EqualTo(confusion[c][c]));
            Assert.That((double)classes[c]!["accuracy"]!, Is.EqualTo((double)confusion[c][c] / count).Within(1e-12));
        }
        Assert.That(Enumerable.Range(0, 10).Sum(c => confusion[c][c]) / 10_000.0, Is.EqualTo((double)e["accuracy"]!).Within(1e-12));

        var csv = File.ReadAllLines(F("eval/confusion.csv"));
        Assert.That(csv, Has.Length.EqualTo(11));
        Assert.That(csv[0], Is.EqualTo("true\\predicted," + string.Join(",", ClassNames.FashionMnist)));
        Assert.That(csv[10], Is.EqualTo("Ankle boot," + string.Join(",", confusion[9])));
        Assert.That(r.Out, Does.Contain($"test loss {(double)metrics["test_loss"]!:F4}, accuracy {(double)metrics["test_accuracy"]!:F4} (10,000 images)")
            .And.Contain("training reported").And.Contain("9 Ankle boot").And.Contain("confusion matrix (rows: true class, columns: predicted class)"));
    }

    [Test]
    public void Model_npy_unpacked_the_numpy_way_gives_the_accuracy_eval_reports()
    {
        var info = ReadJson(Path.Combine(model, "model.json"));
        int[] sizes = info["layers"]!.AsArray().Select(v => (int)v!).ToArray();
        int count = (int)info["parameter_count"]!;
        Assert.That(count, Is.EqualTo(784 * 16 + 16 * 10 + 16 + 10));
        var p = LoadLikeNumPy(Path.Combine(model, "model.npy"), count);
        var predicted = NumPyPredict(p, sizes, testSet.Pixels);
        double accuracy = predicted.Where((c, i) => c == testSet.Labels[i]).Count() / (double)testSet.Count;

        var r = Run("eval", "--model", model, "--device", "cpu", "--output", dir);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(accuracy, Is.EqualTo((double)ReadJson(F("eval.json"))["accuracy"]!));
    }

    [Test]
    public void Eval_on_explicit_test_files_uses_them_instead_of_the_training_data()
    {
        var part = testSet.Take(300);
        File.WriteAllText(F("part.csv"), Csv(part, header: true));
        var r = Run("eval", "--model", model, "--test-images", F("part.csv"), "--device", "cpu", "--output", dir, "--batch-size", "64");
        Assert.That(r.Code, Is.Zero, r.Err);
        var e = ReadJson(F("eval.json"));
        Assert.That((int)e["count"]!, Is.EqualTo(300));
        var predicted = NumPyPredict(LoadLikeNumPy(Path.Combine(model, "model.npy"), 12_730), [784, 16, 10], part.Pixels);
        Assert.That((double)e["accuracy"]!, Is.EqualTo(predicted.Where((c, i) => c == part.Labels[i]).Count() / 300.0));
        Assert.That(r.Out, Does.Contain("300 test images").And.Not.Contain("training reported"));
    }

    [Test]
    public void Predict_gives_each_image_the_numpy_forward_passs_class_and_softmax_probabilities()
    {
        var r = Run("predict", "--model", model, "--input", Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz"),
            "--labels", Path.Combine(Repo.FashionMnist, "t10k-labels-idx1-ubyte.gz"), "--limit", "200", "--device", "cpu", "--output", F("p.csv"));
        Assert.That(r.Code, Is.Zero, r.Err);
        var rows = File.ReadAllLines(F("p.csv"));
        Assert.That(rows, Has.Length.EqualTo(201));
        Assert.That(rows[0], Is.EqualTo("index,predicted," + string.Join(",", Enumerable.Range(0, 10).Select(c => $"p{c}")) + ",label"));
        var part = testSet.Take(200);
        var expected = NumPyPredict(LoadLikeNumPy(Path.Combine(model, "model.npy"), 12_730), [784, 16, 10], part.Pixels);
        int correct = 0;
        for (int i = 0; i < 200; i++)
        {
            var f = rows[i + 1].Split(',');
            var probabilities = f[2..12].Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            Assert.That(f[0], Is.EqualTo(i.ToString()));
            Assert.That(int.Parse(f[1]), Is.EqualTo(expected[i]), $"image {i}");
            Assert.That(int.Parse(f[12]), Is.EqualTo(part.Labels[i]));
            Assert.That(probabilities.Sum(), Is.EqualTo(1).Within(1e-9));
            Assert.That(Array.IndexOf(probabilities, probabilities.Max()), Is.EqualTo(expected[i]));
            correct += expected[i] == part.Labels[i] ? 1 : 0;
        }
        Assert.That(r.Out, Does.Contain($"accuracy {correct / 200.0:F4} ({correct} of 200 images").And.Contain("probabilities: softmax")
            .And.Contain("classes: 0 T-shirt/top, 1 Trouser"));
        Assert.That(r.Out.Split('\n').Count(l => l.StartsWith("   199  ")), Is.EqualTo(1), "one line per image");
    }

    [Test]
    public void Predict_reads_npy_and_csv_inputs_with_or_without_labels_alike()
    {
        var part = testSet.Take(40);
        WriteNpy(F("u8.npy"), "|u1", [40, 28, 28], part.Pixels);
        WriteNpy(F("f32.npy"), "<f4", [40, 784], Floats(part.Pixels.Select(v => v / 255f)));
        WriteNpy(F("labels.npy"), "<i8", [40], Longs(part.Labels.Select(l => (long)l)));
        File.WriteAllText(F("labelled.csv"), Csv(part, header: false));
        File.WriteAllText(F("unlabelled.csv"), Csv(part, header: true, labels: false));
        var inputs = new[] { (F("u8.npy"), F("labels.npy")), (F("f32.npy"), (string?)null), (F("labelled.csv"), null), (F("unlabelled.csv"), null) };
        string[]? first = null;
        foreach (var (input, labels) in inputs)
        {
            var args = new List<string> { "predict", "--model", model, "--input", input, "--device", "cpu", "--output", F("p.csv") };
            if (labels != null) args.AddRange(["--labels", labels]);
            var r = Run(args.ToArray());
            Assert.That(r.Code, Is.Zero, input + ": " + r.Err);
            var predicted = File.ReadAllLines(F("p.csv")).Skip(1).Select(l => string.Join(",", l.Split(',')[..12])).ToArray();
            Assert.That(predicted, Has.Length.EqualTo(40));
            first ??= predicted;
            Assert.That(predicted, Is.EqualTo(first), input);
            bool labelled = input.EndsWith("u8.npy") || input.EndsWith("labelled.csv") && !input.EndsWith("unlabelled.csv");
            Assert.That(r.Out, labelled ? Does.Contain("accuracy") : Does.Contain("no labels").And.Not.Contain("accuracy"), input);
        }
    }

    [Test]
    public void Predict_top_k_lists_the_k_most_probable_classes()
    {
        var r = Run("predict", "--model", model, "--input", Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz"), "--limit", "3", "--top", "2", "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
        var lines = r.Out.Split('\n').Where(l => l.StartsWith("     0  ") || l.StartsWith("     2  ")).ToArray();
        Assert.That(lines, Has.Length.EqualTo(2));
        foreach (var line in lines)
        {
            var shown = line[8..].Trim();
            string predicted = ClassNames.FashionMnist.First(n => shown.StartsWith(n));
            var tops = shown[predicted.Length..].Trim().Split(", ");
            Assert.That(tops, Has.Length.EqualTo(2), line);
            Assert.That(tops[0], Does.StartWith(predicted + " "), "the most probable class first");
            double p0 = double.Parse(tops[0].Split(' ')[^1], CultureInfo.InvariantCulture), p1 = double.Parse(tops[1].Split(' ')[^1], CultureInfo.InvariantCulture);
            Assert.That(p0, Is.GreaterThanOrEqualTo(p1));
        }
    }

    [Test]
    public void A_sigmoid_sse_model_predicts_sigmoid_outputs_and_evaluates_to_its_reported_loss()
    {
        File.WriteAllText(F("train.csv"), Csv(testSet.Take(300), header: false));
        File.WriteAllText(F("test.csv"), Csv(testSet.Subset(Enumerable.Range(300, 200).ToArray(), "test"), header: false));
        var r = Run("train", "--train-images", F("train.csv"), "--test-images", F("test.csv"), "--epochs", "2", "--layers", "8", "--loss", "sigmoid-sse",
            "--device", "cpu", "--output", F("sig"));
        Assert.That(r.Code, Is.Zero, r.Err);
        r = Run("predict", "--model", F("sig"), "--input", Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz"), "--limit", "30",
            "--device", "cpu", "--output", F("p.csv"));
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("sigmoid outputs"));
        var rows = File.ReadAllLines(F("p.csv"));
        Assert.That(rows[0], Does.StartWith("index,predicted,sigmoid0,sigmoid1"));
        var outputs = rows.Skip(1).Select(l => l.Split(',')[2..12].Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        Assert.That(outputs.SelectMany(o => o), Is.All.InRange(0.0, 1.0));
        Assert.That(outputs.Any(o => Math.Abs(o.Sum() - 1) > 1e-3), "sigmoid outputs are not normalised");

        r = Run("eval", "--model", F("sig"), "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
        var metrics = ReadJson(F("sig/model.json"))["metrics"]!;
        Assert.That((double)ReadJson(F("sig/eval.json"))["loss"]!, Is.EqualTo((double)metrics["test_loss"]!).Within(1e-9).Percent);
    }

    [Test]
    public void Weights_draws_the_first_layer_as_a_png_in_the_model_folder_or_where_asked()
    {
        var copy = CopyModel();
        var r = Run("weights", "--model", copy);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("16 tiles of 28 x 28 in 4 columns"));
        var png = File.ReadAllBytes(Path.Combine(copy, "weights.png"));
        Assert.That(png.Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }));
        Assert.That(png, Has.Length.GreaterThan(20_000), "weights.png has content");

        r = Run("weights", "--model", copy, "--output", F("pics/w.png"), "--count", "6", "--columns", "3");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("6 tiles of 28 x 28 in 3 columns"));
        Assert.That(File.Exists(F("pics/w.png")));
    }

    [Test]
    public void The_weight_mosaic_puts_each_row_in_its_tile_scaled_to_its_own_largest_magnitude()
    {
        int width = 3, count = 5, columns = 2;
        var w = new float[count * 9];
        for (int i = 0; i < w.Length; i++) w[i] = (i % 7 - 3) * (i / 9 + 1);   // each row a different scale
        Array.Clear(w, 4 * 9, 9);                                                 // row 4 all zero
        var m = Plots.WeightMosaic(w, count, width, columns);
        Assert.That(m.GetLength(0), Is.EqualTo(3 * 4 - 1));
        Assert.That(m.GetLength(1), Is.EqualTo(2 * 4 - 1));
        for (int t = 0; t < count; t++)
        {
            double max = w.Skip(t * 9).Take(9).Max(v => Math.Abs(v));
            for (int i = 0; i < 9; i++)
                Assert.That(m[t / columns * 4 + i / 3, t % columns * 4 + i % 3], Is.EqualTo(max == 0 ? 0 : w[t * 9 + i] / max).Within(1e-12), $"tile {t} pixel {i}");
        }
        Assert.That(double.IsNaN(m[3, 0]) && double.IsNaN(m[0, 3]), "gaps between tiles");
        Assert.That(double.IsNaN(m[8, 4]), "the empty sixth tile");
    }

    [Test]
    public void Each_verb_has_help_for_every_option()
    {
        foreach (var (verb, options) in new[] { ("eval", "--model --data --test-images --test-labels --device --output --batch-size"),
            ("predict", "--model --input --labels --limit --top --output --device"), ("weights", "--model --output --columns --count") })
        {
            var r = Run(verb, "--help");
            Assert.That(r.Code, Is.Zero, verb);
            foreach (var o in options.Split(' ')) Assert.That(r.Out, Does.Contain(o), $"{verb} {o}");
        }
        Assert.That(Run("--help").Out, Does.Contain("eval").And.Contain("predict").And.Contain("weights"));
    }

    // bad input: one line each

    [Test]
    public void A_missing_model_folder_is_a_one_line_error_for_every_verb()
    {
        foreach (var verb in new[] { "eval", "predict", "weights" })
        {
            var args = new List<string> { verb, "--model", F("absent") };
            if (verb == "predict") args.AddRange(["--input", Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz")]);
            AssertOneLineError(Run(args.ToArray()), "folder not found", 2);
        }
    }

    [Test]
    public void A_corrupt_model_json_is_a_one_line_error()
    {
        var copy = CopyModel();
        File.WriteAllText(Path.Combine(copy, "model.json"), "{ \"format\": \"gpu-model\", ");
        AssertOneLineError(Run("eval", "--model", copy, "--device", "cpu"), "bad model file", 2);
        AssertOneLineError(Run("weights", "--model", copy), "not a JSON object", 2);
    }

    [Test]
    public void A_model_npy_of_the_wrong_length_is_a_one_line_error()
    {
        var copy = CopyModel();
        File.WriteAllBytes(Path.Combine(copy, "model.npy"), Gpu.Engine.Data.Npy.Encode(new float[100]));
        AssertOneLineError(Run("predict", "--model", copy, "--input", Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz"), "--device", "cpu"),
            "holds 100 values; layers 784-16-10 need 12730", 2);
    }

    [Test]
    public void Inputs_with_the_wrong_number_of_pixels_are_one_line_errors()
    {
        WriteNpy(F("small.npy"), "|u1", [5, 10, 10], new byte[500]);
        AssertOneLineError(Run("predict", "--model", model, "--input", F("small.npy"), "--device", "cpu"), "images of 100 pixels, but the model takes 784", 2);
        File.WriteAllText(F("small.csv"), "1,2,3\n4,5,6\n");
        AssertOneLineError(Run("predict", "--model", model, "--input", F("small.csv"), "--device", "cpu"), "the model takes 784 pixels per image", 2);
        File.WriteAllText(F("small_test.csv"), "1,2,3\n4,5,6\n");
        AssertOneLineError(Run("eval", "--model", model, "--test-images", F("small_test.csv"), "--device", "cpu"), "have 2 pixels", 2);
    }

    [Test]
    public void Labels_out_of_range_or_of_the_wrong_count_are_one_line_errors()
    {
        var part = testSet.Take(4);
        WriteNpy(F("x.npy"), "|u1", [4, 784], part.Pixels);
        WriteNpy(F("bad.npy"), "<i8", [4], Longs([1, 2, 12, 3]));
        WriteNpy(F("three.npy"), "<i8", [3], Longs([1, 2, 3]));
        AssertOneLineError(Run("predict", "--model", model, "--input", F("x.npy"), "--labels", F("bad.npy"), "--device", "cpu"), "label 12 at index 2 is outside 0..9", 2);
        AssertOneLineError(Run("predict", "--model", model, "--input", F("x.npy"), "--labels", F("three.npy"), "--device", "cpu"), "4 images but", 2);
        File.WriteAllText(F("bad.csv"), "10," + string.Join(",", new byte[784]) + "\n");
        AssertOneLineError(Run("predict", "--model", model, "--input", F("bad.csv"), "--device", "cpu"), "label 10", 2);
    }

    [Test]
    public void Bad_flags_are_one_line_errors()
    {
        string images = Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz");
        AssertOneLineError(Run("predict", "--model", model, "--input", images, "--top", "11"), "--top 11", 2);
        AssertOneLineError(Run("predict", "--model", model, "--input", images, "--limit", "-1"), "--limit -1", 2);
        AssertOneLineError(Run("weights", "--model", model, "--count", "17"), "the first layer has 16 units", 2);
        AssertOneLineError(Run("eval", "--model", model, "--data", Repo.FashionMnist, "--test-images", images), "not both", 2);
        AssertOneLineError(Run("eval", "--model", model, "--batch-size", "0", "--device", "cpu"), "--batch-size 0", 2);
        AssertOneLineError(Run("eval", "--device", "cpu"), "option '--model' is required", 2);
    }

    [Test]
    public void Weights_refuses_a_model_whose_inputs_are_not_a_square_image()
    {
        var copy = CopyModel();
        var json = ReadJson(Path.Combine(copy, "model.json")).AsObject();
        json["layers"] = new JsonArray(30, 4, 10);
        json["parameter_count"] = 30 * 4 + 4 * 10 + 14;
        File.WriteAllText(Path.Combine(copy, "model.json"), json.ToJsonString());
        File.WriteAllBytes(Path.Combine(copy, "model.npy"), Gpu.Engine.Data.Npy.Encode(new float[174]));
        AssertOneLineError(Run("weights", "--model", copy), "30 inputs, not a square number of pixels", 2);
    }
}
