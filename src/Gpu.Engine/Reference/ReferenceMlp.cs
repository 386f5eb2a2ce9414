using Gpu.Engine.Model;
using Gpu.Engine.Settings;

namespace Gpu.Engine.Reference;

/// <summary>
/// The independent float64 oracle: a plain, loop-by-loop host implementation of the MLP's forward
/// pass, loss, backward pass and SGD update. It shares no code with the kernels and favours being
/// obviously right over being fast. Parameters use the flat packing of <see cref="MlpSpec"/>.
/// </summary>
internal static class ReferenceMlp
{
    /// <summary>h = act(z) in float64.</summary>
    public static double Activate(double z, Activation act) => act switch
    {
        Activation.Relu => Math.Max(0, z),
        Activation.Sigmoid => 1 / (1 + Math.Exp(-z)),
        Activation.Tanh => Math.Tanh(z),
        Activation.LeakyRelu => z > 0 ? z : 0.01 * z,
        _ => z,
    };

    /// <summary>act'(z) written from h = act(z).</summary>
    public static double Derivative(double h, Activation act) => act switch
    {
        Activation.Relu => h > 0 ? 1 : 0,
        Activation.Sigmoid => h * (1 - h),
        Activation.Tanh => 1 - h * h,
        Activation.LeakyRelu => h > 0 ? 1 : 0.01,
        _ => 1,
    };

    /// <summary>Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]) in float64.</summary>
    public static double[] Dense(double[] x, ReadOnlySpan<double> w, ReadOnlySpan<double> b, int m, int n, int k, Activation act)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = b[j];
                for (int p = 0; p < k; p++) s += x[i * k + p] * w[j * k + p];
                y[i * n + j] = Activate(s, act);
            }
        return y;
    }

    /// <summary>C[n,k] = A[m,n]^T . B[m,k].</summary>
    public static double[] MatTN(double[] a, double[] b, int m, int n, int k)
    {
        var c = new double[n * k];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int r = 0; r < m; r++) s += a[r * n + i] * b[r * k + j];
                c[i * k + j] = s;
            }
        return c;
    }

    /// <summary>C[m,k] = A[m,n] . B[n,k], times act'(from h[m,k]) when h is given.</summary>
    public static double[] MatNN(double[] a, double[] b, int m, int n, int k, double[]? h, Activation act = Activation.Relu)
    {
        var c = new double[m * k];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int p = 0; p < n; p++) s += a[i * n + p] * b[p * k + j];
                c[i * k + j] = h == null ? s : s * Derivative(h[i * k + j], act);
            }
        return c;
    }

    /// <summary>Column sums of A[m,n].</summary>
    public static double[] ColumnSums(double[] a, int m, int n)
    {
        var s = new double[n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) s[j] += a[i * n + j];
        return s;
    }

    /// <summary>
    /// Per row of logits Z[m,c]: loss -log softmax(z)[y], correct (argmax == y), and dZ = (P - onehot) * scale, written so that a
    /// confident row keeps its tiny loss and gradient: with max and argmax a, s = sum over j != a of exp(z_j - max) (never formed
    /// as sum - 1), loss = log1p(s) + (max - z_y), P_j = exp(z_j - max) / (1 + s), and the label's gradient when it is the
    /// argmax -s / (1 + s) (not 1 / (1 + s) - 1, which cancels to 0 once s is below 1e-16).
    /// </summary>
    public static (double[] Loss, double[] Correct, double[] DZ) SoftmaxCrossEntropy(double[] z, int[] y, int m, int c, double scale)
    {
        var loss = new double[m];
        var correct = new double[m];
        var dz = new double[m * c];
        for (int i = 0; i < m; i++)
        {
            double max = double.NegativeInfinity;
            int arg = 0;
            for (int j = 0; j < c; j++) if (z[i * c + j] > max) { max = z[i * c + j]; arg = j; }
            double rest = 0;
            for (int j = 0; j < c; j++) if (j != arg) rest += Math.Exp(z[i * c + j] - max);
            loss[i] = Log1p(rest) + (max - z[i * c + y[i]]);
            correct[i] = arg == y[i] ? 1 : 0;
            for (int j = 0; j < c; j++)
            {
                double p = j == arg ? 1 / (1 + rest) : Math.Exp(z[i * c + j] - max) / (1 + rest);
                double g = j != y[i] ? p : j == arg ? -rest / (1 + rest) : p - 1;
                dz[i * c + j] = g * scale;
            }
        }
        return (loss, correct, dz);
    }

    /// <summary>
    /// ln(1 + x) in double, exact to a few ulp also where 1 + x rounds to 1 (Goldberg's trick: with u = 1 + x rounded,
    /// ln(u) x / (u - 1) corrects for u's rounding; where u is 1, ln(1 + x) rounds to x). +inf stays +inf, -1 gives -inf.
    /// </summary>
    public static double Log1p(double x)
    {
        double u = 1 + x;
        if (u == 1 || double.IsPositiveInfinity(x)) return x;
        return Math.Log(u) * x / (u - 1);
    }

    /// <summary>Per row of sigmoid outputs A[m,c]: loss 1/2 sum (a - onehot)^2, correct (argmax == y), dZ = (a - onehot) a (1 - a) * scale.</summary>
    public static (double[] Loss, double[] Correct, double[] DZ) SigmoidSquaredError(double[] a, int[] y, int m, int c, double scale)
    {
        var loss = new double[m];
        var correct = new double[m];
        var dz = new double[m * c];
        for (int i = 0; i < m; i++)
        {
            int arg = 0;
            for (int j = 0; j < c; j++)
            {
                double v = a[i * c + j], d = v - (j == y[i] ? 1 : 0);
                if (v > a[i * c + arg]) arg = j;
                loss[i] += 0.5 * d * d;
                dz[i * c + j] = d * v * (1 - v) * scale;
            }
            correct[i] = arg == y[i] ? 1 : 0;
        }
        return (loss, correct, dz);
    }

    static double[] Slice(double[] p, int offset, int count) => p.AsSpan(offset, count).ToArray();

    /// <summary>Inverted dropout of the hidden layers: the rate and which element (layer, row-major index) is kept.</summary>
    public sealed record DropoutMask(double Rate, Func<int, int, bool> Kept);

    /// <summary>
    /// Forward pass: the activations of every layer (index 0 is X, the last is the logits). With a
    /// dropout mask, each hidden output h becomes kept ? h / (1 - rate) : 0.
    /// </summary>
    public static List<double[]> Forward(MlpSpec spec, double[] p, double[] x, int m, DropoutMask? dropout = null)
    {
        var acts = new List<double[]> { x };
        for (int l = 0; l < spec.Layers; l++)
        {
            var w = p.AsSpan(spec.WeightOffset(l), spec.Out(l) * spec.In(l));
            var b = p.AsSpan(spec.BiasOffset(l), spec.Out(l));
            var h = Dense(acts[^1], w, b, m, spec.Out(l), spec.In(l), spec.LayerActivation(l));
            if (dropout != null && l < spec.Layers - 1)
                for (int i = 0; i < h.Length; i++) h[i] = dropout.Kept(l, i) ? h[i] / (1 - dropout.Rate) : 0;
            acts.Add(h);
        }
        return acts;
    }

    /// <summary>
    /// Mean cost over the batch (cross-entropy, or 1/2 sum of squares for sigmoid outputs) plus
    /// (l2 / 2) * sum of squared weights, its gradient in the flat packing, and the number of correct predictions.
    /// </summary>
    public static (double Loss, double[] Grad, int Correct) LossAndGradient(MlpSpec spec, double[] p, double[] x, int[] y, int m, double l2,
        DropoutMask? dropout = null)
    {
        var acts = Forward(spec, p, x, m, dropout);
        var (rowLoss, rowCorrect, dz) = Cost(spec, acts[^1], y, m);
        var grad = new double[spec.ParameterCount];
        for (int l = spec.Layers - 1; l >= 0; l--)
        {
            int n = spec.Out(l), k = spec.In(l);
            var dw = MatTN(dz, acts[l], m, n, k);
            var db = ColumnSums(dz, m, n);
            Array.Copy(dw, 0, grad, spec.WeightOffset(l), dw.Length);
            Array.Copy(db, 0, grad, spec.BiasOffset(l), db.Length);
            if (l > 0)
            {
                var w = Slice(p, spec.WeightOffset(l), n * k);
                if (dropout == null)
                    dz = MatNN(dz, w, m, n, k, acts[l], spec.LayerActivation(l - 1));
                else
                {
                    // through the dropout (mask and 1/(1 - rate)), then act' of the undropped output
                    dz = MatNN(dz, w, m, n, k, null);
                    for (int i = 0; i < dz.Length; i++)
                        dz[i] = dropout.Kept(l - 1, i)
                            ? dz[i] / (1 - dropout.Rate) * Derivative(acts[l][i] * (1 - dropout.Rate), spec.LayerActivation(l - 1))
                            : 0;
                }
            }
        }
        for (int i = 0; i < spec.WeightCount; i++) grad[i] += l2 * p[i];
        return (rowLoss.Sum() / m + L2Term(spec, p, l2), grad, (int)rowCorrect.Sum());
    }

    /// <summary>The loss alone (no backward pass): mean cost over the batch plus (l2 / 2) * sum of squared weights. For finite differences.</summary>
    public static double Loss(MlpSpec spec, double[] p, double[] x, int[] y, int m, double l2 = 0) =>
        Cost(spec, Forward(spec, p, x, m)[^1], y, m).Loss.Sum() / m + L2Term(spec, p, l2);

    /// <summary>The output layer's cost per row, with dZ scaled by 1/m (the mean over the batch).</summary>
    static (double[] Loss, double[] Correct, double[] DZ) Cost(MlpSpec spec, double[] output, int[] y, int m) =>
        spec.Loss == LossKind.SigmoidSquaredError
            ? SigmoidSquaredError(output, y, m, spec.Classes, 1.0 / m)
            : SoftmaxCrossEntropy(output, y, m, spec.Classes, 1.0 / m);

    /// <summary>(l2 / 2) * sum of squared weights (biases excluded).</summary>
    static double L2Term(MlpSpec spec, double[] p, double l2)
    {
        if (l2 == 0) return 0;
        double reg = 0;
        for (int i = 0; i < spec.WeightCount; i++) reg += p[i] * p[i];
        return 0.5 * l2 * reg;
    }

    /// <summary>
    /// SGD with momentum, the data gradient given (L2 is added here, weights only):
    /// g = grad + l2 * p (i &lt; weightCount); v = momentum * v + g; p -= lr * v.
    /// </summary>
    public static void SgdMomentum(double[] p, double[] dataGrad, double[] v, double lr, double momentum, double l2, int weightCount)
    {
        for (int i = 0; i < p.Length; i++)
        {
            double g = dataGrad[i] + (i < weightCount ? l2 * p[i] : 0);
            v[i] = momentum * v[i] + g;
            p[i] -= lr * v[i];
        }
    }

    /// <summary>Nesterov momentum (PyTorch form): g = grad + l2 p (weights); v = momentum v + g; p -= lr (g + momentum v).</summary>
    public static void Nesterov(double[] p, double[] dataGrad, double[] v, double lr, double momentum, double l2, int weightCount)
    {
        for (int i = 0; i < p.Length; i++)
        {
            double g = dataGrad[i] + (i < weightCount ? l2 * p[i] : 0);
            v[i] = momentum * v[i] + g;
            p[i] -= lr * (g + momentum * v[i]);
        }
    }

    /// <summary>
    /// Adam (L2 added to the gradient) or AdamW (decoupled: weights decay by lr l2 p), step t 1-based:
    /// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    /// </summary>
    public static void Adam(double[] p, double[] dataGrad, double[] m, double[] v, double lr, double beta1, double beta2, double eps,
        long t, double l2, bool decoupled, int weightCount)
    {
        for (int i = 0; i < p.Length; i++)
        {
            double decay = i < weightCount ? l2 * p[i] : 0;
            double g = dataGrad[i] + (decoupled ? 0 : decay);
            m[i] = beta1 * m[i] + (1 - beta1) * g;
            v[i] = beta2 * v[i] + (1 - beta2) * g * g;
            double mh = m[i] / (1 - Math.Pow(beta1, t)), vh = v[i] / (1 - Math.Pow(beta2, t));
            p[i] -= lr * (mh / (Math.Sqrt(vh) + eps) + (decoupled ? decay : 0));
        }
    }
}
