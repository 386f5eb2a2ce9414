using Gpu.Engine.Settings;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Training;

/// <summary>YAML experiment files: train --config and search grids.</summary>
public sealed class ExperimentConfigTests : TempFolderTest
{
    string Yaml(string text)
    {
        var path = Path.Combine(dir, $"c{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, text);
        return path;
    }

    static TrainOptions Apply(string path) => ExperimentConfig.Read(path, grid: false).ApplyTo(new TrainOptions(), _ => false);

    [Test]
    public void The_example_config_exp_sets_the_users_keys()
    {
        var o = Apply(Path.Combine(Repo.Root, "src", "Gpu.Cli", "examples", "config_exp.yaml"));
        Assert.That((o.BatchSize, o.LearningRate, o.L2, o.Epochs, o.Momentum, o.Schedule, o.Seed), Is.EqualTo((64, 0.05f, 0.001f, 10, 0.9f, LrSchedule.Cosine, 1UL)));
        Assert.That(o.Hidden, Is.EqualTo(new[] { 40, 40, 40 }));
        Assert.That(o.Activation, Is.EqualTo(Activation.Relu));
    }

    [TestCase("hidden_size: 128", new[] { 128 })]
    [TestCase("hidden_sizes: [256, 128]", new[] { 256, 128 })]
    [TestCase("hidden: \"256,128\"", new[] { 256, 128 })]
    [TestCase("layers: 40,40,40", new[] { 40, 40, 40 })]
    public void Hidden_widths_in_every_form(string line, int[] widths) =>
        Assert.That(Apply(Yaml($"Model:\n  {line}\n")).Hidden, Is.EqualTo(widths));

    [Test]
    public void Other_options_under_their_flag_names_with_underscore_or_dash()
    {
        var o = Apply(Yaml("""
            train:
              optimizer: adamw
              stop-on: accuracy
              val_fraction: 0.2
              warmup-epochs: 12
              epochs: 20
              dropout: 0.1
              shift: 2
              data_path: stream
              lr: 0.01
              l2: 0.0005
            Model:
              activation: tanh
              init: glorot
              bias_init: 0
              loss: sigmoid-sse
            """));
        Assert.That((o.Optimizer, o.StopOn, o.ValFraction, o.WarmupEpochs, o.Epochs, o.Dropout, o.Shift, o.DataPath, o.LearningRate, o.L2),
            Is.EqualTo((OptimizerKind.AdamW, EarlyStopMetric.Accuracy, 0.2, 12.0, 20, 0.1f, 2, DataPath.Stream, 0.01f, 0.0005f)));
        Assert.That((o.Activation, o.Init, o.BiasInit, o.Loss), Is.EqualTo((Activation.Tanh, InitKind.Glorot, 0f, LossKind.SigmoidSquaredError)));
    }

    [Test]
    public void Flags_given_on_the_command_line_are_not_overridden()
    {
        var config = ExperimentConfig.Read(Yaml("Train:\n  learning_rate: 0.2\n  momentum: 0.5\n"), grid: false);
        var o = config.ApplyTo(new TrainOptions(), flag => flag == "--momentum");
        Assert.That((o.LearningRate, o.Momentum), Is.EqualTo((0.2f, 0.9f)));
    }

    [Test]
    public void Train_config_with_a_flag_equal_to_its_default()
    {
        var path = Yaml("Train:\n  learning_rate: 0.02\n  momentum: 0.5\n  epochs: 1\nModel:\n  hidden_size: 8\n");
        var r = Run("train", "--config", path, "--momentum", "0.9", "--data", Repo.FashionMnist, "--limit", "300", "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("network: 784-8-10").And.Contain("lr 0.02, sgd momentum 0.9,").And.Contain("epoch   1/1"));
    }

    static IEnumerable<TestCaseData> BadFiles()
    {
        yield return new TestCaseData("Train:\n  learning_rate: fast\n", "line 2: Train.learning_rate: 'fast' is not valid; give a positive number").SetName("Config_wrong_type");
        yield return new TestCaseData("Train:\n  lerning_rate: 0.1\n", "line 2: Train.lerning_rate: unknown key; Train accepts learning_rate, lr, batch_size").SetName("Config_unknown_key");
        yield return new TestCaseData("Training:\n  epochs: 3\n", "line 1: unknown section 'Training'; use Train:").SetName("Config_unknown_section");
        yield return new TestCaseData("Train:\n  epochs: [3\n", "not valid YAML").SetName("Config_unreadable_yaml");
        yield return new TestCaseData("Train:\n  momentum: 1.5\n", "line 2: Train.momentum: --momentum 1.5: give a number in [0, 1)").SetName("Config_out_of_range");
        yield return new TestCaseData("Model:\n  epochs: 3\n", "Model.epochs: epochs belongs under Train:").SetName("Config_wrong_section");
        yield return new TestCaseData("Train:\n  lr: 0.1\n  learning_rate: 0.2\n", "line 3: Train.learning_rate: given twice").SetName("Config_key_twice");
        yield return new TestCaseData("Train:\n  learning_rate: [0.1, 0.2]\n", "a list is a grid of choices, which 'gpu search --config' takes").SetName("Config_list_for_train");
        yield return new TestCaseData("Train:\n  epochs:\n", "Train.epochs: no value; give a whole number >= 1").SetName("Config_no_value");
        yield return new TestCaseData("- 1\n- 2\n", "expected one YAML mapping with Train: and Model: sections").SetName("Config_not_a_mapping");
        yield return new TestCaseData("Train:\n  optimizer: rmsprop\n", "Train.optimizer: 'rmsprop' is not valid; give sgd, nesterov, adam or adamw").SetName("Config_unknown_word");
    }

    [TestCaseSource(nameof(BadFiles))]
    public void Bad_files_are_one_line_errors_naming_file_and_key(string yaml, string message)
    {
        var path = Yaml(yaml);
        var r = Run("train", "--config", path, "--device", "cpu");
        AssertOneLineError(r, message, 2);
        Assert.That(r.Err, Does.Contain(path), "names the file");
    }

    [Test] public void Missing_file() => AssertOneLineError(Run("train", "--config", Path.Combine(dir, "none.yaml")), "none.yaml: cannot read it", 2);
}
