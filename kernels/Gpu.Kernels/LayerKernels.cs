using ILGPU;

namespace Gpu.Kernels;

/// <summary>
/// The loss kernels: per row of the output layer the cost, the argmax check and the gradient dZ, then, in the same
/// launch, the batch's sums added to the device accumulators and the divergence watch. Each runs as one group of
/// threads (launch with one group, any size): the threads share the rows, meet at a barrier, and thread 0 sums the
/// per-row results in row order (deterministic; no atomics). Row-major float32.
/// </summary>
internal static class LayerKernels
{
    // Softmax + cross-entropy per row of logits Z[m,c] with int labels y[m] (SoftmaxRow):
    // P = softmax(Z), rowLoss[i] = -log P[i,y], rowCorrect[i] = (argmax Z[i] == y),
    // and, when grad != 0, dZ[m,c] = (P - onehot(y)) * scale (scale = 1/B for a mean loss); then Accumulate.
    public static void SoftmaxCrossEntropy(ArrayView<float> z, ArrayView<int> y, ArrayView<float> dz,
        ArrayView<float> rowLoss, ArrayView<float> rowCorrect, ArrayView<double> acc, ArrayView<long> firstBad,
        int m, int c, float scale, int grad, long step)
    {
        for (int i = Group.IdxX; i < m; i += Group.DimX) SoftmaxRow(i, z, y, dz, rowLoss, rowCorrect, c, scale, grad);
        Group.Barrier();
        if (Group.IdxX == 0) Accumulate(rowLoss, rowCorrect, acc, firstBad, m, step);
    }

    // Sigmoid outputs with the sum-of-squares cost, per row of activations A[m,c] = sigmoid(Z) and int labels y[m]:
    // rowLoss[i] = 1/2 sum_j (A[i,j] - onehot(y)[j])^2, rowCorrect[i] = (argmax A[i] == y), and, when grad != 0,
    // dZ[i,j] = (A - onehot) * A * (1 - A) * scale (dC/dA = A - y, times sigmoid'(Z) written from A); then Accumulate.
    public static void SigmoidSquaredError(ArrayView<float> a, ArrayView<int> y, ArrayView<float> dz,
        ArrayView<float> rowLoss, ArrayView<float> rowCorrect, ArrayView<double> acc, ArrayView<long> firstBad,
        int m, int c, float scale, int grad, long step)
    {
        for (int i = Group.IdxX; i < m; i += Group.DimX) SigmoidRow(i, a, y, dz, rowLoss, rowCorrect, c, scale, grad);
        Group.Barrier();
        if (Group.IdxX == 0) Accumulate(rowLoss, rowCorrect, acc, firstBad, m, step);
    }

    // One row i of Z[m,c]: with max and argmax a, rest = sum over j != a of exp(z_j - max) (never formed as sum - 1, so a
    // confident row keeps its tiny loss), loss = log1p(rest) + (max - z_y); P_j = exp(z_j - max) / (1 + rest), P_a = 1 / (1 + rest),
    // and the label's gradient when it is the argmax -rest / (1 + rest) (not P_a - 1, which cancels to 0).
    static void SoftmaxRow(int i, ArrayView<float> z, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect,
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

    static void SigmoidRow(int i, ArrayView<float> a, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect,
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
    /// One thread, rows in order: acc[0] += sum rowLoss[0..m), acc[1] += sum rowCorrect[0..m) (in double); then the
    /// divergence watch: for a training step (<paramref name="step"/> &gt;= 0), if the running loss acc[0] is NaN or
    /// infinite and no bad step is recorded yet, records the step in firstBad[0], so the host learns the first bad
    /// step without waiting per step.
    /// </summary>
    static void Accumulate(ArrayView<float> rowLoss, ArrayView<float> rowCorrect, ArrayView<double> acc, ArrayView<long> firstBad, int m, long step)
    {
        double loss = 0, correct = 0;
        for (int i = 0; i < m; i++) { loss += rowLoss[i]; correct += rowCorrect[i]; }
        double total = acc[0] + loss;
        acc[0] = total;
        acc[1] += correct;
        if (step >= 0 && firstBad[0] < 0 && (double.IsNaN(total) || double.IsInfinity(total))) firstBad[0] = step;
    }
}
