using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using CommandLine;
using Gpu.Cli;
using Gpu.Engine.Data;
using Gpu.Engine.Runs;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Cli;

/// <summary>
/// Never lose a run (issue 15): no silent defaults, one writer per folder, exploding losses caught, runs
/// that move with their data, history and checkpoint advancing together, a damaged checkpoint falling back
/// to the older one, every user error one line with exit code 2, and a CLI that explains itself.
/// </summary>
public sealed class RunSafetyTests : TempFolderTest
{
    static void Error((int Code, string Out, string Err) r, string contains, int code = 2) => AssertOneLineError(r, contains, code);

    string Data(string name = "d", int seed = 5, int train = 300) => SyntheticData.Folder(Path.Combine(dir, name), train: train, seed: seed);

    /// <summary>train on <paramref name="data"/> on the CPU with small defaults; flags in <paramref name="more"/> replace them.</summary>
    static string[] Train(string data, params string[] more)
    {
        var args = new List<string> { "train", "--data", data, "--device", "cpu" };
        foreach (var (flag, value) in new[] { ("--layers", "16"), ("--batch-size", "32"), ("--epochs", "2") })
            if (!more.Contains(flag)) args.AddRange([flag, value]);
        return [.. args, .. more];
    }

    static byte[] Bytes(string path) => File.ReadAllBytes(path);
    static JsonNode Json(string path) => JsonNode.Parse(File.ReadAllText(path))!;
    static readonly CancellationToken Stopped = new(canceled: true);   // as if Ctrl-C came before the first step ended

    // ---- 1. a flag without its value is an error naming it ----

    /// <summary>Every option of every verb that takes a value: the setting flags and CommandLineParser's own.</summary>
    static IEnumerable<TestCaseData> ValueOptions()
    {
        foreach (var verb in typeof(Program).Assembly.GetTypes().Where(t => t.GetCustomAttribute<VerbAttribute>() != null))
        {
            string name = VerbHelp.Name(verb);
            foreach (var f in SettingFlags.Of(verb)) yield return new TestCaseData(name, f.Name).SetArgDisplayNames(name, f.Name);
            foreach (var (_, f, _) in VerbHelp.Options(verb).Where(o => !o.Flag.IsSwitch))
                yield return new TestCaseData(name, f.Dashed).SetArgDisplayNames(name, f.Dashed);
        }
    }

    [TestCaseSource(nameof(ValueOptions))]
    public void Every_option_that_takes_a_value_is_an_error_without_one(string verb, string option)
    {
        Error(Run(verb, option), $"{option} needs a value");                // last on the line
        Error(Run(verb, option, "--version"), $"{option} needs a value");   // followed by another flag
        Error(Run(verb, option + "="), $"{option} needs a value");          // --name= with nothing after it
    }

    [TestCase("train --device cpu --epochs", "--epochs needs a value")]
    [TestCase("train --device cpu --output", "--output needs a value")]
    [TestCase("train --output X --resume", "--resume needs a value")]
    [TestCase("train --lr --epochs 1", "--lr needs a value")]
    public void The_lines_of_the_issue_name_the_option_without_a_value(string line, string message) => Error(Run(line.Split(' ')), message);

    // ---- 2. a fresh train never replaces an earlier run without --overwrite ----

    [Test]
    public void A_fresh_train_into_a_folder_holding_a_run_is_refused_unless_overwrite()
    {
        var data = Data();
        var output = Path.Combine(dir, "out");
        Assert.That(Run(Train(data, "--output", output), Stopped).Code, Is.EqualTo(130));
        var checkpoint = Bytes(Path.Combine(output, "checkpoint", "state.json"));
        Error(Run(Train(data, "--output", output)),
            $"{output} holds an unfinished run (stopped in epoch 1 of 2, step 1); resume it with: gpu train --resume {output}, or pass --overwrite");
        Assert.That(Bytes(Path.Combine(output, "checkpoint", "state.json")), Is.EqualTo(checkpoint), "the checkpoint is untouched");

        Assert.That(Run("train", "--resume", output).Code, Is.Zero);
        var model = Bytes(Path.Combine(output, "model.npy"));
        Error(Run(Train(data, "--output", output, "--seed", "2")), $"{output} holds a finished run (2 epochs, model.npy and model.json); choose another --output folder");
        Error(Run(Train(Path.Combine(dir, "no-such-data"), "--output", output, "--seed", "2", "--overwrite")), "not found");
        Assert.That(Bytes(Path.Combine(output, "model.npy")), Is.EqualTo(model), "a refused or failed start loses nothing");

        var r = Run(Train(data, "--output", output, "--seed", "2", "--overwrite"));
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain($"--overwrite: moved a finished run (2 epochs, model.npy and model.json) aside in {output}"));
        Assert.That(Bytes(Path.Combine(output, "model.npy")), Is.Not.EqualTo(model), "replaced by the new run");
        Error(Run("train", "--resume", output, "--overwrite"), "--overwrite starts a run afresh; it cannot be combined with --resume");

        // a search into the training run's folder is refused too, before it writes anything there
        var before = Directory.GetFileSystemEntries(output).Order().ToArray();
        Error(Run("search", "--data", data, "--device", "cpu", "--limit", "100", "--layers", "8", "--epochs", "1", "--output", output),
            $"{output} holds a finished run (2 epochs, model.npy and model.json), not a grid search; choose another --output folder for the search");
        Assert.That(Directory.GetFileSystemEntries(output).Order().ToArray(), Is.EqualTo(before), "nothing written or removed");
    }

    // ---- 2b. --overwrite never loses both runs (issue 22, item 3) ----

    /// <summary>A finished 2-epoch run in DIR/out, with an export beside it; returns the folder and its model.npy bytes.</summary>
    (string Output, byte[] Model) FinishedRun(string data)
    {
        var output = Path.Combine(dir, "out");
        Assert.That(Run(Train(data, "--output", output)).Code, Is.Zero);
        Assert.That(Run("export", "--model", output, "--format", "safetensors").Code, Is.Zero);
        Assert.That(File.Exists(Path.Combine(output, "model.safetensors")));
        return (output, Bytes(Path.Combine(output, "model.npy")));
    }

    [Test]
    public void An_overwrite_whose_new_run_diverges_leaves_the_old_run_intact()
    {
        // reported: "gpu train --output D --overwrite --lr 50 diverged in epoch 1 and left only .gpu.lock"
        var data = Data();
        var (output, model) = FinishedRun(data);
        var r = Run(Train(data, "--output", output, "--overwrite", "--lr", "50"));
        Assert.That(r.Code, Is.EqualTo(3), r.Out + r.Err);
        Assert.That(r.Err, Does.Contain("diverged").And.Contain($"the earlier run in {output} is restored"));
        Assert.That(Bytes(Path.Combine(output, "model.npy")), Is.EqualTo(model));
        Assert.That(File.Exists(Path.Combine(output, "model.safetensors")), "the export is back too");
        Assert.That(Directory.Exists(Path.Combine(output, RunFolder.AsideName)), Is.False);
        var resumed = Run("train", "--resume", output, "--epochs", "3");
        Assert.That(resumed.Code, Is.Zero, resumed.Err);
    }

    [Test]
    public void An_overwrite_whose_new_run_succeeds_leaves_no_file_of_the_old_run()
    {
        // reported: the old run's model.onnx / model.safetensors stayed beside the new model
        var data = Data();
        var (output, model) = FinishedRun(data);
        File.WriteAllText(Path.Combine(output, "notes.txt"), "mine");
        var r = Run(Train(data, "--output", output, "--overwrite", "--seed", "2", "--epochs", "1"));
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(Bytes(Path.Combine(output, "model.npy")), Is.Not.EqualTo(model));
        Assert.That(File.Exists(Path.Combine(output, "model.safetensors")), Is.False, "the old export went with the old run");
        Assert.That(Directory.Exists(Path.Combine(output, RunFolder.AsideName)), Is.False);
        Assert.That(File.ReadAllText(Path.Combine(output, "notes.txt")), Is.EqualTo("mine"), "files no run wrote stay");
    }

    [Test]
    public void An_overwrite_interrupted_before_its_first_epoch_restores_the_old_run()
    {
        var data = Data();
        var (output, model) = FinishedRun(data);
        var state = Bytes(Path.Combine(output, "checkpoint", "state.json"));
        var r = Run(Train(data, "--output", output, "--overwrite", "--seed", "2"), Stopped);
        Assert.That(r.Code, Is.EqualTo(130), r.Out + r.Err);
        Assert.That(r.Err, Does.Contain("restored"));
        Assert.That(Bytes(Path.Combine(output, "model.npy")), Is.EqualTo(model));
        Assert.That(Bytes(Path.Combine(output, "checkpoint", "state.json")), Is.EqualTo(state), "the old checkpoint, not the new run's interrupt checkpoint");
        Assert.That(File.Exists(Path.Combine(output, "model.safetensors")));
        Assert.That(Directory.Exists(Path.Combine(output, RunFolder.AsideName)), Is.False);
    }

    [Test]
    public void An_old_run_left_aside_by_a_killed_overwrite_is_restored_by_the_next_command()
    {
        // as if SIGKILL came after the old run was moved aside and before the new run's first checkpoint
        var data = Data();
        var (output, model) = FinishedRun(data);
        var aside = Directory.CreateDirectory(Path.Combine(output, RunFolder.AsideName)).FullName;
        foreach (var e in Directory.EnumerateFileSystemEntries(output).Where(e => !e.EndsWith(RunFolder.LockName) && !e.EndsWith(RunFolder.AsideName)).ToList())
            Directory.Move(e, Path.Combine(aside, Path.GetFileName(e)));
        var r = Run(Train(data, "--output", output));
        Error(r, $"{output} holds a finished run (2 epochs, model.npy and model.json)");
        Assert.That(r.Out, Does.Contain("restored the earlier run that an interrupted --overwrite had moved to"));
        Assert.That(Bytes(Path.Combine(output, "model.npy")), Is.EqualTo(model));
        Assert.That(Directory.Exists(aside), Is.False);

        // a resume of the folder restores it too, and goes on from the restored checkpoint
        foreach (var e in Directory.EnumerateFileSystemEntries(output).Where(e => !e.EndsWith(RunFolder.LockName) && !e.EndsWith(RunFolder.AsideName)).ToList())
            Directory.Move(e, Path.Combine(Directory.CreateDirectory(aside).FullName, Path.GetFileName(e)));
        var resumed = Run("train", "--resume", output, "--epochs", "3");
        Assert.That(resumed.Code, Is.Zero, resumed.Err);
        Assert.That(resumed.Out, Does.Contain("restored the earlier run that an interrupted --overwrite had moved to"));
    }

    [Test]
    public void A_search_overwrite_interrupted_before_its_first_trial_restores_the_old_search_and_a_finished_one_replaces_it()
    {
        var data = Data();
        var output = Path.Combine(dir, "search");
        string[] Search(string lr, params string[] more) =>
            ["search", "--data", data, "--device", "cpu", "--layers", "8", "--epochs", "1", "--batch-size", "32", "--lr", lr, "--output", output, .. more];
        Assert.That(Run(Search("0.01,0.1")).Code, Is.Zero);
        var csv = Bytes(Path.Combine(output, "search.csv"));
        var bestModel = Bytes(Path.Combine(output, "best", "model.npy"));

        // interrupted before its first trial row: the earlier search.csv, best.json and best/ come back
        var stopped = Run(Search("0.05", "--overwrite"), Stopped);
        Assert.That(stopped.Code, Is.EqualTo(130), stopped.Out + stopped.Err);
        Assert.That(stopped.Err, Does.Contain("the earlier search in").And.Contain("is restored"));
        Assert.That(Bytes(Path.Combine(output, "search.csv")), Is.EqualTo(csv));
        Assert.That(Bytes(Path.Combine(output, "best", "model.npy")), Is.EqualTo(bestModel));
        Assert.That(Directory.Exists(Path.Combine(output, RunFolder.AsideName)), Is.False);

        // reported: an overwritten search folder kept search.csv and best/ and could no longer continue
        var fresh = Run(Search("0.05", "--overwrite"));
        Assert.That(fresh.Code, Is.Zero, fresh.Err);
        var rows = File.ReadAllLines(Path.Combine(output, "search.csv"));
        Assert.That(rows, Has.Length.EqualTo(2), "a header and the new search's one trial, none of the old");
        Assert.That(Bytes(Path.Combine(output, "best", "model.npy")), Is.Not.EqualTo(bestModel));
        Assert.That(Directory.Exists(Path.Combine(output, RunFolder.AsideName)), Is.False);
        var again = Run(Search("0.05"));   // and it continues like any search
        Assert.That(again.Code, Is.Zero, again.Err);
        Assert.That(again.Out, Does.Contain("holds 1 of the 1 trials already"));
    }

    [Test]
    public void The_refusal_of_a_train_into_a_search_folder_suggests_a_command_that_works()
    {
        // reported: the refusal suggested --resume DIR --epochs N, which then fails (a search has no checkpoint)
        var data = Data();
        var output = Path.Combine(dir, "search");
        Assert.That(Run("search", "--data", data, "--device", "cpu", "--layers", "8", "--epochs", "1", "--lr", "0.01", "--output", output).Code, Is.Zero);
        var r = Run(Train(data, "--output", output));
        Error(r, $"{output} holds a grid search (search.csv); choose another --output folder, or pass --overwrite to replace it");
        Assert.That(r.Err, Does.Not.Contain("--resume"));
        var replaced = Run(Train(data, "--output", output, "--overwrite"));
        Assert.That(replaced.Code, Is.Zero, replaced.Err);
        Assert.That(File.Exists(Path.Combine(output, "search.csv")), Is.False);
        Assert.That(Directory.Exists(Path.Combine(output, "best")), Is.False);
    }

    // ---- 2c. a way on after divergence (issue 22, item 4) ----

    /// <summary>A run that trains its first epoch and diverges in its second on mnist-10k (tanh, warmup to --lr 5).</summary>
    static string[] DivergesInEpochTwo(string output) =>
        ["train", "--data", Path.Combine(Repo.Root, "data", "mnist-10k"), "--limit", "500", "--device", "cpu", "--layers", "16", "--batch-size", "32",
         "--epochs", "4", "--activation", "tanh", "--warmup-epochs", "2", "--lr", "5", "--schedule", "constant", "--output", output];

    [Test]
    public void After_a_divergence_the_printed_command_trains_on_from_the_kept_checkpoint_with_the_lower_rate()
    {
        // reported: "Lower --lr; the last good checkpoint is kept", but --resume refused --lr and nothing said how to go on
        var output = Path.Combine(dir, "out");
        var r = Run(DivergesInEpochTwo(output));
        string advice = $"the last good checkpoint (end of epoch 1) is kept; continue from the checkpoint in {output} with a lower rate: gpu train --resume {output} --lr ";
        AssertOneLineError(r, advice, 3);
        Assert.That(File.Exists(Path.Combine(output, "checkpoint", Checkpoint.DivergedName)));
        string command = r.Err.Trim()[(r.Err.IndexOf(advice) + advice.Length - $"gpu train --resume {output} --lr ".Length)..];
        var args = command.Split(' ')[1..];   // without "gpu"
        var resumed = Run(args);
        Assert.That(resumed.Code, Is.Zero, resumed.Out + resumed.Err);
        string lr = args[^1];
        Assert.That(resumed.Out, Does.Contain($"setting change: epoch 1: lr 5 -> {lr} after divergence (in epoch 2"));
        var state = Json(Path.Combine(output, "checkpoint", "state.json"));
        Assert.That((double)state["position"]!["epochs_done"]!, Is.EqualTo(4));
        Assert.That((double)state["hyperparameters"]!["learning_rate"]!, Is.EqualTo(double.Parse(lr)).Within(1e-6));
        Assert.That((string)state["setting_changes"]![0]!, Does.StartWith($"epoch 1: lr 5 -> {lr} after divergence"));
        Assert.That(File.Exists(Path.Combine(output, "checkpoint", Checkpoint.DivergedName)), Is.False, "the new checkpoints did not diverge");

        // the record is only for the checkpoint the divergence kept: a later resume keeps its settings
        Error(Run("train", "--resume", output, "--epochs", "5", "--lr", "0.01"), "--lr cannot be changed when resuming");
    }

    [Test]
    public void A_resume_of_a_run_that_did_not_diverge_refuses_lr_and_the_suggested_init_from_works()
    {
        var data = Data();
        var output = Path.Combine(dir, "out");
        Assert.That(Run(Train(data, "--output", output, "--epochs", "1")).Code, Is.Zero);
        var r = Run("train", "--resume", output, "--epochs", "2", "--lr", "0.01");
        string weights = Path.Combine(output, "checkpoint", "model.npy");
        Error(r, $"--lr cannot be changed when resuming {output}: its run did not diverge, and a resume continues it exactly as it was set up; " +
            $"to train on from its weights with other settings, start a new run from them: gpu train --init-from {weights} --output NEW_FOLDER --lr VALUE");
        Error(Run("train", "--resume", output, "--epochs", "2", "--momentum", "0.5"), "--momentum cannot be changed when resuming");
        var fromWeights = Run(Train(data, "--init-from", weights, "--output", Path.Combine(dir, "new"), "--lr", "0.01"));
        Assert.That(fromWeights.Code, Is.Zero, fromWeights.Err);
    }

    // ---- 3. one writer per folder ----

    [Test]
    public void A_folder_held_by_another_run_is_refused_naming_the_holder()
    {
        var data = Data();
        var output = Path.Combine(dir, "out");
        using (RunFolder.Take(output, "gpu test"))
        {
            string holder = $"{output} is in use by another process (pid {Environment.ProcessId}: gpu test, since ";
            Error(Run(Train(data, "--output", output)), holder);
            Error(Run("search", "--data", data, "--device", "cpu", "--limit", "100", "--output", output), holder);
            Error(Run("landscape", "--data", data, "--device", "cpu", "--epochs", "1", "--output", output), holder);
        }
        Assert.That(Run(Train(data, "--output", output, "--epochs", "1")).Code, Is.Zero, "the lock went with its holder");
    }

    [Test]
    public void A_killed_run_leaves_no_lock_and_a_second_writer_is_refused_while_it_runs()
    {
        var data = Data(train: 600);
        var output = Path.Combine(dir, "out");
        var psi = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "gpu")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in Train(data, "--layers", "32", "--batch-size", "16", "--epochs", "200", "--output", output)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        try
        {
            string? line;
            while ((line = p.StandardOutput.ReadLine()) != null && !line.StartsWith("epoch   2/")) { }
            Assert.That(line, Is.Not.Null, "the run trains");
            Error(Run(Train(data, "--output", output, "--overwrite")), $"{output} is in use by another process (pid {p.Id}: gpu train, since");
            Error(Run("train", "--resume", output, "--epochs", "300"), $"(pid {p.Id}: gpu train");
        }
        finally { p.Kill(); }   // SIGKILL: no handler runs
        Assert.That(p.WaitForExit(60_000), Is.True);

        // SIGKILL may land inside a checkpoint write: the complete one is checkpoint/ or, between its two renames, checkpoint.old/
        var state = new[] { "checkpoint", "checkpoint.old" }.Select(c => Path.Combine(output, c, "state.json")).First(File.Exists);
        int done = (int)Json(state)["position"]!["epochs_done"]!;
        var r = Run("train", "--resume", output, "--epochs", (done + 1).ToString());
        Assert.That(r.Code, Is.Zero, "no stale lock after SIGKILL: " + r.Err);
        Assert.That(Directory.Exists(Path.Combine(output, "checkpoint.new")), Is.False);
    }

    // ---- 4. an exploding loss is divergence ----

    [Test]
    public void A_loss_that_explodes_without_becoming_nan_is_divergence_and_nothing_is_saved()
    {
        // lr 30 on these images: the training loss reaches about 1e7 in epoch 1 and 2e11 in epoch 2, never NaN
        var output = Path.Combine(dir, "out");
        var r = Run(Train(Repo.FashionMnist, "--limit", "300", "--lr", "30", "--schedule", "constant", "--output", output));
        Error(r, "training diverged in epoch 1: the mean training loss reached", code: 3);
        Assert.That(r.Err, Does.Contain("more than 10 times that of a uniform guess, 2.303; lower --lr (now 30), e.g. --lr 0.1"));
        Assert.That(File.Exists(Path.Combine(output, "model.npy")), Is.False, "no model of a diverged run");
        Assert.That(Directory.Exists(Path.Combine(output, "checkpoint")), Is.False, "no checkpoint of a diverged state");
    }

    [Test]
    public void The_suggested_rate_comes_from_the_history_and_the_optimizer()
    {
        var sgd = new TrainOptions();   // momentum 0.9
        Assert.That(Trainer.SuggestedRate(sgd with { LearningRate = 1e4f }, saneEpochs: 0), Is.EqualTo(0.1), "never a rate still far too high");
        Assert.That(Trainer.SuggestedRate(sgd with { LearningRate = 0.3f }, saneEpochs: 0), Is.EqualTo(0.03).Within(1e-9), "a tenth when it exploded at once");
        Assert.That(Trainer.SuggestedRate(sgd with { LearningRate = 0.15f }, saneEpochs: 3), Is.EqualTo(0.05).Within(1e-9), "a third after sane epochs");
        Assert.That(Trainer.SuggestedRate(sgd with { LearningRate = 3f, Momentum = 0 }, saneEpochs: 0), Is.EqualTo(0.3).Within(1e-9));
        Assert.That(Trainer.SuggestedRate(sgd with { LearningRate = 1f, Optimizer = OptimizerKind.Adam }, saneEpochs: 0), Is.EqualTo(0.003).Within(1e-12));
        Assert.That(Trainer.DivergenceLimit(sgd, 10, []), Is.EqualTo(10 * Math.Log(10)).Within(1e-12), "ten times a uniform guess");
        var first = new EpochStats(1, 3.5, 0.2, null, null, 1, 1, 0);
        Assert.That(Trainer.DivergenceLimit(sgd, 10, [first]), Is.EqualTo(35).Within(1e-12), "or ten times the first epoch's loss");
    }

    // ---- 5. history and checkpoint advance together; leftovers go ----

    [Test]
    public void A_failed_checkpoint_write_leaves_the_history_at_the_checkpoint_and_no_partial_checkpoint()
    {
        var data = Data();
        var straight = Path.Combine(dir, "straight");
        Assert.That(Run(Train(data, "--output", straight, "--epochs", "3")).Code, Is.Zero);

        var output = Path.Combine(dir, "out");
        Directory.CreateDirectory(output);
        var blocker = Path.Combine(output, "checkpoint.old");
        File.WriteAllText(blocker, "a file where epoch 2's write moves the previous checkpoint: the write fails, as on a full disk");
        var r = Run(Train(data, "--output", output, "--epochs", "3"));
        Error(r, "cannot write the checkpoint of epoch 2 in");
        Assert.That(r.Err, Does.Contain("(the previous checkpoint is kept); free space or fix the folder, then continue with: gpu train --resume"));
        Assert.That(File.ReadAllLines(Path.Combine(output, "history.csv")), Has.Length.EqualTo(2), "history.csv holds the checkpoint's one epoch, not two");
        Assert.That((int)Json(Path.Combine(output, "checkpoint", "state.json"))["position"]!["epochs_done"]!, Is.EqualTo(1));
        Assert.That(Directory.Exists(Path.Combine(output, "checkpoint.new")), Is.False, "no half-written checkpoint");

        File.Delete(blocker);
        var resumed = Run("train", "--resume", output);
        Assert.That(resumed.Code, Is.Zero, resumed.Err);
        Assert.That(Bytes(Path.Combine(output, "model.npy")), Is.EqualTo(Bytes(Path.Combine(straight, "model.npy"))), "bit for bit");
        Assert.That(File.ReadAllLines(Path.Combine(output, "history.csv")), Has.Length.EqualTo(4));
    }

    [Test]
    public void A_resume_removes_leftovers_and_cuts_the_history_to_the_checkpoint()
    {
        var output = Path.Combine(dir, "out");
        Assert.That(Run(Train(Data(), "--output", output, "--epochs", "1")).Code, Is.Zero);
        var history = Path.Combine(output, "history.csv");
        File.AppendAllText(history, "2,0.5,0.8,,,1,100,0\n");   // a row the checkpoint does not have
        Directory.CreateDirectory(Path.Combine(output, "checkpoint.new"));
        File.WriteAllText(Path.Combine(output, "checkpoint.new", "model.npy"), "half");
        File.WriteAllText(Path.Combine(output, ".model.npy.99999.tmp"), "half");

        Assert.That(Run(["train", "--resume", output, "--epochs", "3"], Stopped).Code, Is.EqualTo(130));
        Assert.That(File.ReadAllLines(history), Has.Length.EqualTo(2), "history.csv: the header and the checkpoint's one epoch");
        Assert.That(File.Exists(Path.Combine(output, ".model.npy.99999.tmp")), Is.False, "temporary file removed");
        Assert.That(Directory.Exists(Path.Combine(output, "checkpoint.new")), Is.False, "half-written checkpoint removed");
    }

    // ---- 6. a damaged checkpoint falls back to the older complete one ----

    [Test]
    public void A_truncated_state_json_falls_back_to_checkpoint_old_saying_so()
    {
        var data = Data();
        var straight = Path.Combine(dir, "straight");
        Assert.That(Run(Train(data, "--output", straight, "--schedule", "constant")).Code, Is.Zero);

        var output = Path.Combine(dir, "out");
        Assert.That(Run(Train(data, "--output", output, "--schedule", "constant", "--epochs", "1")).Code, Is.Zero);
        var checkpoint = Path.Combine(output, "checkpoint");
        Directory.CreateDirectory(checkpoint + ".old");
        foreach (var f in Directory.GetFiles(checkpoint)) File.Copy(f, Path.Combine(checkpoint + ".old", Path.GetFileName(f)));
        var state = Path.Combine(checkpoint, "state.json");
        File.WriteAllBytes(state, Bytes(state)[..200]);   // truncated

        var r = Run("train", "--resume", output, "--epochs", "2");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain($"note: corrupt checkpoint {state}: not valid JSON").And.Contain("resuming from the older complete checkpoint (epoch 1) instead"));
        Assert.That(Directory.Exists(checkpoint + ".damaged"), Is.True, "the damaged one is kept aside");
        Assert.That(Bytes(Path.Combine(output, "model.npy")), Is.EqualTo(Bytes(Path.Combine(straight, "model.npy"))), "bit for bit");
    }

    // ---- 7. runs move with their data ----

    [Test]
    public void A_run_resumes_on_its_data_at_a_new_path_and_only_on_the_same_data()
    {
        var first = Data("d1");
        var straight = Path.Combine(dir, "straight");
        Assert.That(Run(Train(first, "--output", straight, "--schedule", "constant")).Code, Is.Zero);
        var output = Path.Combine(dir, "out");
        Assert.That(Run(Train(first, "--output", output, "--schedule", "constant", "--epochs", "1")).Code, Is.Zero);

        var moved = Path.Combine(dir, "moved");
        Directory.Move(first, moved);
        Error(Run("train", "--resume", output, "--epochs", "2"), $"the data this run trained on is not there any more: {first}");
        Error(Run("train", "--resume", output, "--epochs", "2", "--data", Data("other", seed: 9)), "is not the data the run in");
        Error(Run("train", "--resume", output, "--epochs", "2", "--lr", "0.1"), "--lr cannot be changed when resuming");

        var r = Run("train", "--resume", output, "--epochs", "2", "--data", moved);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("the device the run was trained on"), "the device is kept without --device");
        Assert.That(Bytes(Path.Combine(output, "model.npy")), Is.EqualTo(Bytes(Path.Combine(straight, "model.npy"))), "bit for bit");
        var source = Json(Path.Combine(output, "model.json"))["data"]!["source"]!;
        Assert.That(((string?)source["folder"], (string?)source["folder_resolved"]), Is.EqualTo((moved, Path.GetFullPath(moved))));
    }

    [Test]
    public void The_data_path_is_stored_as_given_and_resolved_in_model_json_and_the_checkpoint()
    {
        var output = Path.Combine(dir, "out");
        // a path relative to the repository, as README's commands give it; the tests run elsewhere, so it is found above the program
        var r = Run("train", "--data", "data/mnist-10k", "--limit", "300", "--layers", "8", "--epochs", "1", "--device", "cpu", "--output", output);
        Assert.That(r.Code, Is.Zero, r.Err);
        string resolved = Path.Combine(Repo.Root, "data", "mnist-10k");
        foreach (var file in new[] { "model.json", Path.Combine("checkpoint", "state.json") })
        {
            var source = Json(Path.Combine(output, file))["data"]!["source"]!;
            Assert.That(((string?)source["folder"], (string?)source["folder_resolved"]), Is.EqualTo(("data/mnist-10k", resolved)), file);
        }
        var fingerprint = Json(Path.Combine(output, "checkpoint", "state.json"))["data"]!["fingerprint"]!;
        Assert.That(((int)fingerprint["train_images"]!, (int)fingerprint["test_images"]!, ((string)fingerprint["sha256"]!).Length), Is.EqualTo((300, 2000, 64)));
    }

    [Test]
    public void A_semicolon_in_a_file_path_is_just_a_character()
    {
        var folder = Path.Combine(dir, "a;b=c");
        Directory.CreateDirectory(folder);
        var images = new byte[60 * 784];
        new Random(3).NextBytes(images);
        var set = new Dataset("csv", images, Enumerable.Range(0, 60).Select(i => i % 10).ToArray(), 784, 10);
        File.WriteAllText(Path.Combine(folder, "train.csv"), TestFiles.Csv(set, header: true));
        File.WriteAllText(Path.Combine(folder, "test.csv"), TestFiles.Csv(set, header: false));
        var output = Path.Combine(dir, "out");
        var r = Run("train", "--train-images", Path.Combine(folder, "train.csv"), "--test-images", Path.Combine(folder, "test.csv"),
            "--layers", "8", "--epochs", "1", "--device", "cpu", "--output", output);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That((string?)Json(Path.Combine(output, "model.json"))["data"]!["source"]!["train_images"], Is.EqualTo(Path.Combine(folder, "train.csv")));
        var again = Run("train", "--resume", output, "--epochs", "2");
        Assert.That(again.Code, Is.Zero, "the checkpoint finds the files again: " + again.Err);
    }

    // ---- internal errors that were not error lines ----

    [Test]
    public void An_npy_header_length_of_0xFFFFFFFF_is_an_error_line()
    {
        var npy = Path.Combine(dir, "images.npy");
        File.WriteAllBytes(npy, [0x93, .. "NUMPY"u8, 2, 0, 0xFF, 0xFF, 0xFF, 0xFF, .. "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 784), }\n"u8]);
        Error(Run("train", "--train-images", npy, "--train-labels", npy, "--test-images", npy, "--test-labels", npy, "--device", "cpu"),
            $"{npy}: corrupt or truncated .npy header");
    }

    [Test]
    public void A_model_npy_whose_shape_overflows_is_an_error_line_in_eval_and_predict()
    {
        var model = Path.Combine(dir, "model");
        Assert.That(Run(Train(Data(), "--output", model, "--epochs", "1", "--layers", "4")).Code, Is.Zero);
        var npy = Path.Combine(model, "model.npy");
        var bytes = Bytes(npy);
        string header = Encoding.ASCII.GetString(bytes, 10, bytes[8] | bytes[9] << 8);
        string bad = System.Text.RegularExpressions.Regex.Replace(header, @"\(\d+,\)", "(99999999999999999999,)");
        Encoding.ASCII.GetBytes(bad[..(header.Length - 1)].PadRight(header.Length - 1) + "\n").CopyTo(bytes, 10);
        File.WriteAllBytes(npy, bytes);
        Error(Run("eval", "--model", model, "--device", "cpu"), $"{npy}: .npy header promises 99999999999999999999 float32 values");
        Error(Run("predict", "--model", model, "--input", Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz"), "--device", "cpu"), "99999999999999999999");
    }

    // ---- smaller things ----

    [Test]
    public void Data_pointing_at_a_file_says_it_is_a_file_and_what_to_pass()
    {
        var file = Path.Combine(Data(), "train-images-idx3-ubyte.gz");
        Error(Run(Train(file)), $"--data {file} is a file; --data takes a folder holding the training and test files (IDX, .npy or .csv); for single files give --train-images and --test-images");
    }

    [Test]
    public void Idx_sizes_that_overflow_are_a_corrupt_file_not_a_huge_number()
    {
        var data = Data();
        SyntheticData.Gz(Path.Combine(data, "train-images-idx3-ubyte.gz"), SyntheticData.Idx([0x3FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF], new byte[64]));
        var r = Run(Train(data));
        Error(r, "train-images-idx3-ubyte.gz: truncated or corrupt IDX file");
        Assert.That(r.Err, Does.Not.Contain("4611686024869838847"));
    }

    [Test]
    public void A_batch_larger_than_the_training_set_is_capped_and_said()
    {
        var r = Run(Train(Data(), "--batch-size", "100000"));
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("note: --batch-size 100000 is more than the 270 training images; using 270 (one step per epoch)"));
    }

    [Test]
    public void Flag_values_that_were_accepted_silently_are_refused()
    {
        var data = Data();
        Error(Run("train", "--data", data, "--device", "cpu:1", "--epochs", "1"), "bad device 'cpu:1': cpu takes no index");
        Error(Run("landscape", "--data", data, "--device", "cpu", "--record-every", "-1", "--output", Path.Combine(dir, "l")), "--record-every -1: give a whole number of steps >= 1");
        Error(Run(Train(data, "--layers", "")), "--layers got an empty value");   // the empty-value rule of every flag
        Error(Run(Train(data, "--layers", " ")), "no widths given");
        var none = Run(Train(data, "--layers", "none", "--epochs", "1"));
        Assert.That(none.Code, Is.Zero, none.Err);
        Assert.That(none.Out, Does.Contain("network: 784-10 (no hidden layer), softmax-ce"), "not labelled relu");
    }

    [Test]
    public void A_bad_activation_in_model_json_names_the_file()
    {
        var model = Path.Combine(dir, "model");
        Assert.That(Run(Train(Data(), "--output", model, "--epochs", "1", "--layers", "4")).Code, Is.Zero);
        var json = Path.Combine(model, "model.json");
        File.WriteAllText(json, File.ReadAllText(json).Replace("\"activation\": \"relu\"", "\"activation\": \"bogus\""));
        var r = Run("eval", "--model", model, "--device", "cpu");
        Error(r, $"bad model file {json}");
        Assert.That(r.Err, Does.Not.Contain("--activation"));
    }

    [Test]
    public void The_resume_hint_of_the_real_program_is_a_command_that_exists()
    {
        var data = Data();
        var output = Path.Combine(dir, "out");
        Assert.That(Run(Train(data, "--output", output), Stopped).Code, Is.EqualTo(130));
        var psi = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "gpu")) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        foreach (var a in Train(data, "--output", output)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        var hint = System.Text.RegularExpressions.Regex.Match(err, @"resume it with: (\S+) train --resume");
        Assert.That(hint.Success, err);
        string command = hint.Groups[1].Value;
        Assert.That(command == "gpu" ? WhichGpu() : Path.GetFullPath(Path.Combine(dir, command)), Is.EqualTo(Path.Combine(AppContext.BaseDirectory, "gpu")),
            "the hint names this program, as the user can type it from where they are");
    }

    static string? WhichGpu() => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "gpu")).FirstOrDefault(File.Exists);

    [Test]
    public void Every_verb_help_says_what_it_does_then_how_to_call_it_with_the_common_flags_first()
    {
        foreach (var verb in typeof(Program).Assembly.GetTypes().Where(t => t.GetCustomAttribute<VerbAttribute>() != null))
        {
            string name = VerbHelp.Name(verb);
            var r = Run(name, "--help");
            var lines = r.Out.Split('\n');
            Assert.That(lines[1], Does.StartWith($"gpu {name}: "), name);
            Assert.That(lines.Any(l => l.StartsWith($"usage: gpu {name}")), name + ": a usage line");
            var options = lines.Where(l => l.StartsWith("  --")).Select(l => l.Trim().Split(' ')[0]).ToList();
            var common = VerbHelp.CommonFlags.Where(options.Contains).ToList();
            Assert.That(options.Take(common.Count), Is.EqualTo(common), name + ": the common flags first");
            Assert.That(lines.Skip(1).Max(l => l.Length), Is.LessThanOrEqualTo(80), name);
        }
        Assert.That(Run("train", "--help").Out, Does.Contain("usage: gpu train [--epochs N] [--lr X] [--layers W,W] [--output DIR] [options]")
            .And.Contain("(Default: cosine)").And.Not.Contain("Cosine"));
        Assert.That(Run("eval", "--help").Out, Does.Contain("usage: gpu eval --model DIR [--output DIR] [options]"));
        Assert.That(Run("devices", "--help").Out, Does.Contain("Prints one row per device"));
        Assert.That(Run("check", "--help").Out, Does.Contain("Prints the device's profile"));
    }
}
