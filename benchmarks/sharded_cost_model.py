"""Cost model of one row-sharded ADMM iteration on p GPUs, from the measured collectives.

    python benchmarks/sharded_cost_model.py      # reads results/sharded_cpu.json, writes results/sharded_cost_model.{md,json}

Communication: the collectives that ``benchmarks/sharded.py`` counted in the compiled
programs (largest simulated device count), each shape rewritten in the symbols d, PC
(its dimensions are matched against the benchmark's d, PC, 2PC, ...) and evaluated at
the target size, times the calls per iteration; a ring all-reduce of B bytes over p GPUs
moves 2 (p - 1) / p B bytes through each GPU's link. Compute: the GEMM flops of one
iteration (written out below, per GPU: n / p rows) at a sustained fraction of the
peak rate, plus the elementwise passes over the (n / p, 2PC) slack-sized arrays at
the memory bandwidth. Hardware numbers: NVIDIA H100 SXM5 datasheet (TF32 Tensor Core
989 TFLOPS with sparsity, i.e. 494.7 dense; FP32 67 TFLOPS; HBM3 3.35 TB/s, 80 GB;
NVLink 4 900 GB/s per GPU in total, 450 GB/s each way). No GPU was used. ``--input``
defaults to the ``sharded_cpu.json`` in the results folder (``--out``).
"""
from __future__ import annotations

import json

from admmnn.experiments import bench

H100 = {"name": "H100 SXM5", "tf32_dense": 494.7e12, "fp32": 66.9e12, "hbm": 3.35e12, "memory": 80e9,
        "link_each_way": 450e9}


def symbolic(dim: int, d: int, pc: int):
    """A benchmark dimension as (symbol, factor): d, k * PC, or a constant."""
    if dim == d:
        return ("d", 1)
    if dim % pc == 0:
        return ("PC", dim // pc)
    return ("1", dim)


def project(bench: dict, n: int, d: int, P: int, C: int, p: int, itemsize: int, cg_iters: float,
            efficiency: float, hw: dict, check_every: int = 10) -> dict:
    pc_b, d_b = bench["P"] * bench["C"], bench["d"]
    size = {"d": d, "PC": P * C, "1": 1}
    comm_bytes = 0.0  # bytes through one GPU's link per iteration
    allreduced = 0.0
    for c in bench["collectives"]:
        if c["kind"] != "all-reduce" or c["per_iteration"] == 0:
            continue
        calls = c["per_iteration"] / (bench["cg_iters_mean"] if c["in_loop"] else 1.0)
        calls *= cg_iters if c["in_loop"] else 1.0
        for shape in c["shapes"]:
            dims = [int(x) for x in shape[shape.index("[") + 1:-1].split(",") if x]
            b = itemsize
            for dim in dims:
                sym, k = symbolic(dim, d_b, pc_b)
                b *= size[sym] * k
            allreduced += calls * b * (p > 1)
            comm_bytes += calls * b * 2 * (p - 1) / p
    rows = n / p
    k2 = 2 * P * C
    gemm = 2 * rows * d * k2  # one product X (rows x d) with a (d x 2PC) array, or X^T with (rows x 2PC)
    flops = (2 * gemm  # G^T (s - nu) and G u
             + (cg_iters + 1) * (gemm + 3 * 2 * d * d * k2)  # F, F^T (PC wide each), X^T X and the block preconditioner
             + (4 * gemm + 2 * gemm) / check_every)  # check: X u, G^T on 3 arrays, F and F^T of the dual bound
    passes = 12  # elementwise reads + writes of (rows, 2PC) arrays: s-step, dual step, right-hand side
    t_gemm = flops / (efficiency * hw["tf32_dense"])
    t_mem = passes * rows * k2 * itemsize / hw["hbm"]
    t_comm = comm_bytes / hw["link_each_way"]
    per_gpu_memory = (6 * rows * k2 + rows * d + rows * P) * itemsize  # two states of s, nu, Gu; X; D
    total = t_gemm + t_mem + t_comm
    return {"gemm_s": t_gemm, "elementwise_s": t_mem, "comm_s": t_comm, "total_s": total,
            "comm_share": t_comm / total, "allreduced_bytes": allreduced, "flops_per_gpu": flops,
            "memory_per_gpu": per_gpu_memory, "fits": per_gpu_memory <= hw["memory"]}


def main(argv=None):
    ap = bench.parser(__doc__)
    ap.add_argument("--input", default=None, help="sharded.py's results (default: sharded_cpu.json in the results folder)")
    ap.add_argument("--efficiency", type=float, default=0.6, help="sustained fraction of the TF32 peak")
    args = ap.parse_args(argv)
    out = bench.Results("sharded_cost_model", args, __file__, text_suffix=".md", header=False)
    source = bench.shown(args.input or out.folder / "sharded_cpu.json")
    with open(source) as fh:
        measured = max(json.load(fh), key=lambda r: r["devices"])
    cg = measured["cg_iters_mean"]
    target = dict(n=1_280_000, d=2048, P=100, C=1000)
    lines = [
        "# Row-sharded ADMM: cost model for 8 GPUs (projection, no GPU was used)",
        "",
        f"Collectives per iteration: read from the compiled programs of `benchmarks/sharded.py` "
        f"({measured['devices']} simulated CPU devices, n={measured['n']}, d={measured['d']}, P={measured['P']}, "
        f"C={measured['C']}, solver {measured['solver']}, {cg:.1f} CG iterations per u-step, the value assumed below):",
        "",
        "| program | collective | shape (benchmark) | calls per ADMM iteration |",
        "| --- | --- | --- | --- |",
    ]
    for c in measured["collectives"]:
        if c["per_iteration"]:
            lines.append(f"| {c['phase']} | {c['kind']} | {' + '.join(c['shapes'])} | {c['per_iteration']:.2f} |")
    lines += [
        "",
        f"Hardware ({H100['name']}, NVIDIA datasheet): TF32 Tensor Core 494.7 TFLOPS dense (989 with sparsity), "
        "FP32 67 TFLOPS, HBM3 3.35 TB/s and 80 GB, NVLink 900 GB/s per GPU (450 GB/s each way). "
        f"Assumed: {args.efficiency:.0%} of the TF32 peak sustained by the GEMMs, float32 iterates (4 bytes), "
        "12 elementwise passes over the (n/p, 2PC) arrays per iteration, ring all-reduce "
        "(2 (p-1)/p of the bytes through each link), compute and communication not overlapped.",
        "",
        "| GPUs | n | d | P | C | GEMM s | elementwise s | all-reduce s | s / iteration | communication share "
        "| GiB all-reduced / iteration | memory / GPU (GB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in (1, 8):
        r = project(measured, p=p, itemsize=4, cg_iters=cg, efficiency=args.efficiency, hw=H100, **target)
        lines.append(f"| {p} | {target['n']} | {target['d']} | {target['P']} | {target['C']} | {r['gemm_s']:.2f} | "
                     f"{r['elementwise_s']:.2f} | {r['comm_s']:.3f} | {r['total_s']:.2f} | {r['comm_share']:.1%} | "
                     f"{r['allreduced_bytes'] / 2**30:.2f} | {r['memory_per_gpu'] / 1e9:.0f} |")
    r8 = project(measured, p=8, itemsize=4, cg_iters=cg, efficiency=args.efficiency, hw=H100, **target)
    lines += [
        "",
        f"At 8 GPUs the all-reduces are {r8['comm_share']:.1%} of an iteration: each moves a d x PC or d x 2PC "
        "array (0.8 or 1.6 GB in float32), against GEMMs over n/p x d x 2PC. "
        f"Memory does not fit: the slack, its dual and G u are (n, 2PC) = 1.28e6 x 2e5 arrays "
        f"(1.0 TB each in float32), {r8['memory_per_gpu'] / 1e9:.0f} GB per GPU for two states at 8 GPUs "
        "against 80 GB; at P = 100, C = 1000 this program needs about "
        f"{r8['memory_per_gpu'] * 8 / 80e9:.0f} H100s by memory alone (or fewer output columns per solve, "
        "e.g. one solve per group of classes).",
    ]
    lines += ["", f"_From {source} by benchmarks/sharded_cost_model.py; {bench.machine_line(out.machine)}._"]
    for line in lines:
        out.say(line)
    out.write({"input": source, "measured": {k: measured[k] for k in ("devices", "n", "d", "P", "C", "solver", "cg_iters_mean")},
               "hardware": H100, "efficiency": args.efficiency, "target": target,
               "projection": {p: project(measured, p=p, itemsize=4, cg_iters=cg, efficiency=args.efficiency, hw=H100, **target)
                              for p in (1, 8)}})


if __name__ == "__main__":
    main()
