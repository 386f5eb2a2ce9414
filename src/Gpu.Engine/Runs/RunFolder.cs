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

    /// <summary>The files a training run writes in its output folder, which <see cref="ClearRun"/> removes.</summary>
    static readonly string[] RunFiles_ = ["model.npy", "model.json", "history.csv", "curves.png", "eval.json", "confusion.csv", "weights.png"];
    static readonly string[] CheckpointFolders = [Checkpoint.FolderName, Checkpoint.FolderName + ".old", Checkpoint.FolderName + ".new", Checkpoint.FolderName + ".damaged"];

    public string Folder { get; }
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

    /// <summary>Removes what a training run writes (checkpoints, model, history, curves, eval and weights files), for --overwrite; other files stay.</summary>
    public void ClearRun()
    {
        try
        {
            foreach (var d in CheckpointFolders)
                if (Directory.Exists(Path.Combine(Folder, d))) Directory.Delete(Path.Combine(Folder, d), true);
            foreach (var f in RunFiles_)
                File.Delete(Path.Combine(Folder, f));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserError($"cannot remove the earlier run in {Folder}: {e.Message.TrimEnd('.')}");
        }
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
