using System.Text.Json.Nodes;
using Gpu.Engine.Settings;
using Gpu.Engine;

namespace Gpu.Tests.Settings;

/// <summary>The setting table (Hyperparameter.All) and the word table (Words): one row per setting, words that round-trip, old files still read.</summary>
public sealed class SettingTableTests
{
    static IEnumerable<Hyperparameter> Rows() => Hyperparameter.All;

    [Test]
    public void Every_TrainOptions_property_has_one_row_and_names_are_unique()
    {
        var settable = typeof(TrainOptions).GetProperties().Where(p => p.CanWrite).Select(p => p.Name).ToHashSet();
        Assert.That(Hyperparameter.All, Has.Count.EqualTo(settable.Count), "one row per settable property of TrainOptions");
        // each row reads and writes its own property: changing it in isolation changes exactly one JSON key
        var defaults = Hyperparameter.OptionsToJson(new TrainOptions());
        Assert.That(Hyperparameter.All.Select(h => h.Flag), Is.Unique);
        Assert.That(Hyperparameter.All.Select(h => h.JsonKey), Is.Unique);
        Assert.That(Hyperparameter.All.SelectMany(h => h.Names), Is.Unique, "an experiment-file name means one setting");
        Assert.That(defaults.Select(kv => kv.Key), Is.EqualTo(Hyperparameter.All.Select(h => h.JsonKey)));
    }

    static object Other(Hyperparameter h) => h.Default switch
    {
        int[] => new[] { 7, 5 },
        int i => i + 1,
        float f => f == 0 ? 0.25f : f / 2,
        double d => d / 2 + 0.01,
        ulong u => u + 41,
        Enum e => Words.Of(e.GetType()).First(w => w.Choosable && !w.Value.Equals(e)).Value,
        var v => throw new InvalidOperationException($"no other value for {v.GetType()}"),
    };

    [TestCaseSource(nameof(Rows))]
    public void Get_and_apply_address_one_setting(object row)   // Hyperparameter is internal: NUnit passes the row as an object
    {
        var h = (Hyperparameter)row;
        var changed = h.Apply(new TrainOptions(), Other(h));
        var before = Hyperparameter.OptionsToJson(new TrainOptions());
        var after = Hyperparameter.OptionsToJson(changed);
        var differing = before.Where(kv => kv.Value!.ToJsonString() != after[kv.Key]!.ToJsonString()).Select(kv => kv.Key);
        Assert.That(differing, Is.EqualTo(new[] { h.JsonKey }));
        Assert.That(h.Get(changed), Is.EqualTo(Other(h)));
    }

    [TestCaseSource(nameof(Rows))]
    public void Default_and_other_values_round_trip_through_the_flag_text_and_json(object row)   // Hyperparameter is internal: NUnit passes the row as an object
    {
        var h = (Hyperparameter)row;
        foreach (var value in new[] { h.Default, Other(h) })
        {
            Assert.That(h.Parse(h.Name(value), where: null), Is.EqualTo(value), $"parse(name({h.Name(value)}))");
            Assert.That(h.FromJson(JsonNode.Parse(h.ToJson(value).ToJsonString())!), Is.EqualTo(value), $"json {h.ToJson(value).ToJsonString()}");
        }
        Assert.That(h.InRange(h.Default), "the default is in range");
    }

    [Test]
    public void Floats_round_trip_bit_for_bit()
    {
        var lr = Hyperparameter.ByFlag("lr");
        foreach (var v in new[] { 0.05f, 1e-4f, 0.999f, 1f / 3, 3.4e38f, 1.17549435e-38f })
        {
            Assert.That(BitConverter.SingleToInt32Bits((float)lr.Parse(lr.Name(v), null)), Is.EqualTo(BitConverter.SingleToInt32Bits(v)), lr.Name(v));
            Assert.That(BitConverter.SingleToInt32Bits((float)lr.FromJson(JsonNode.Parse(lr.ToJson(v).ToJsonString())!)), Is.EqualTo(BitConverter.SingleToInt32Bits(v)));
        }
    }

    [Test]
    public void Every_enum_value_has_one_word_and_every_word_parses_back()
    {
        foreach (var type in Words.Enums)
        {
            var words = Words.Of(type);
            Assert.That(words.Select(w => w.Value), Is.EquivalentTo(Enum.GetValues(type)), $"{type.Name}: a word for every value");
            Assert.That(words.SelectMany(w => w.Spellings), Is.Unique, $"{type.Name}: no spelling means two values");
            foreach (var w in words)
            {
                Assert.That(w.Text, Does.Match("^[a-z][a-z0-9-]*$"), "words are lowercase");
                Assert.That(w.Spellings.All(s => s == s.ToLowerInvariant()));
            }
        }
        foreach (var a in Enum.GetValues<Activation>().Where(a => a != Activation.Identity))
            Assert.That(Words.Parse<Activation>(Words.Name(a)), Is.EqualTo(a));
        Assert.That(() => Words.Parse<Activation>("identity"), Throws.TypeOf<FormatException>(), "identity is named, not chosen");
        Assert.That(Words.Parse<LossKind>(" CE "), Is.EqualTo(LossKind.SoftmaxCrossEntropy), "today's aliases, any case");
        Assert.That(Words.Parse<InitKind>("xavier"), Is.EqualTo(InitKind.Glorot));
        Assert.That(() => Words.Parse<LossKind>("SoftmaxCrossEntropy"), Throws.TypeOf<FormatException>(), "flags take words, not enum names");
    }

    [Test]
    public void Choice_settings_accept_exactly_their_words()
    {
        var loss = Hyperparameter.ByFlag("loss");
        Assert.That(loss.Accepts, Is.EqualTo("softmax-ce or sigmoid-sse"));
        Assert.That(Hyperparameter.ByFlag("activation").Accepts, Is.EqualTo("relu, sigmoid, tanh or leaky-relu"));
        Assert.That(Hyperparameter.ByFlag("schedule").Help, Does.Contain("cosine (from --lr down to 0 over the run)"));
        Assert.That(() => loss.Parse("hinge", "f.yaml line 3: Model.loss"),
            Throws.TypeOf<UserError>().With.Message.EqualTo("f.yaml line 3: Model.loss: 'hinge' is not valid; give softmax-ce or sigmoid-sse"));
    }

    [Test]
    public void Options_json_holds_words_and_reads_back_equal()
    {
        var o = new TrainOptions
        {
            Hidden = [64, 32], Loss = LossKind.SigmoidSquaredError, Init = InitKind.Glorot, Activation = Activation.LeakyRelu,
            Optimizer = OptimizerKind.AdamW, Schedule = LrSchedule.Step, StopOn = EarlyStopMetric.Accuracy, DataPath = DataPath.Stream,
            LearningRate = 0.0123f, Seed = 99, WarmupEpochs = 1.5, Patience = 2,
        };
        var json = Hyperparameter.OptionsToJson(o);
        Assert.That((string?)json["loss"], Is.EqualTo("sigmoid-sse"));
        Assert.That((string?)json["init"], Is.EqualTo("glorot"));
        Assert.That((string?)json["activation"], Is.EqualTo("leaky-relu"));
        Assert.That((string?)json["optimizer"], Is.EqualTo("adamw"));
        Assert.That((string?)json["schedule"], Is.EqualTo("step"));
        Assert.That((string?)json["stop_on"], Is.EqualTo("accuracy"));
        Assert.That((string?)json["data_path"], Is.EqualTo("stream"));
        var back = Hyperparameter.OptionsFromJson(JsonNode.Parse(json.ToJsonString())!);
        Assert.That(Hyperparameter.OptionsToJson(back).ToJsonString(), Is.EqualTo(json.ToJsonString()));
        Assert.That(back.Hidden, Is.EqualTo(o.Hidden));
    }

    [Test]
    public void Json_written_by_earlier_versions_with_enum_names_still_reads()
    {
        // what 0.1 wrote: member names for loss, init, data_path and stop_on, and no settings added later
        var old = JsonNode.Parse("""
            { "hidden": [256, 128], "epochs": 10, "batch_size": 128, "learning_rate": 0.05, "momentum": 0.9, "l2": 0.0001,
              "schedule": "cosine", "seed": 1, "val_fraction": 0.1, "eval_batch_size": 1000, "activation": "relu",
              "loss": "SigmoidSquaredError", "optimizer": "adamw", "init": "Glorot", "data_path": "Resident", "stop_on": "Accuracy" }
            """)!;
        var o = Hyperparameter.OptionsFromJson(old);
        Assert.That((o.Loss, o.Init, o.DataPath, o.StopOn, o.Optimizer), Is.EqualTo((LossKind.SigmoidSquaredError, InitKind.Glorot, DataPath.Resident, EarlyStopMetric.Accuracy, OptimizerKind.AdamW)));
        Assert.That((o.Beta2, o.BiasInit, o.Dropout), Is.EqualTo((new TrainOptions().Beta2, new TrainOptions().BiasInit, 0f)), "settings added later take the defaults");
        var again = Hyperparameter.OptionsToJson(o);
        Assert.That((string?)again["loss"], Is.EqualTo("sigmoid-sse"), "rewritten with words");
        Assert.That(again.ToJsonString(), Does.Not.Contain("Glorot").And.Not.Contain("Resident").And.Not.Contain("Accuracy"));

        old.AsObject().Remove("epochs");
        Assert.That(() => Hyperparameter.OptionsFromJson(old), Throws.TypeOf<FormatException>().With.Message.Contains("epochs"), "a version-1 setting is required");
        old["epochs"] = "many";
        Assert.That(() => Hyperparameter.OptionsFromJson(old), Throws.TypeOf<FormatException>().With.Message.Contains("\"epochs\""));
    }

    [Test]
    public void Validate_states_each_rule_once_through_the_table()
    {
        Assert.That(() => new TrainOptions { Beta2 = 1f }.Validate(), Throws.TypeOf<UserError>().With.Message.EqualTo("--beta2 1: give a number in [0, 1), e.g. 0.999"));
        Assert.That(() => new TrainOptions { Hidden = [8, 0] }.Validate(), Throws.TypeOf<UserError>().With.Message.StartsWith("--layers 8,0: give hidden widths"));
        Assert.That(() => new TrainOptions { WarmupEpochs = 3, Epochs = 3 }.Validate(), Throws.TypeOf<UserError>().With.Message.Contains("below --epochs (3)"));
        Assert.That(() => new TrainOptions { Patience = 1, ValFraction = 0 }.Validate(), Throws.TypeOf<UserError>().With.Message.Contains("--patience needs a validation split"));
        foreach (var h in Hyperparameter.All)
            Assert.That(() => h.Check(h.Default), Throws.Nothing, h.Flag);
        new TrainOptions().Validate();
    }

    [Test]
    public void Widths_in_the_form_search_csv_writes_are_accepted()
    {
        var layers = Hyperparameter.ByFlag("layers");
        Assert.That(layers.Parse("64-32", null), Is.EqualTo(new[] { 64, 32 }));
        Assert.That(layers.Parse(Hyperparameter.Format(new[] { 256, 128 }), null), Is.EqualTo(new[] { 256, 128 }));
        Assert.That(() => layers.Parse("-5", null), Throws.TypeOf<UserError>().With.Message.Contains("not a width"));
    }
}
