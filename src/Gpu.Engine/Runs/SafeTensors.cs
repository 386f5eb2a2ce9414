using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gpu.Engine.Runs;

/// <summary>One tensor of a safetensors file: its dtype word (F32, F64, BF16, ...), shape, and its values when the dtype is F32 (else null).</summary>
internal sealed record SafeTensor(string Name, string DType, long[] Shape, float[]? Values)
{
    /// <summary>"[256, 784]"</summary>
    public string ShapeText => $"[{string.Join(", ", Shape)}]";
}

/// <summary>
/// The safetensors format (what <c>safetensors.torch.save_file</c> writes and <c>load_file</c> reads), read
/// and written here only: an 8-byte little-endian header length N, N bytes of JSON
/// (<c>{"__metadata__": {string: string}, NAME: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}</c>,
/// padded with spaces to a multiple of 8), then the tensors' little-endian bytes, offsets counted from the
/// end of the header. The engine writes float32 (F32) only; reading keeps every tensor's dtype and shape and
/// decodes F32 values. A malformed file is a <see cref="UserError"/> naming it.
/// </summary>
internal static class SafeTensors
{
    public const string Extension = ".safetensors";

    static readonly Dictionary<string, int> ElementBytes = new()
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E4M3"] = 1, ["F8_E5M2"] = 1, ["I16"] = 2, ["U16"] = 2, ["F16"] = 2, ["BF16"] = 2,
        ["I32"] = 4, ["U32"] = 4, ["F32"] = 4, ["I64"] = 8, ["U64"] = 8, ["F64"] = 8,
    };

    /// <summary>Writes float32 tensors (in the given order) and string metadata to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, IReadOnlyList<(string Name, long[] Shape, float[] Values)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))) };
        long offset = 0;
        foreach (var (name, shape, values) in tensors)
        {
            if (shape.Aggregate(1L, (a, b) => a * b) != values.Length) throw new ArgumentException($"{name}: shape [{string.Join(", ", shape)}] for {values.Length} values");
            header[name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray(shape.Select(s => (JsonNode)s).ToArray()),
                ["data_offsets"] = new JsonArray(new JsonNode[] { offset, offset + 4L * values.Length }),   // an array: the params-span overload's inline array trips the layer test's IL reader
            };
            offset += 4L * values.Length;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        var bytes = new byte[8 + padded + offset];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)padded);
        json.CopyTo(bytes, 8);
        for (int i = 8 + json.Length; i < 8 + padded; i++) bytes[i] = (byte)' ';
        long at = 8 + padded;
        foreach (var (_, _, values) in tensors)
            foreach (var v in values) { BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan((int)at), v); at += 4; }
        AtomicFile.Write(path, tmp => File.WriteAllBytes(tmp, bytes));
    }

    /// <summary>The tensors (in file order) and metadata of a safetensors file.</summary>
    public static (IReadOnlyList<SafeTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new UserError($"{path}: cannot read it ({e.Message.TrimEnd('.')})"); }
        UserError Bad(string why) => new($"{path}: not a valid safetensors file ({why})");
        if (bytes.Length < 8) throw Bad("shorter than its 8-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (n > (ulong)(bytes.Length - 8)) throw Bad($"header length {n} but the file holds {bytes.Length} bytes");
        JsonObject header;
        try { header = JsonText.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n)).AsObject(); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or DecoderFallbackException) { throw Bad("its header is not a JSON object"); }
        long dataStart = 8 + (long)n, dataLength = bytes.Length - dataStart;
        var metadata = new Dictionary<string, string>();
        var tensors = new List<(long Begin, SafeTensor Tensor)>();
        foreach (var (name, node) in header)
        {
            try
            {
                if (name == "__metadata__")
                {
                    foreach (var (k, v) in node!.AsObject()) metadata[k] = (string)v!;
                    continue;
                }
                string dtype = (string)node!["dtype"]!;
                long[] shape = node["shape"]!.AsArray().Select(s => (long)s!).ToArray();
                var offsets = node["data_offsets"]!.AsArray().Select(s => (long)s!).ToArray();
                if (!ElementBytes.TryGetValue(dtype, out int size)) throw Bad($"tensor {name}: unknown dtype {dtype}");
                if (shape.Any(s => s < 0)) throw Bad($"tensor {name}: negative shape");
                long count = shape.Aggregate(1L, (a, b) => a * b);
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength || offsets[1] - offsets[0] != count * size)
                    throw Bad($"tensor {name}: data_offsets [{string.Join(", ", offsets)}] do not hold {count} {dtype} values within {dataLength} bytes of data");
                float[]? values = null;
                if (dtype == "F32")
                {
                    values = new float[count];
                    for (long i = 0; i < count; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)(dataStart + offsets[0] + 4 * i)));
                }
                tensors.Add((offsets[0], new SafeTensor(name, dtype, shape, values)));
            }
            catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or OverflowException)
            {
                throw Bad($"entry {name} is malformed");
            }
        }
        return (tensors.OrderBy(t => t.Begin).Select(t => t.Tensor).ToList(), metadata);
    }
}
