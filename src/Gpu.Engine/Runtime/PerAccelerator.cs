using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Something built once per accelerator and reused until the accelerator is disposed: compiled kernels (loading
/// compiles, and for a driver builds, every kernel, which takes seconds), a built OpenCL program. When the
/// accelerator goes, its entry goes too (and is disposed if it is disposable).
/// </summary>
internal sealed class PerAccelerator<T> where T : class
{
    readonly Dictionary<Accelerator, T> built = new();

    /// <summary>Entries built in this process so far (tests check that a search over many trials compiles once).</summary>
    public int Builds { get; private set; }

    /// <summary>The entry of <paramref name="accelerator"/>, made by <paramref name="make"/> on first use.</summary>
    public T For(Accelerator accelerator, Func<Accelerator, T> make)
    {
        lock (built)
        {
            if (built.TryGetValue(accelerator, out var entry)) return entry;
            entry = make(accelerator);
            built[accelerator] = entry;
            Builds++;
            accelerator.Disposed += (_, _) =>
            {
                lock (built) built.Remove(accelerator);
                (entry as IDisposable)?.Dispose();
            };
            return entry;
        }
    }
}
