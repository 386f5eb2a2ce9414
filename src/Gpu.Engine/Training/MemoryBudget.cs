using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;

namespace Gpu.Engine.Training;

/// <summary>
/// What a training run will hold in memory, checked before anything is allocated, so that a run too large for the
/// machine ends in one line instead of the out-of-memory killer. Two parts:
/// the device buffers (<see cref="DeviceMlp.BytesNeeded"/>, plus the training data when it is kept on the device), and
/// the host's copies of the parameter vector (the initial weights, the final read, the best epoch's weights when early
/// stopping keeps them, and for each checkpoint the parameters, both optimizer vectors and their encoded files).
/// On a host device (the CPU accelerator, an OpenCL CPU such as POCL) the device buffers are host memory too, so both
/// parts count against the memory the host has available; a GPU's buffers count against its own memory.
/// </summary>
internal sealed record MemoryBudget(long DeviceBytes, long HostBytes, long VectorBytes, string Copies)
{
    /// <summary>
    /// Host copies of the parameter vector every run makes: the initial weights, the final read and the result's copy
    /// (measured on POCL, 784-8000-8000-10 without checkpoints: peak resident memory was the device buffers plus 2.8 vectors).
    /// </summary>
    const int RunCopies = 3;

    /// <summary>Host copies a checkpoint makes: parameters and their encoding (2), two optimizer vectors and their encoding (4).</summary>
    const int CheckpointCopies = 6;

    /// <summary>Host copies of early stopping's best weights: the copy and its encoding in the checkpoint.</summary>
    const int BestCopies = 2;

    /// <summary>
    /// The budget of training <paramref name="spec"/> with <paramref name="o"/> at up to <paramref name="maxRows"/> rows per pass,
    /// with checkpoints or not, and <paramref name="residentBytes"/> of training data kept on the device.
    /// </summary>
    public static MemoryBudget For(MlpSpec spec, TrainOptions o, int maxRows, bool checkpoints, long residentBytes)
    {
        long vector = 4L * spec.ParameterCount;
        int copies = RunCopies + (checkpoints ? CheckpointCopies : 0) + (o.Patience > 0 ? BestCopies : 0);
        string what = "initial and final weights" + (checkpoints ? ", checkpoints" : "") + (o.Patience > 0 ? ", best epoch's weights" : "");
        return new MemoryBudget(DeviceMlp.BytesNeeded(spec, maxRows) + residentBytes, copies * vector, vector, what);
    }

    /// <summary>Bytes the host can still give this process: the smaller of the system's available memory (Linux: MemAvailable) and what the .NET heap limit leaves.</summary>
    public static long HostAvailable()
    {
        var gc = GC.GetGCMemoryInfo();
        long heapLeft = Math.Max(0, gc.TotalAvailableMemoryBytes - GC.GetTotalMemory(forceFullCollection: false));
        return SystemAvailable() is long free ? Math.Min(free, heapLeft) : heapLeft;
    }

    /// <summary>MemAvailable from /proc/meminfo, or null where there is none.</summary>
    static long? SystemAvailable()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:") && long.TryParse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], out long kb))
                    return kb * 1024;
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>
    /// Refuses the run in one line when it does not fit: on a host device, device buffers and host copies together against
    /// <paramref name="hostAvailable"/>; on a GPU the buffers against its memory (checked again by <see cref="DeviceMlp"/>) and the
    /// copies against the host's. <paramref name="smallerBatch"/> gives the budget at a smaller batch, to suggest one that fits.
    /// </summary>
    public void Check(DeviceProfile profile, string deviceName, MlpSpec spec, int batch, long hostAvailable, Func<int, MemoryBudget> smallerBatch)
    {
        bool host = profile.IsHost;
        long needed = host ? DeviceBytes + HostBytes : HostBytes;
        if (needed <= hostAvailable) return;
        string parts = host ? $"{GB(DeviceBytes)} for the network's buffers on {deviceName}, which are host memory, and {GB(HostBytes)} for host copies"
            : $"{GB(HostBytes)} for host copies";
        string suggestion = "use a smaller --layers";
        if (host && FittingBatch(batch, hostAvailable, smallerBatch) is int b) suggestion = $"use --batch-size {b} or less, or a smaller --layers";
        throw new UserError($"not enough memory: the network {spec} at batch {batch} needs about {GB(needed)} ({parts} of its {GB(VectorBytes)} parameter vector: " +
            $"{Copies}), and this machine has {GB(hostAvailable)} available; {suggestion}");
    }

    /// <summary>The largest power-of-two batch below <paramref name="batch"/> that fits, or null when even one row does not.</summary>
    static int? FittingBatch(int batch, long available, Func<int, MemoryBudget> at)
    {
        for (int b = (int)Math.Min(int.MaxValue / 2 + 1L, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)batch) / 2); b >= 1; b /= 2)
            if (b < batch && at(b) is var m && m.DeviceBytes + m.HostBytes <= available) return b;
        return null;
    }

    static string GB(long bytes) => bytes >= 1e9 ? $"{bytes / 1e9:N1} GB" : $"{bytes / 1e6:N1} MB";
}
