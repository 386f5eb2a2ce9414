namespace Gpu.Engine.Data;

/// <summary>Names to print for class numbers: Fashion-MNIST's ten garment names, or the numbers themselves (digits for MNIST).</summary>
internal static class ClassNames
{
    public static readonly string[] FashionMnist =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// The names for the <paramref name="classes"/> classes of the data that <paramref name="data"/> describes
    /// (a data source, folder or dataset name): Fashion-MNIST's when it mentions "fashion" and has ten classes, else "0", "1", ...
    /// </summary>
    public static string[] For(string? data, int classes) =>
        classes == FashionMnist.Length && data != null && data.Contains("fashion", StringComparison.OrdinalIgnoreCase)
            ? FashionMnist
            : Enumerable.Range(0, classes).Select(c => c.ToString()).ToArray();
}
