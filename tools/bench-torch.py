#!/usr/bin/env python3
"""tools/bench-torch.py: PyTorch's time for the ops that `easel-cli bench --ops` timed, on the same
shapes, and the two side by side.

    easel-cli bench --ops --family all --backend vulkan --out ops-easel.tsv
    python3 tools/bench-torch.py ops-easel.tsv --out ops-torch.tsv

Reads the shape keys of Easel's TSV (column `key`, e.g. "linear M=8192 K=320 N=1280",
"conv2d B=2 C=320 H=64 W=64 O=320 k=3 s=1 p=1", "attention B=2 H=8 Lq=4096 Lk=4096 D=40",
"group_norm B=2 C=320 HW=4096 G=32 silu=1", "layer_norm [2, 4096, 320]", "geglu [2, 4096, 1280]"),
runs each once per distinct key on CUDA in fp16 (torch.nn.functional.linear, conv2d on NCHW,
scaled_dot_product_attention on (B, H, L, D), group_norm (+ silu), layer_norm, chunk + gelu),
timed with CUDA events after warm-up, writes TSV (key, op, torch_ms, tflops, gbps) and prints the
joined table: Easel ms, torch ms and their ratio easel/torch per row, then per op kind and per
UNet step the sums weighted by how often a step runs each shape. Needs only python3 and torch.
--join-only TORCH_TSV re-prints the join from an earlier run without a GPU.
"""
import argparse
import csv
import re
import sys
import time


def parse_key(key):
    """(op, params) from a shape key; params: dict of ints, or 'shape' for the bracketed forms."""
    op, _, rest = key.partition(" ")
    if rest.startswith("["):
        return op, {"shape": [int(v) for v in rest.strip("[]").split(",") if v.strip()]}
    params = {}
    for tok in rest.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            params[k] = int(v)
        else:
            params[tok] = 1            # flags: causal, extra
    return op, params


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def make_case(torch, op, p):
    """A closure running the op once on fresh fp16 CUDA tensors of the key's shape."""
    F = torch.nn.functional
    dev, dt = "cuda", torch.float16

    def rnd(*shape, scale=1.0):
        return torch.randn(*shape, device=dev, dtype=dt) * scale

    if op == "linear":
        x, w, b = rnd(p["M"], p["K"]), rnd(p["N"], p["K"], scale=0.05), rnd(p["N"])
        return lambda: F.linear(x, w, b)
    if op == "conv2d":
        x = rnd(p["B"], p["C"], p["H"], p["W"])
        w, b = rnd(p["O"], p["C"], p["k"], p["k"], scale=0.05), rnd(p["O"])
        s, pad = p["s"], p["p"]
        if p.get("extra"):                 # pad p on every side and one more row and column at the end
            return lambda: F.conv2d(F.pad(x, (pad, pad + 1, pad, pad + 1)), w, b, stride=s)
        return lambda: F.conv2d(x, w, b, stride=s, padding=pad)
    if op == "attention":
        B, H, D = p["B"], p["H"], p["D"]
        q, k, v = rnd(B, H, p["Lq"], D), rnd(B, H, p["Lk"], D), rnd(B, H, p["Lk"], p.get("Dv", D))
        causal = bool(p.get("causal"))
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    if op == "group_norm":
        x, g, b = rnd(p["B"], p["C"], p["HW"]), rnd(p["C"]), rnd(p["C"])
        if p.get("silu"):
            return lambda: F.silu(F.group_norm(x, p["G"], g, b, 1e-5))
        return lambda: F.group_norm(x, p["G"], g, b, 1e-5)
    if op == "layer_norm":
        shape = p["shape"]
        x, g, b = rnd(*shape), rnd(shape[-1]), rnd(shape[-1])
        return lambda: F.layer_norm(x, (shape[-1],), g, b, 1e-5)
    if op == "geglu":
        shape = list(p["shape"])
        x = rnd(*(shape[:-1] + [2 * shape[-1]]))

        def geglu():
            a, gate = x.chunk(2, dim=-1)
            return a * F.gelu(gate)
        return geglu
    return None


def time_case(torch, fn, min_iters, min_ms):
    """Milliseconds per call: CUDA events around a loop, after warm-up, the loop long enough."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    iters = min_iters
    while True:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end)
        if ms >= min_ms or iters >= 100000:
            return ms / iters
        iters = max(iters * 2, int(iters * min_ms / max(ms, 1e-3)) + 1)


def run_torch(rows, out_path, min_iters, min_ms):
    import torch
    if not torch.cuda.is_available():
        sys.exit("bench-torch: torch sees no CUDA device")
    torch.backends.cudnn.benchmark = True
    props = torch.cuda.get_device_properties(0)
    print("torch %s, CUDA %s, cuDNN %s, %s (%d SMs, %.0f GiB)" % (
        torch.__version__, torch.version.cuda, torch.backends.cudnn.version(), props.name,
        props.multi_processor_count, props.total_memory / 2**30))
    flops = {r["key"]: float(r["gflop"]) * 1e9 for r in rows}
    nbytes = {r["key"]: float(r["gbytes"]) * 1e9 for r in rows}
    results = {}
    t0 = time.time()
    with open(out_path, "w") as f:
        f.write("key\top\ttorch_ms\ttflops\tgbps\n")
        for r in rows:
            key = r["key"]
            if key in results:
                continue
            op, p = parse_key(key)
            fn = make_case(torch, op, p)
            if fn is None:
                print("  skipped (no torch equivalent): %s" % key)
                continue
            with torch.inference_mode():
                ms = time_case(torch, fn, min_iters, min_ms)
            results[key] = ms
            s = ms / 1e3
            f.write("%s\t%s\t%.6f\t%.4f\t%.2f\n" % (key, op, ms, flops[key] / s / 1e12, nbytes[key] / s / 1e9))
            f.flush()
            del fn
            torch.cuda.empty_cache()
    print("timed %d shapes in %.1f s" % (len(results), time.time() - t0))
    return results


def join(rows, torch_ms):
    """Prints the joined table and the per-op and per-step sums."""
    print("\n%-5s %-50s %5s %10s %10s %8s %9s %9s" % (
        "model", "key", "/step", "easel ms", "torch ms", "ratio", "easel TF", "torch TF"))
    sums = {}
    for r in rows:
        key, model, n = r["key"], r["model"], int(r["per_step"])
        e = float(r["ms"])
        t = torch_ms.get(key)
        gf = float(r["gflop"])
        etf = gf / e if e > 0 else 0.0           # GFLOP / ms = TFLOP/s
        if t is None:
            print("%-5s %-50s %5d %10.4f %10s %8s %9.2f" % (model, key, n, e, "-", "-", etf))
            continue
        ttf = gf / t if t > 0 else 0.0
        ratio = e / t if t > 0 else float("inf")
        print("%-5s %-50s %5d %10.4f %10.4f %8.2f %9.2f %9.2f" % (model, key, n, e, t, ratio, etf, ttf))
        for k in ((model, r["op"]), (model, "all")):
            a = sums.setdefault(k, [0.0, 0.0])
            a[0] += e * n
            a[1] += t * n
    print("\nper UNet step (each shape's ms times how often a step runs it; shapes timed on both):")
    print("%-5s %-12s %12s %12s %8s" % ("model", "op", "easel ms", "torch ms", "ratio"))
    for (model, op), (e, t) in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1] == "all", -kv[1][0])):
        print("%-5s %-12s %12.3f %12.3f %8.2f" % (model, op, e, t, e / t if t > 0 else float("inf")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("easel_tsv", help="the --out file of easel-cli bench --ops")
    ap.add_argument("--out", default="ops-torch.tsv", help="torch's times as TSV (default ops-torch.tsv)")
    ap.add_argument("--join-only", metavar="TORCH_TSV", help="no timing: join with an earlier torch TSV")
    ap.add_argument("--min-iters", type=int, default=20)
    ap.add_argument("--min-ms", type=float, default=50.0, help="time each shape for at least this long")
    args = ap.parse_args()
    rows = read_tsv(args.easel_tsv)
    if not rows or "key" not in rows[0]:
        sys.exit("bench-torch: %s has no rows with a key column" % args.easel_tsv)
    if args.join_only:
        torch_ms = {r["key"]: float(r["torch_ms"]) for r in read_tsv(args.join_only)}
    else:
        torch_ms = run_torch(rows, args.out, args.min_iters, args.min_ms)
    join(rows, torch_ms)


if __name__ == "__main__":
    main()
