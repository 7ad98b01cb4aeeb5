#!/usr/bin/env python3
# tests/fuzz/make-corpus.py: writes the hand-made seed files of the safetensors and shard-index
# fuzz corpora (valid and broken, each under 2 KB). Run from the repository root; deterministic.
import json
import os
import struct

def st(header, data=b"", claimed=None):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    n = len(h) if claimed is None else claimed
    return struct.pack("<Q", n) + h + data

def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}

SAFETENSORS = {
    "valid-mixed.safetensors": st({"__metadata__": {"format": "pt", "modelspec.prediction_type": "v"},
                                   "a": t("F32", [2], 0, 8), "b": t("F16", [2, 2], 8, 16),
                                   "model.diffusion_model.input_blocks.0.0.weight": t("I64", [1], 16, 24)},
                                  bytes(range(24))),
    "valid-empty.safetensors": st({}),
    "valid-scalar-zero.safetensors": st({"s": t("BF16", [], 0, 2), "z": t("F32", [0, 3], 2, 2),
                                         "u": t("U8", [3], 2, 5)}, b"\x80\x3f\x01\x02\x03"),
    "truncated-data.safetensors": st({"a": t("F32", [4], 0, 16)}, b"\0" * 8),
    "header-past-end.safetensors": st({"a": t("F32", [1], 0, 4)}, b"\0" * 4, claimed=4096),
    "overlap.safetensors": st({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 4, 12)}, b"\0" * 16),
    "bad-dtype.safetensors": st({"a": t("F33", [1], 0, 4)}, b"\0" * 4),
    "metadata-not-string.safetensors": st({"__metadata__": {"k": 1}}),
    "shape-overflow.safetensors": st({"a": t("F64", [4294967296, 4294967296], 0, 8)}, b"\0" * 8),
    "not-json.safetensors": st(b"{\"a\":{\"dtype\":\"F32\",", b"\0" * 4),
}

SHARD_INDEX = {
    "valid.json": {"metadata": {"total_size": 24},
                   "weight_map": {"conv_in.weight": "m-00001-of-00002.safetensors",
                                  "conv_in.bias": "m-00001-of-00002.safetensors",
                                  "conv_out.weight": "sub/m-00002-of-00002.safetensors"}},
    "traversal.json": {"weight_map": {"a": "../../etc/passwd.safetensors"}},
    "absolute.json": {"weight_map": {"a": "/tmp/x.safetensors"}},
    "not-string.json": {"weight_map": {"a": 7}},
    "empty-map.json": {"weight_map": {}},
}

def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)

for name, data in SAFETENSORS.items():
    write("tests/fuzz/corpus/safetensors", name, data)
for name, obj in SHARD_INDEX.items():
    write("tests/fuzz/corpus/shard-index", name, json.dumps(obj, indent=1).encode())
write("tests/fuzz/corpus/shard-index", "duplicate-key.json",
      b'{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}')
