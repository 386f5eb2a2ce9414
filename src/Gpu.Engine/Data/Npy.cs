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
public static class Npy
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
        long count = long.Parse(shape.Groups[1].Value);
        long dataBytes = bytes.Length - 10 - headerLength;
        if (dataBytes != 4 * count) throw new UserError($"{name}: .npy header promises {count} float32 values but the file holds {dataBytes} bytes of data");
        var values = new float[count];
        int start = 10 + headerLength;
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(start + 4 * i));
        return values;
    }
}
