using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gpu.Engine;

/// <summary>
/// Parses the JSON files the program reads back (model.json, state.json, search.json) completely at once:
/// <see cref="JsonNode.Parse(string, JsonNodeOptions?, JsonDocumentOptions)"/> builds objects lazily and
/// would only find a repeated key ("An item with the same key has already been added") when a reader
/// first touches it. Here every problem is a <see cref="JsonException"/> from the parse itself.
/// </summary>
internal static class JsonText
{
    public static JsonNode Parse(string text)
    {
        var node = JsonNode.Parse(text) ?? throw new JsonException("empty (null)");
        try { Touch(node); }
        catch (ArgumentException e) { throw new JsonException(e.Message.Split(" (Parameter")[0]); }
        return node;
    }

    /// <summary>A file's bytes parsed as <see cref="File.ReadAllText(string)"/> reads them (UTF-8, a byte order mark skipped), for a reader that also digests those bytes.</summary>
    public static JsonNode Parse(byte[] utf8)
    {
        using var reader = new StreamReader(new MemoryStream(utf8), System.Text.Encoding.UTF8);
        return Parse(reader.ReadToEnd());
    }

    static void Touch(JsonNode? node)
    {
        if (node is JsonObject o) foreach (var (_, v) in o) Touch(v);
        else if (node is JsonArray a) foreach (var v in a) Touch(v);
    }
}
