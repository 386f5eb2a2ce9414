namespace Gpu.Kernels;

/// <summary>
/// Counter-based random numbers for kernels: a value depends only on its coordinates, so any thread
/// (or the host) can recompute it, and a run with the same seed is reproducible.
/// </summary>
internal static class CounterRng
{
    /// <summary>A uniform number in [0, 1) from (seed, step, layer, index): SplitMix64-style mixing.</summary>
    public static float Uniform(long seed, long step, int layer, int index)
    {
        ulong z = (ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)step * 0xBF58476D1CE4E5B9UL ^ (((ulong)layer << 32) | ((ulong)index & 0xFFFFFFFFUL)) * 0x94D049BB133111EBUL;
        z ^= z >> 30; z *= 0xBF58476D1CE4E5B9UL;
        z ^= z >> 27; z *= 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 40) * (1f / (1 << 24));
    }
}
