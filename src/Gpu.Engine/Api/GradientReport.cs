using System.Globalization;
using Gpu.Engine;
using Gpu.Engine.Analysis;

namespace Gpu;

/// <summary>
/// A gradient check (<see cref="Network.CheckGradients"/>, <c>gpu gradcheck</c>): the device's analytic gradient of the data
/// loss against float64 central differences, as scipy.optimize.check_grad compares them.
/// </summary>
public sealed class GradientReport
{
    readonly GradientCheckResult result;

    /// <summary>The central difference's default step: small enough for the truncation error, large enough for float64 rounding.</summary>
    public const double DefaultEpsilon = GradientCheck.DefaultEpsilon;

    internal GradientReport(GradientCheckResult result, IReadOnlyList<CheckedGradient> parameters)
    {
        this.result = result; Parameters = parameters;
    }

    /// <summary>Every checked parameter.</summary>
    public IReadOnlyList<CheckedGradient> Parameters { get; }

    /// <summary>||analytic - numeric|| over the checked parameters not at a kink (what check_grad returns).</summary>
    public double DifferenceNorm => result.DifferenceNorm;

    /// <summary>||numeric|| over the same parameters.</summary>
    public double NumericNorm => result.NumericNorm;

    /// <summary>||analytic - numeric|| / ||numeric||; infinite when the analytic gradient holds NaN or Inf.</summary>
    public double RelativeError => result.RelativeError;

    /// <summary>The data loss on the device (float32) and in the float64 reference.</summary>
    public double DeviceLoss => result.DeviceLoss;

    /// <summary>The float64 reference's data loss.</summary>
    public double ReferenceLoss => result.ReferenceLoss;

    /// <summary>The central difference's step.</summary>
    public double Epsilon => result.Epsilon;

    /// <summary>The floor under the element-wise relative error's denominator: |a - n| / max(|a|, |n|, floor).</summary>
    public double ElementFloor => result.ElementFloor;

    /// <summary>The parameter with the largest element-wise relative error, kinks left out; null when all are kinks.</summary>
    public CheckedGradient? Worst => Parameters.Where(p => !p.Kink).MaxBy(p => p.RelativeError);

    /// <summary>Checked parameters with a ReLU switching within plus or minus epsilon (their central difference is not the derivative; left out of the norms).</summary>
    public int Kinks => result.Kinks;

    /// <summary>Writes every checked parameter as CSV (index, layer, param, row, col, analytic, numeric, abs_diff, rel_error, kink), atomically.</summary>
    public void WriteCsv(string path)
    {
        var sb = new System.Text.StringBuilder("index,layer,param,row,col,analytic,numeric,abs_diff,rel_error,kink\n");
        foreach (var p in Parameters)
            sb.Append(CultureInfo.InvariantCulture,
                $"{p.Index},{p.Layer},{(p.IsWeight ? "W" : "b")},{p.Row},{(p.IsWeight ? p.Col.ToString(CultureInfo.InvariantCulture) : "")}," +
                $"{p.Analytic:R},{p.Numeric:R},{Math.Abs(p.Analytic - p.Numeric):R},{p.RelativeError:R},{(p.Kink ? 1 : 0)}\n");
        AtomicFile.WriteAllText(path, sb.ToString());
    }
}

/// <summary>One checked parameter of a <see cref="GradientReport"/>.</summary>
/// <param name="Index">Its index in the flat parameter vector.</param>
/// <param name="Layer">Its layer, counted from 1 (layer 1 maps the inputs).</param>
/// <param name="IsWeight">A weight (else a bias).</param>
/// <param name="Row">Its row (the unit), from 0.</param>
/// <param name="Col">Its column (the input) for a weight; 0 for a bias.</param>
/// <param name="Analytic">The device's gradient.</param>
/// <param name="Numeric">The float64 central difference.</param>
/// <param name="RelativeError">|a - n| / max(|a|, |n|, floor).</param>
/// <param name="Kink">A ReLU switches within plus or minus epsilon of it.</param>
public sealed record CheckedGradient(int Index, int Layer, bool IsWeight, int Row, int Col, double Analytic, double Numeric, double RelativeError, bool Kink)
{
    /// <summary>"layer 1 W" or "layer 2 b": the part it belongs to.</summary>
    public string Part => $"layer {Layer} {(IsWeight ? "W" : "b")}";

    /// <summary>"layer 1 W[12, 345]" or "layer 3 b[7]".</summary>
    public string Where => IsWeight ? $"layer {Layer} W[{Row}, {Col}]" : $"layer {Layer} b[{Row}]";
}
