"""Loads a safetensors file written by `gpu export --format safetensors` with plain torch (no `safetensors`
package: the 8-byte header length, the JSON header, torch.frombuffer), builds the torch.nn.Sequential its
metadata names, runs it on raw pixels with the engine's preprocessing, and writes the outputs.

usage: safetensors_logits.py MODEL.safetensors PIXELS.npy (float32 [N, features], 0..255) OUT.npy
"""
import json
import struct
import sys

import numpy as np
import torch


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    body = bytearray(data[8 + n:])
    tensors = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", (name, t["dtype"])
        begin, end = t["data_offsets"]
        tensors[name] = torch.frombuffer(body[begin:end], dtype=torch.float32).reshape(t["shape"]).clone()
    return tensors, meta


ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "leaky-relu": lambda: torch.nn.LeakyReLU(0.01)}


def build(meta):
    sizes = [int(s) for s in meta["layers"].split("-")]
    modules = []
    for l in range(len(sizes) - 1):
        modules.append(torch.nn.Linear(sizes[l], sizes[l + 1]))
        if l < len(sizes) - 2:
            modules.append(ACTIVATIONS[meta["activation"]]())
    if meta["loss"] == "sigmoid-sse":
        modules.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*modules)


def main():
    model_path, pixels_path, out_path = sys.argv[1:4]
    tensors, meta = load(model_path)
    net = build(meta)
    assert str(net).replace("\n", "").replace(" ", "") != "", "empty module"
    net.load_state_dict(tensors, strict=True)
    pixels = torch.from_numpy(np.load(pixels_path)).float()
    with torch.no_grad():
        out = net(pixels * (1.0 / 255.0) - 0.5)   # the engine's x / 255 - 0.5 (model metadata: preprocessing)
    np.save(out_path, out.numpy().astype(np.float32))
    print(f"{meta['torch_module']}: {tuple(out.shape)} outputs")


if __name__ == "__main__":
    main()
