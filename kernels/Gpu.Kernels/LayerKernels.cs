using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Kernels;

/// <summary>
/// The loss kernels: per row of the output layer the cost, the argmax check and the gradient dZ (a row struct:
/// <see cref="SoftmaxCrossEntropyRow"/>, <see cref="SigmoidSquaredErrorRow"/>), then, in the same launch, the batch's sums
/// added to the device accumulators and the divergence watch. Rows are spread over groups of a power-of-two size G (at most
/// <see cref="MaxGroupSize"/>): thread t of group g, T threads in all, takes rows gG + t, gG + t + T, ... (one row per thread
/// on a GPU). Two kernels for each cost: over one group, and over a grid of groups whose sums meet through a workspace and an
/// integer atomic (<see cref="SumOverGrid"/>; ILGPU's OpenCL atomics need the generic address space, so a device without it
/// runs the one-group kernel only). Either way the sums are reduced in a
/// fixed order, so a run is bit-identical from run to run on one device: no float atomics. Row-major float32.
/// </summary>
internal static class LayerKernels
{
    /// <summary>The largest group a loss kernel runs in (its shared memory: two doubles per thread).</summary>
    public const int MaxGroupSize = 256;

    // A loss over the rows of the output layer O[m,c] with int labels y[m], TRow's cost per row i (rowLoss[i], rowCorrect[i] =
    // (argmax O[i] == y[i]) and, when grad != 0, dZ[i,:] times scale, 1/B for a mean loss), rows over a grid of groups, the
    // sums within each group by a fixed tree, then over the grid (SumOverGrid).
    public static void Loss<TRow>(ArrayView<float> o, ArrayView<int> y, ArrayView<float> dz,
        ArrayView<float> rowLoss, ArrayView<float> rowCorrect, LossSums sums, ArrayView<StepValues> step,
        int m, int c, float scale, int grad, int watch) where TRow : struct, ILossRow
    {
        var (loss, correct) = GroupSums<TRow>(o, y, dz, rowLoss, rowCorrect, m, c, scale, grad);
        if (Group.IdxX == 0) SumOverGrid(loss, correct, sums, step, watch);
    }

    // As Loss, launched as one group: its sums go straight to the accumulators (sums.Partials and sums.Finished unused).
    public static void LossOneGroup<TRow>(ArrayView<float> o, ArrayView<int> y, ArrayView<float> dz,
        ArrayView<float> rowLoss, ArrayView<float> rowCorrect, LossSums sums, ArrayView<StepValues> step,
        int m, int c, float scale, int grad, int watch) where TRow : struct, ILossRow
    {
        var (loss, correct) = GroupSums<TRow>(o, y, dz, rowLoss, rowCorrect, m, c, scale, grad);
        if (Group.IdxX == 0) AddToAccumulators(loss, correct, sums, step, watch);
    }

    /// <summary>This group's rows (<see cref="Rows{TRow}"/>), then their loss and correct sums by the group's fixed tree (<see cref="SumWithinGroup"/>): the group's sums, as every thread sees them after the last barrier.</summary>
    static (double Loss, double Correct) GroupSums<TRow>(ArrayView<float> o, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss,
        ArrayView<float> rowCorrect, int m, int c, float scale, int grad) where TRow : struct, ILossRow
    {
        var groupLoss = SharedMemory.Allocate1D<double>(MaxGroupSize);
        var groupCorrect = SharedMemory.Allocate1D<double>(MaxGroupSize);
        Rows<TRow>(o, y, dz, rowLoss, rowCorrect, m, c, scale, grad, groupLoss, groupCorrect);
        SumWithinGroup(groupLoss, groupCorrect);
        return (groupLoss[0], groupCorrect[0]);
    }

    /// <summary>This thread's rows (<typeparamref name="TRow"/>'s cost each), their loss and correct count summed in row order into its slot of groupLoss and groupCorrect.</summary>
    static void Rows<TRow>(ArrayView<float> o, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect,
        int m, int c, float scale, int grad, ArrayView1D<double, Stride1D.Dense> groupLoss, ArrayView1D<double, Stride1D.Dense> groupCorrect)
        where TRow : struct, ILossRow
    {
        TRow row = default;
        double loss = 0, correct = 0;
        for (int i = Grid.IdxX * Group.DimX + Group.IdxX; i < m; i += Grid.DimX * Group.DimX)
        {
            row.Cost(i, o, y, dz, rowLoss, rowCorrect, c, scale, grad);
            loss += rowLoss[i];
            correct += rowCorrect[i];
        }
        groupLoss[Group.IdxX] = loss;
        groupCorrect[Group.IdxX] = correct;
    }

    // Softmax + cross-entropy, one row i of logits Z[m,c]: with max and argmax a, rest = sum over j != a of exp(z_j - max) (never formed as sum - 1, so a
    // confident row keeps its tiny loss), loss = log1p(rest) + (max - z_y); P_j = exp(z_j - max) / (1 + rest), P_a = 1 / (1 + rest),
    // and the label's gradient when it is the argmax -rest / (1 + rest) (not P_a - 1, which cancels to 0).
    internal static void SoftmaxRow(int i, ArrayView<float> z, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect,
        int c, float scale, int grad)
    {
        long r = (long)i * c;
        float max = z[r];
        int arg = 0;
        for (int j = 1; j < c; j++)
        {
            float v = z[r + j];
            if (v > max) { max = v; arg = j; }
        }
        float rest = 0f;
        for (int j = 0; j < c; j++)
            if (j != arg) rest += ExactMath.Exp(z[r + j] - max);
        int label = y[i];
        rowLoss[i] = ExactMath.Log1p(rest) + (max - z[r + label]);
        rowCorrect[i] = arg == label ? 1f : 0f;
        if (grad == 0) return;
        float inv = 1f / (1f + rest);
        for (int j = 0; j < c; j++)
        {
            float g;
            if (j == arg) g = j == label ? -rest * inv : inv;
            else
            {
                float p = ExactMath.Exp(z[r + j] - max) * inv;
                g = j == label ? p - 1f : p;
            }
            dz[r + j] = g * scale;
        }
    }

    // Sigmoid outputs with the sum-of-squares cost, one row i of A[m,c] = sigmoid(Z): rowLoss[i] = 1/2 sum_j (A[i,j] - onehot(y)[j])^2,
    // and dZ[i,j] = (A - onehot) * A * (1 - A) * scale (dC/dA = A - y, times sigmoid'(Z) written from A).
    internal static void SigmoidRow(int i, ArrayView<float> a, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect,
        int c, float scale, int grad)
    {
        long r = (long)i * c;
        int label = y[i];
        float loss = 0f, max = a[r];
        int arg = 0;
        for (int j = 0; j < c; j++)
        {
            float v = a[r + j];
            if (v > max) { max = v; arg = j; }
            float d = v - (j == label ? 1f : 0f);
            loss += d * d;
            if (grad != 0) dz[r + j] = d * v * (1f - v) * scale;
        }
        rowLoss[i] = 0.5f * loss;
        rowCorrect[i] = arg == label ? 1f : 0f;
    }

    /// <summary>
    /// The group's sums of its threads' sums (each thread's slot of groupLoss and groupCorrect) into slot 0, by a fixed tree:
    /// thread t adds thread t + h's for h = G/2, G/4, ..., 1, a barrier after each level.
    /// </summary>
    static void SumWithinGroup(ArrayView1D<double, Stride1D.Dense> groupLoss, ArrayView1D<double, Stride1D.Dense> groupCorrect)
    {
        int t = Group.IdxX;
        Group.Barrier();
        for (int half = Group.DimX / 2; half > 0; half /= 2)
        {
            if (t < half)
            {
                groupLoss[t] += groupLoss[t + half];
                groupCorrect[t] += groupCorrect[t + half];
            }
            Group.Barrier();
        }
    }

    /// <summary>
    /// Thread 0 of each group of the grid, with its group's sums: writes them to sums.Partials; the last group to finish (counted
    /// by an integer atomic after a device-wide fence) adds every group's up in group order, adds that to the accumulators
    /// (<see cref="AddToAccumulators"/>) and resets the count for the next launch.
    /// </summary>
    static void SumOverGrid(double loss, double correct, LossSums sums, ArrayView<StepValues> step, int watch)
    {
        int groups = Grid.DimX, g = Grid.IdxX;
        sums.Partials[2 * g] = loss;
        sums.Partials[2 * g + 1] = correct;
        MemoryFence.DeviceLevel();   // the partials are visible to every group before the count says so
        if (Atomic.Add(ref sums.Finished[0], 1) != groups - 1) return;
        MemoryFence.DeviceLevel();   // the last group reads the partials only after seeing every group's count
        double totalLoss = 0, totalCorrect = 0;
        for (int k = 0; k < groups; k++)
        {
            totalLoss += sums.Partials[2 * k];
            totalCorrect += sums.Partials[2 * k + 1];
        }
        sums.Finished[0] = 0;
        AddToAccumulators(totalLoss, totalCorrect, sums, step, watch);
    }

    /// <summary>
    /// acc[0] += loss, acc[1] += correct (in double); then the divergence watch: for a training step (<paramref name="watch"/> != 0),
    /// if the running loss acc[0] is NaN or infinite and no bad step is recorded yet, records step[0].Step in firstBad[0], so the
    /// host learns the first bad step without waiting per step.
    /// </summary>
    static void AddToAccumulators(double loss, double correct, LossSums sums, ArrayView<StepValues> step, int watch)
    {
        double total = sums.Acc[0] + loss;
        sums.Acc[0] = total;
        sums.Acc[1] += correct;
        if (watch != 0 && sums.FirstBad[0] < 0 && (double.IsNaN(total) || double.IsInfinity(total))) sums.FirstBad[0] = step[0].Step;
    }
}

/// <summary>
/// Where a loss kernel's sums go: the device accumulators and the divergence watch, which stay on the device until read, and
/// the workspace of the groups of one launch.
/// </summary>
internal struct LossSums
{
    /// <summary>[loss sum, correct count], added to by every launch.</summary>
    public ArrayView<double> Acc;

    /// <summary>[the first training step whose running loss sum was NaN or infinite], or [-1].</summary>
    public ArrayView<long> FirstBad;

    /// <summary>Group g's loss sum at [2g] and correct count at [2g + 1] (two per group of the largest launch).</summary>
    public ArrayView<double> Partials;

    /// <summary>[how many groups of the launch in flight have written their partials]: 0 between launches.</summary>
    public ArrayView<int> Finished;
}

/// <summary>One row's cost of a loss kernel (a compile-time specialisation of <see cref="LayerKernels.Loss{TRow}"/>).</summary>
internal interface ILossRow
{
    void Cost(int i, ArrayView<float> o, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect, int c, float scale, int grad);
}

/// <summary>Softmax + cross-entropy over logits (<see cref="LayerKernels.SoftmaxRow"/>).</summary>
internal struct SoftmaxCrossEntropyRow : ILossRow
{
    public void Cost(int i, ArrayView<float> o, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect, int c, float scale, int grad) =>
        LayerKernels.SoftmaxRow(i, o, y, dz, rowLoss, rowCorrect, c, scale, grad);
}

/// <summary>Sigmoid outputs with the sum-of-squares cost (<see cref="LayerKernels.SigmoidRow"/>).</summary>
internal struct SigmoidSquaredErrorRow : ILossRow
{
    public void Cost(int i, ArrayView<float> o, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect, int c, float scale, int grad) =>
        LayerKernels.SigmoidRow(i, o, y, dz, rowLoss, rowCorrect, c, scale, grad);
}
