namespace Gpu.Engine.Analysis;

/// <summary>
/// The plane of the first two principal components of a trajectory: unit directions (length P),
/// the share of the variance each explains, and every recorded vector's coordinates (A, B) relative
/// to the origin (the final vector, so the end of the path is (0, 0)).
/// </summary>
internal sealed record PcaPlane(double[] Direction1, double[] Direction2, double Explained1, double Explained2, double[] A, double[] B);

/// <summary>
/// PCA of T recorded parameter vectors of P values each, as in Li et al. 2018, "Visualizing the Loss
/// Landscape of Neural Nets": the principal components of theta_t - theta_final (centred by their
/// mean, as sklearn's PCA does, so the directions are those of the trajectory itself), found through
/// the T x T Gram matrix of the centred vectors rather than the P x P covariance, so it stays cheap for
/// P = 235,146: if G = C C^T = U L U^T, the k-th direction is C^T u_k / sqrt(l_k) and explains l_k / trace(G).
/// </summary>
internal static class TrajectoryPca
{
    /// <summary>At most this many vectors: the Gram matrix costs T^2 P / 2 products and the eigensolver T^3.</summary>
    public const int MaxVectors = 500;

    public static PcaPlane Fit(IReadOnlyList<float[]> vectors, float[] origin)
    {
        int t = vectors.Count, p = origin.Length;
        if (t < 3) throw new UserError($"the trajectory has {t} recorded points; a plane needs at least 3: train longer or give a smaller --record-every");
        if (t > MaxVectors) throw new UserError($"the trajectory has {t} recorded points; at most {MaxVectors} are supported: give a larger --record-every");
        foreach (var v in vectors)
            if (v.Length != p) throw new ArgumentException("every vector must have the origin's length");

        var mean = new double[p];
        foreach (var v in vectors)
            for (int i = 0; i < p; i++) mean[i] += v[i];
        for (int i = 0; i < p; i++) mean[i] /= t;
        // (v_i - mean) . (v_j - mean) on the fly: T centred copies of P doubles would not fit for long trajectories
        var gram = new double[t, t];
        Parallel.For(0, t, i =>
        {
            var ci = Centred(vectors[i], mean);
            for (int j = 0; j <= i; j++)
            {
                double s = 0;
                var b = vectors[j];
                for (int k = 0; k < p; k++) s += ci[k] * (b[k] - mean[k]);
                gram[i, j] = s;
                gram[j, i] = s;
            }
        });
        double trace = 0;
        for (int i = 0; i < t; i++) trace += gram[i, i];
        if (!(trace > 0)) throw new UserError("the recorded parameter vectors are all equal: the training did not move (check --lr)");

        var (values, eigvecs) = SymmetricEigen(gram);
        double[] Direction(int k)
        {
            var d = new double[p];
            for (int row = 0; row < t; row++)
            {
                double u = eigvecs[row, k];
                var v = vectors[row];
                for (int i = 0; i < p; i++) d[i] += u * (v[i] - mean[i]);
            }
            double norm = Math.Sqrt(d.Sum(v => v * v));
            if (norm > 0) for (int i = 0; i < p; i++) d[i] /= norm;
            return d;
        }
        double[] d1 = Direction(0), d2 = Direction(1);
        double[] Project(double[] d) => vectors.Select(v =>
        {
            double s = 0;
            for (int i = 0; i < p; i++) s += (v[i] - (double)origin[i]) * d[i];
            return s;
        }).ToArray();
        return new PcaPlane(d1, d2, Math.Max(0, values[0]) / trace, Math.Max(0, values[1]) / trace, Project(d1), Project(d2));
    }

    static double[] Centred(float[] v, double[] mean)
    {
        var c = new double[v.Length];
        for (int i = 0; i < v.Length; i++) c[i] = v[i] - mean[i];
        return c;
    }

    /// <summary>
    /// Eigenvalues (descending) and eigenvectors (columns, unit length) of a symmetric matrix by cyclic
    /// Jacobi rotations: slow for large matrices, but simple and accurate to rounding.
    /// </summary>
    public static (double[] Values, double[,] Vectors) SymmetricEigen(double[,] matrix)
    {
        int n = matrix.GetLength(0);
        var a = (double[,])matrix.Clone();
        var v = new double[n, n];
        for (int i = 0; i < n; i++) v[i, i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, diag = 0;
            for (int i = 0; i < n; i++)
            {
                diag += a[i, i] * a[i, i];
                for (int j = i + 1; j < n; j++) off += a[i, j] * a[i, j];
            }
            if (off <= 1e-30 * diag || off == 0) break;
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    if (a[p, q] == 0) continue;
                    // the rotation that zeroes a[p, q] (Golub & Van Loan, symmetric Schur decomposition)
                    double theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
                    double tan = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    double c = 1 / Math.Sqrt(tan * tan + 1), s = tan * c;
                    for (int k = 0; k < n; k++)
                    {
                        double akp = a[k, p], akq = a[k, q];
                        a[k, p] = c * akp - s * akq;
                        a[k, q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double apk = a[p, k], aqk = a[q, k];
                        a[p, k] = c * apk - s * aqk;
                        a[q, k] = s * apk + c * aqk;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double vkp = v[k, p], vkq = v[k, q];
                        v[k, p] = c * vkp - s * vkq;
                        v[k, q] = s * vkp + c * vkq;
                    }
                }
        }
        var order = Enumerable.Range(0, n).OrderByDescending(i => a[i, i]).ToArray();
        var values = order.Select(i => a[i, i]).ToArray();
        var vectors = new double[n, n];
        for (int col = 0; col < n; col++)
            for (int row = 0; row < n; row++) vectors[row, col] = v[row, order[col]];
        return (values, vectors);
    }
}
