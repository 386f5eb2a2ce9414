using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;

namespace Gpu.Engine.Runs;

/// <summary>
/// An output folder held by one process for the length of a run (<c>train</c>, <c>search</c>,
/// <c>landscape</c>): an exclusive OS lock on <c>DIR/.gpu.lock</c> (flock on Linux and macOS), which the
/// operating system drops when the process ends in any way, SIGKILL included, so a stale lock cannot
/// exist. The holder writes its pid and command into the file; a second process is refused with one line
/// naming them. Taking the folder also removes what an earlier process left half-written there
/// (<c>checkpoint.new/</c>, temporary files).
/// </summary>
internal sealed class RunFolder : IDisposable
{
    public const string LockName = ".gpu.lock";

    /// <summary>The files a training run and the verbs on its model write in its output folder, which <see cref="MoveRunAside"/> moves (with every model.* file).</summary>
    static readonly string[] RunFiles_ = ["model.npy", "model.json", "history.csv", "curves.png", "eval.json", "confusion.csv", "weights.png", "predictions.csv"];
    static readonly string[] CheckpointFolders = [Checkpoint.FolderName, Checkpoint.FolderName + ".old", Checkpoint.FolderName + ".new", Checkpoint.FolderName + ".damaged"];

    public string Folder { get; }

    /// <summary>What taking the folder did with an earlier run left aside by a killed --overwrite (<see cref="SettleLeftAside"/>), for the verb to print; null when nothing.</summary>
    public string? Settled { get; private set; }
    FileStream? held;

    RunFolder(string folder, FileStream held) { Folder = folder; this.held = held; }

    /// <summary>
    /// Creates <paramref name="folder"/> if missing and takes its lock for <paramref name="command"/> ("gpu train"),
    /// or throws a <see cref="UserError"/> naming the process that holds it; then removes leftovers of earlier runs.
    /// </summary>
    public static RunFolder Take(string folder, string command)
    {
        string dir = AtomicFile.EnsureFolder(folder);
        string lockPath = Path.Combine(dir, LockName);
        FileStream f;
        try { f = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException e)
        {
            string? holder = ReadHolder(lockPath);
            throw new UserError(holder != null
                ? $"{folder} is in use by another process ({(holder.Length > 0 ? holder : "which has not written its pid yet")}); wait for it to end or stop it, or choose another --output folder"
                : $"cannot lock {folder} ({e.Message.TrimEnd('.')}): another process is probably writing there; wait for it to end, or choose another --output folder");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new UserError($"cannot write to output folder '{folder}': {e.Message.TrimEnd('.')}; choose another --output folder");
        }
        try
        {
            f.SetLength(0);
            f.Write(Encoding.UTF8.GetBytes($"pid {Environment.ProcessId}: {command}, since {DateTime.Now:yyyy-MM-dd HH:mm:ss}\n"));
            f.Flush(flushToDisk: true);
        }
        catch (IOException) { }   // a full disk: the lock still holds, only the holder goes unnamed
        var run = new RunFolder(dir, f);
        run.RemoveLeftovers();
        run.Settled = run.SettleLeftAside();
        return run;
    }

    /// <summary>What the lock file says about its holder, read without taking a lock (the holder's flock refuses .NET's own readers); null where that cannot be done.</summary>
    static string? ReadHolder(string path)
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())) return null;
        try
        {
            int fd = Libc.open(path, 0);
            if (fd < 0) return null;
            try
            {
                var buffer = new byte[512];
                long n = Libc.read(fd, buffer, buffer.Length);
                return n < 0 ? null : Encoding.UTF8.GetString(buffer, 0, (int)n).Trim();
            }
            finally { Libc.close(fd); }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return null; }
    }

    static class Libc
    {
        [DllImport("libc", SetLastError = true)] public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
        [DllImport("libc", SetLastError = true)] public static extern nint read(int fd, byte[] buffer, nint count);
        [DllImport("libc")] public static extern int close(int fd);
    }

    /// <summary>Removes a half-written checkpoint (<c>checkpoint.new/</c>) and the temporary files of interrupted atomic writes.</summary>
    void RemoveLeftovers()
    {
        try
        {
            string fresh = Path.Combine(Folder, Checkpoint.FolderName + ".new");
            if (Directory.Exists(fresh)) Directory.Delete(fresh, true);
            foreach (var sub in new[] { Folder, Path.Combine(Folder, "best") })
                if (Directory.Exists(sub))
                    foreach (var f in Directory.EnumerateFiles(sub, ".*"))
                        if (f.EndsWith(".tmp", StringComparison.Ordinal) || Path.GetFileName(f).StartsWith(".write-test.", StringComparison.Ordinal))
                            File.Delete(f);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserError($"cannot clean up {Folder} (left by an earlier run): {e.Message.TrimEnd('.')}");
        }
    }

    /// <summary>What an earlier run left in the folder (a checkpoint, a model, a search, a history), in words; null when nothing.</summary>
    public PreviousRun? Previous()
    {
        foreach (var name in new[] { Checkpoint.FolderName, Checkpoint.FolderName + ".old" })
        {
            string state = Path.Combine(Folder, name, "state.json");
            if (!File.Exists(state)) continue;
            try
            {
                var root = JsonText.Parse(File.ReadAllText(state));
                int done = (int)root["position"]!["epochs_done"]!, step = (int?)root["position"]!["step_in_epoch"] ?? 0;
                int? epochs = (int?)root["hyperparameters"]?["epochs"];
                string of = epochs is int e ? $" of {e}" : "";
                if (step == 0 && ModelEpochs() == done) return new PreviousRun(false, $"a finished run ({done} epochs, model.npy and model.json)");
                return new PreviousRun(true, step > 0 ? $"an unfinished run (stopped in epoch {done + 1}{of}, step {step})" : $"an unfinished run ({done}{of} epochs done)");
            }
            catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidOperationException or NullReferenceException or FormatException)
            {
                return new PreviousRun(true, $"a checkpoint ({name}/, which cannot be read: {e.Message.Split('\n')[0].TrimEnd('.')})");
            }
        }
        if (File.Exists(Path.Combine(Folder, SavedModel.JsonName)) || File.Exists(Path.Combine(Folder, SavedModel.NpyName)))
            return new PreviousRun(false, "a trained model (model.npy and model.json)");
        if (File.Exists(Path.Combine(Folder, "search.csv"))) return new PreviousRun(false, "a grid search (search.csv)", Search: true);
        if (File.Exists(Path.Combine(Folder, "history.csv"))) return new PreviousRun(false, "the history of an earlier run (history.csv)");
        return null;
    }

    /// <summary>The epochs the model in the folder was trained for (model.json's metrics.epochs_trained); null when there is none or it cannot be read.</summary>
    int? ModelEpochs()
    {
        try { return (int?)JsonText.Parse(File.ReadAllText(Path.Combine(Folder, SavedModel.JsonName)))["metrics"]?["epochs_trained"]; }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidOperationException or FormatException) { return null; }
    }

    /// <summary>
    /// The hidden folder inside the output folder where --overwrite keeps the earlier run until the new one has
    /// something: filled by <see cref="MoveRunAside"/>, deleted by <see cref="DiscardAside"/> at the new run's
    /// first end-of-epoch checkpoint, moved back by <see cref="RestoreAside"/> when the new run fails before that.
    /// </summary>
    public const string AsideName = ".replaced";

    /// <summary>The path of <see cref="AsideName"/> in this folder.</summary>
    string Aside => Path.Combine(Folder, AsideName);

    /// <summary>Whether this folder holds an earlier run moved aside by --overwrite that is not yet discarded or restored.</summary>
    public bool HoldsAside => Directory.Exists(Aside);

    /// <summary>The files a grid search writes (search.csv, search.json, best.json) and its folders (best/, shard-K-of-N/).</summary>
    static readonly string[] SearchFiles = ["search.csv", "search.json", "best.json"];

    /// <summary>
    /// The files and folders of an earlier run in the folder: checkpoints, every model.* file (model, exports), history,
    /// curves, eval, weights and predictions files, and a grid search's files, best/ and shard folders.
    /// </summary>
    IEnumerable<string> RunEntries() =>
        CheckpointFolders.Append("best").Where(d => Directory.Exists(Path.Combine(Folder, d)))
            .Concat(Directory.EnumerateDirectories(Folder, "shard-*-of-*").Select(Path.GetFileName).Select(f => f!))
            .Concat(Directory.EnumerateFiles(Folder, "model.*").Select(Path.GetFileName).Select(f => f!))
            .Concat(RunFiles_.Concat(SearchFiles).Where(f => !f.StartsWith("model.", StringComparison.Ordinal) && File.Exists(Path.Combine(Folder, f))))
            .Distinct().ToList();

    /// <summary>For --overwrite: moves the earlier run's files (see <see cref="RunEntries"/>) into <see cref="AsideName"/> (a rename, same filesystem); other files stay.</summary>
    public void MoveRunAside()
    {
        string aside = Aside;
        try
        {
            if (Directory.Exists(aside)) Directory.Delete(aside, true);
            Directory.CreateDirectory(aside);
            foreach (var name in RunEntries())
                Directory.Move(Path.Combine(Folder, name), Path.Combine(aside, name));   // Directory.Move renames files too
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            RestoreAside();
            throw new UserError($"cannot move the earlier run in {Folder} aside: {e.Message.TrimEnd('.')}; nothing was removed");
        }
    }

    /// <summary>The new run has its first checkpoint: the earlier run moved aside is deleted.</summary>
    public void DiscardAside()
    {
        string aside = Aside;
        try { if (Directory.Exists(aside)) Directory.Delete(aside, true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserError($"cannot remove the earlier run kept in {aside}: {e.Message.TrimEnd('.')}; delete that folder by hand");
        }
    }

    /// <summary>The new run failed before its first checkpoint: whatever it wrote is removed and the earlier run moved back in place.</summary>
    public void RestoreAside()
    {
        string aside = Aside;
        if (!Directory.Exists(aside)) return;
        try
        {
            foreach (var name in RunEntries()) Remove(Path.Combine(Folder, name));   // the new run's own files
            foreach (var entry in Directory.EnumerateFileSystemEntries(aside).ToList())
                Directory.Move(entry, Path.Combine(Folder, Path.GetFileName(entry)));
            Directory.Delete(aside, true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserError($"cannot move the earlier run back from {aside}: {e.Message.TrimEnd('.')}; move its files back into {Folder} by hand");
        }
    }

    static void Remove(string path)
    {
        if (Directory.Exists(path)) Directory.Delete(path, true);
        else File.Delete(path);
    }

    /// <summary>
    /// An earlier run left aside by a process that was killed (SIGKILL) during an --overwrite: restored when the
    /// new run never reached a checkpoint, deleted when it did. Says what it did, or null when there was nothing.
    /// </summary>
    public string? SettleLeftAside()
    {
        if (!HoldsAside) return null;
        if (Checkpoint.Exists(Folder))
        {
            DiscardAside();
            return $"removed the earlier run that an interrupted --overwrite had kept in {Aside}: the new run had written its checkpoint";
        }
        RestoreAside();
        return $"restored the earlier run that an interrupted --overwrite had moved to {Aside}: the new run had written no checkpoint";
    }

    /// <summary>Drops the lock (the file stays, naming its last holder).</summary>
    public void Dispose()
    {
        held?.Dispose();
        held = null;
    }
}

/// <summary>What an earlier run left in an output folder: whether it can be resumed, a description ("an unfinished run (2 of 4 epochs done)"), and whether it is a grid search (which a rerun of the search continues).</summary>
internal sealed record PreviousRun(bool Resumable, string Description, bool Search = false);
