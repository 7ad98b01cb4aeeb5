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

# --- pickle: torch zip files written by hand (no torch needed): a pickle of protocol 2 that
# builds {"state_dict": {name: tensor}} with _rebuild_tensor_v2, plus broken and hostile variants.
import io
import zipfile

def u(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b

def i1(v):
    return b"K" + bytes([v])

def tup(*items):
    return b"(" + b"".join(items) + b"t"

def tensor_pkl(storage_cls, key, numel, offset, size, stride):
    pid = tup(u("storage"), b"c" + b"torch\n" + storage_cls.encode() + b"\n", u(key), u("cpu"), i1(numel)) + b"Q"
    ordered = b"ccollections\nOrderedDict\n)R"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n" + tup(pid, i1(offset), tup(*[i1(s) for s in size]),
            tup(*[i1(s) for s in stride]), b"\x89", ordered) + b"R")

def state_dict_pkl(entries, extra=b""):
    body = b"".join(u(name) + t for name, t in entries)
    return b"\x80\x02}" + b"(" + u("state_dict") + b"}(" + body + b"u" + extra + b"u."

def torch_zip(pkl, records, extra_members=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        def add(name, data):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, data)
        add("archive/data.pkl", pkl)
        add("archive/byteorder", b"little")
        for key, data in records.items():
            add("archive/data/" + key, data)
        add("archive/version", b"3\n")
        for name, data in extra_members:
            add(name, data)
    return buf.getvalue()

f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
valid_pkl = state_dict_pkl([
    ("a.weight", tensor_pkl("FloatStorage", "0", 6, 0, [2, 3], [3, 1])),
    ("a.t", tensor_pkl("FloatStorage", "0", 6, 0, [3, 2], [1, 3])),        # transposed view
    ("b", tensor_pkl("HalfStorage", "1", 2, 1, [1], [1])),                   # offset view
])
PICKLE = {
    "valid.ckpt": torch_zip(valid_pkl, {"0": f32, "1": b"\x00\x3c\x00\x40"}),
    "short-record.ckpt": torch_zip(valid_pkl, {"0": f32[:8], "1": b"\x00\x3c\x00\x40"}),
    "view-past-storage.ckpt": torch_zip(state_dict_pkl([("v", tensor_pkl("FloatStorage", "0", 6, 4, [2, 3], [3, 1]))]),
                                        {"0": f32}),
    "bad-global.ckpt": torch_zip(b"\x80\x02cos\nsystem\n" + u("touch x") + b"\x85R.", {}),
    "traversal.ckpt": torch_zip(valid_pkl, {"0": f32, "1": b"\0" * 4}, [("../../x", b"")]),
    "bare-pickle.pkl": valid_pkl,
    "truncated.ckpt": torch_zip(valid_pkl, {"0": f32, "1": b"\0" * 4})[:300],
    "huge-binbytes.ckpt": torch_zip(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"xx.", {}),
}
for name, data in PICKLE.items():
    write("tests/fuzz/corpus/pickle", name, data)
