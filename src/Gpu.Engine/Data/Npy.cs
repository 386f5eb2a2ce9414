using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;

namespace Gpu.Engine.Data;

/// <summary>
/// NumPy .npy format version 1.0 for one-dimensional little-endian float32 vectors ('&lt;f4'), the
/// format of checkpoint parameter and momentum vectors: <c>np.load("model.npy")</c> reads them.
/// Layout: "\x93NUMPY", version 1 0, uint16 little-endian header length, an ASCII Python dict
/// header padded with spaces and ended by '\n' so the data starts at a multiple of 64 bytes, then the data.
/// </summary>
internal static class Npy
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static byte[] Encode(float[] values)
    {
        string dict = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({values.Length},), }}";
        int unpadded = Magic.Length + 2 + 2 + dict.Length + 1;
        int headerLength = dict.Length + 1 + (64 - unpadded % 64) % 64;
        var header = dict.PadRight(headerLength - 1) + "\n";
        var bytes = new byte[Magic.Length + 4 + headerLength + 4L * values.Length];
        Magic.CopyTo(bytes, 0);
        bytes[6] = 1; bytes[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)headerLength);
        Encoding.ASCII.GetBytes(header, bytes.AsSpan(10));
        int start = 10 + headerLength;
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(start + 4 * i), values[i]);
        return bytes;
    }

    /// <summary>Decodes a 1-D '&lt;f4' .npy file; anything else is a <see cref="UserError"/> naming <paramref name="name"/>.</summary>
    public static float[] Decode(byte[] bytes, string name)
    {
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
            throw new UserError($"{name}: not a NumPy .npy file (bad magic)");
        if (bytes[6] != 1) throw new UserError($"{name}: .npy format version {bytes[6]}.{bytes[7]}; expected 1.0");
        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        if (bytes.Length < 10 + headerLength) throw new UserError($"{name}: truncated .npy header");
        string header = Encoding.ASCII.GetString(bytes, 10, headerLength);
        if (!Regex.IsMatch(header, @"'descr':\s*'<f4'")) throw new UserError($"{name}: .npy data type is not little-endian float32 ('<f4')");
        if (!Regex.IsMatch(header, @"'fortran_order':\s*False")) throw new UserError($"{name}: .npy array in Fortran order; expected C order");
        var shape = Regex.Match(header, @"'shape':\s*\((\d+),\)");
        if (!shape.Success) throw new UserError($"{name}: .npy array is not one-dimensional (header {header.Trim()})");
        long dataBytes = bytes.Length - 10 - headerLength;
        if (!long.TryParse(shape.Groups[1].Value, out long count) || count > dataBytes / 4)
            throw new UserError($"{name}: .npy header promises {shape.Groups[1].Value} float32 values but the file holds {dataBytes} bytes of data: truncated or corrupt");
        if (dataBytes != 4 * count) throw new UserError($"{name}: .npy header promises {count} float32 values but the file holds {dataBytes} bytes of data");
        var values = new float[count];
        int start = 10 + headerLength;
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(start + 4 * i));
        return values;
    }

    /// <summary>An n-dimensional array read from a .npy file, converted to double.</summary>
    public sealed record Array(int[] Shape, double[] Values, string Descr)
    {
        public bool IsInteger => Descr[1] is 'u' or 'i' or 'b';
    }

    /// <summary>
    /// Reads any C-order .npy (version 1.0 to 3.0) of booleans, integers (1, 2, 4 or 8 bytes, signed or
    /// unsigned) or floats (4 or 8 bytes), little-endian or byte-sized, of any number of dimensions.
    /// </summary>
    public static Array Read(string path)
    {
        InputFile.Require(path);
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException e) { throw new UserError($"{path}: cannot read ({e.Message.TrimEnd('.')})"); }
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
            throw new UserError($"{path}: not a NumPy .npy file (bad magic)");
        int major = bytes[6];
        if (major is < 1 or > 3) throw new UserError($"{path}: .npy format version {major}.{bytes[7]}; expected 1.0 to 3.0");
        int lengthBytes = major == 1 ? 2 : 4;
        if (bytes.Length < 8 + lengthBytes) throw new UserError($"{path}: truncated .npy header");
        long headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)) : BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        if (bytes.Length < 8 + lengthBytes + headerLength)
            throw new UserError($"{path}: corrupt or truncated .npy header (it claims {headerLength:N0} bytes; the file holds {bytes.Length:N0})");
        int start = 8 + lengthBytes + (int)headerLength;
        string header = Encoding.Latin1.GetString(bytes, 8 + lengthBytes, (int)headerLength);
        var descr = Regex.Match(header, @"'descr':\s*'([<>|=])([biuf])(\d+)'");
        if (!descr.Success) throw new UserError($"{path}: unsupported .npy data type (header {header.Trim()}); use integers or floats");
        if (Regex.IsMatch(header, @"'fortran_order':\s*True")) throw new UserError($"{path}: .npy array in Fortran order; save it with np.ascontiguousarray");
        char order = descr.Groups[1].Value[0], kind = descr.Groups[2].Value[0];
        int size = int.Parse(descr.Groups[3].Value);
        if (order == '>' && size > 1) throw new UserError($"{path}: big-endian .npy data; convert it with arr.astype(arr.dtype.newbyteorder('<'))");
        if (kind == 'f' && size is not (4 or 8) || kind != 'f' && size is not (1 or 2 or 4 or 8))
            throw new UserError($"{path}: unsupported .npy element size {kind}{size}");
        var shapeText = Regex.Match(header, @"'shape':\s*\(([^)]*)\)");
        if (!shapeText.Success) throw new UserError($"{path}: .npy header has no shape");
        int[] shape = shapeText.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(t => int.TryParse(t, out int v) && v >= 0 ? v : throw new UserError($"{path}: bad .npy shape ({shapeText.Groups[1].Value})")).ToArray();
        long count = 1;
        foreach (int d in shape)   // checked as it grows, so no product of sizes can overflow
            if ((count *= d) > bytes.Length)
                throw new UserError($"{path}: .npy header promises {string.Join(" x ", shape)} values but the file holds {bytes.Length - start} bytes: truncated or corrupt");
        if (bytes.Length - start != count * size)
            throw new UserError($"{path}: .npy header promises {count} values of {size} bytes ({string.Join(" x ", shape)}) but the file holds {bytes.Length - start} bytes: truncated or corrupt");
        var values = new double[count];
        var data = bytes.AsSpan(start);
        for (long i = 0; i < count; i++)
        {
            var e = data.Slice((int)(i * size), size);
            values[i] = (kind, size) switch
            {
                ('f', 4) => BinaryPrimitives.ReadSingleLittleEndian(e),
                ('f', 8) => BinaryPrimitives.ReadDoubleLittleEndian(e),
                ('u' or 'b', 1) => e[0],
                ('i', 1) => (sbyte)e[0],
                ('u', 2) => BinaryPrimitives.ReadUInt16LittleEndian(e),
                ('i', 2) => BinaryPrimitives.ReadInt16LittleEndian(e),
                ('u', 4) => BinaryPrimitives.ReadUInt32LittleEndian(e),
                ('i', 4) => BinaryPrimitives.ReadInt32LittleEndian(e),
                ('u', 8) => BinaryPrimitives.ReadUInt64LittleEndian(e),
                _ => BinaryPrimitives.ReadInt64LittleEndian(e),
            };
        }
        return new Array(shape, values, descr.Value);
    }
}
