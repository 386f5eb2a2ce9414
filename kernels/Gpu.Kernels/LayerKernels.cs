using ILGPU;
using ILGPU.Algorithms;

namespace Gpu.Kernels;

/// <summary>Per-row and per-column kernels of a dense layer and its loss. Row-major float32.</summary>
public static class LayerKernels
{
    // Softmax + cross-entropy per row of logits Z[m,c] with int labels y[m]:
    // P = softmax(Z) (max-shifted), rowLoss[i] = -log P[i,y], rowCorrect[i] = (argmax Z[i] == y),
    // and, when grad != 0, dZ[m,c] = (P - onehot(y)) * scale (scale = 1/B for a mean loss).
    public static void SoftmaxCrossEntropy(Index1D i, ArrayView<float> z, ArrayView<int> y, ArrayView<float> dz,
        ArrayView<float> rowLoss, ArrayView<float> rowCorrect, int c, float scale, int grad)
    {
        long r = (long)i.X * c;
        float max = z[r];
        int arg = 0;
        for (int j = 1; j < c; j++)
        {
            float v = z[r + j];
            if (v > max) { max = v; arg = j; }
        }
        float sum = 0f;
        for (int j = 0; j < c; j++) sum += XMath.Exp(z[r + j] - max);
        float logSum = XMath.Log(sum);
        int label = y[i];
        rowLoss[i] = logSum - (z[r + label] - max);
        rowCorrect[i] = arg == label ? 1f : 0f;
        if (grad == 0) return;
        float inv = 1f / sum;
        for (int j = 0; j < c; j++)
        {
            float p = XMath.Exp(z[r + j] - max) * inv;
            dz[r + j] = (p - (j == label ? 1f : 0f)) * scale;
        }
    }

    // Sigmoid outputs with the sum-of-squares cost, per row of activations A[m,c] = sigmoid(Z) and int labels y[m]:
    // rowLoss[i] = 1/2 sum_j (A[i,j] - onehot(y)[j])^2, rowCorrect[i] = (argmax A[i] == y), and, when grad != 0,
    // dZ[i,j] = (A - onehot) * A * (1 - A) * scale (dC/dA = A - y, times sigmoid'(Z) written from A).
    public static void SigmoidSquaredError(Index1D i, ArrayView<float> a, ArrayView<int> y, ArrayView<float> dz,
        ArrayView<float> rowLoss, ArrayView<float> rowCorrect, int c, float scale, int grad)
    {
        long r = (long)i.X * c;
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

    // Bias gradient: db[j] = sum over rows i of dZ[i,j], dZ is [m,n].
    public static void BiasGrad(Index1D j, ArrayView<float> dz, ArrayView<float> db, int m, int n)
    {
        float s = 0f;
        for (int i = 0; i < m; i++) s += dz[(long)i * n + j];
        db[j] = s;
    }

    // Metrics accumulator (one thread, fixed order, so deterministic): acc[0] += sum rowLoss[0..m), acc[1] += sum rowCorrect[0..m).
    public static void AccumulateMetrics(Index1D t, ArrayView<float> rowLoss, ArrayView<float> rowCorrect,
        ArrayView<double> acc, int m)
    {
        double loss = 0, correct = 0;
        for (int i = 0; i < m; i++) { loss += rowLoss[i]; correct += rowCorrect[i]; }
        acc[0] += loss;
        acc[1] += correct;
    }

    /// <summary>
    /// Divergence watch (one thread): if the running loss sum acc[0] is NaN or infinite and no bad step
    /// is recorded yet, records <paramref name="step"/> in firstBad[0]. Launched after every training
    /// step's AccumulateMetrics, so the host can learn the first bad step without waiting per step.
    /// </summary>
    public static void MarkNonFinite(Index1D t, ArrayView<double> acc, ArrayView<long> firstBad, long step)
    {
        double v = acc[0];
        if (firstBad[0] < 0 && (double.IsNaN(v) || double.IsInfinity(v))) firstBad[0] = step;
    }
}
