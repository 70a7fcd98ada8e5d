"""Benchmark: ``rstsleuth facts`` and ``rstsleuth analyze`` against tshark on the same
generated capture.

    python benchmarks/run.py [--packets N] [--connections C] [--repeat K] [--scale]

Generates ``benchmarks/out/bench_<N>_<C>.pcap`` when missing (benchmarks/make_capture.py),
then, in the same run, times

    python -m tui.cli facts FILE > /dev/null
    python -m tui.cli analyze FILE --format json --output /dev/null
    python -m tui.cli analyze FILE --format json --output /dev/null --jobs 1
    tshark -r FILE -Y tcp.flags.reset==1 -T fields -e ip.ttl > /dev/null
    tshark -r FILE -Y tcp.flags.reset==1 > /dev/null

and prints wall and CPU time of each, the ratios, and the peak RSS of each command (from
``wait4``'s rusage of that child, which counts the workers it forked and reaped: their CPU
time is added, their peak RSS is the larger of the two). ``--scale`` runs 1M and 5M packets over the same
number of connections: rstsleuth's memory is O(connections), so its RSS should stay flat.
With ``--repeat K`` each command runs K times and the fastest run counts (shared machines
are noisy; CPU time is the steadier measure). ``--json FILE`` also writes the results.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from make_capture import generate  # noqa: E402


def timed(cmd: list[str], *, cwd: Path = ROOT) -> dict:
    """Run ``cmd`` with stdout to /dev/null; wall seconds, CPU seconds, peak RSS (MB)."""
    with open(os.devnull, "wb") as devnull:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=devnull, stderr=subprocess.PIPE)
        # wait4 gives this child's own rusage (getrusage(RUSAGE_CHILDREN) would mix in the
        # earlier children's peak).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"benchmark: {' '.join(cmd)} exited {code}: {stderr.strip()[-500:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024}


def best_of(cmd: list[str], repeat: int) -> dict:
    runs = [timed(cmd) for _ in range(repeat)]
    return {"wall_s": min(r["wall_s"] for r in runs), "cpu_s": min(r["cpu_s"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "runs": len(runs)}


def capture_for(packets: int, connections: int) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"bench_{packets}_{connections}.pcap"
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        tmp = path.with_suffix(".tmp")
        start = time.perf_counter()
        generate(packets, tmp, connections=connections)
        tmp.replace(path)
        print(f"  {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
    return path


def bench(packets: int, connections: int, repeat: int, with_tshark: bool) -> dict:
    path = capture_for(packets, connections)
    result = {"packets": packets, "connections": connections,
              "file_mb": round(path.stat().st_size / 1e6, 1)}
    cli = [sys.executable, "-m", "tui.cli"]
    result["rstsleuth"] = best_of(cli + ["facts", str(path)], repeat)
    # issue 5: the whole job, facts + dual/cross evidence + reasoning + a JSON report; by
    # default its entries are built by one process per usable CPU, --jobs 1 in one
    analyze = cli + ["analyze", str(path), "--format", "json", "--output", os.devnull]
    result["analyze"] = best_of(analyze, repeat)
    result["analyze_1"] = best_of(analyze + ["--jobs", "1"], repeat)
    tshark = shutil.which("tshark")
    if with_tshark and tshark:
        # issue 2's reference: the RST filter printing one field (tshark then dissects
        # every packet fully, 2-3x slower than ...
        result["tshark"] = best_of([tshark, "-r", str(path), "-Y", "tcp.flags.reset==1",
                                    "-T", "fields", "-e", "ip.ttl"], repeat)
        # ... the bare filter, tshark's default summary line per RST)
        result["tshark_bare"] = best_of([tshark, "-r", str(path), "-Y", "tcp.flags.reset==1"],
                                        repeat)
        for ref, tag in (("tshark", ""), ("tshark_bare", "bare_")):
            for key in ("wall_s", "cpu_s"):
                for ours, name in (("rstsleuth", "ratio"), ("analyze", "analyze_ratio"),
                                   ("analyze_1", "analyze_1_ratio")):
                    result[f"{tag}{name}_{key}"] = result[ref][key] / result[ours][key]
    return result


def prepare() -> None:
    """Measure the tool as installed: ``pip install`` byte-compiles the sources, while a
    checkout run with PYTHONDONTWRITEBYTECODE=1 would compile some 60 modules on every run
    (0.2 s). Also say which reader runs: the compiled one, or the Python fallback."""
    import compileall

    for package in ("engine", "facts", "tui", "knowledge"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    probe = subprocess.run([sys.executable, "-c", "from facts import ctrack; print(ctrack.available())"],
                           cwd=ROOT, capture_output=True, text=True)
    compiled = probe.stdout.strip() == "True"
    print("reader: " + ("compiled (facts._ctrack)" if compiled else
                        "Python fallback (facts._ctrack not built: python setup.py build_ext "
                        "--inplace)"), flush=True)


ROWS = (("rstsleuth", "rstsleuth facts", ""), ("analyze", "rstsleuth analyze", "analyze_"),
        ("analyze_1", "analyze --jobs 1", "analyze_1_"))


def report(r: dict) -> str:
    lines = [f"{r['packets']:>9,} packets, {r['connections']:,} connections, "
             f"{r['file_mb']:.0f} MB"]
    refs = [("tshark", "tshark -T fields", ""), ("tshark_bare", "tshark bare -Y", "bare_")]
    for key, label, _ in ROWS + tuple(refs):
        if key in r:
            m = r[key]
            lines.append(f"  {label:<18}: wall {m['wall_s']:6.2f} s  cpu {m['cpu_s']:6.2f} s  "
                         f"peak RSS {m['peak_rss_mb']:6.1f} MB")
    if "tshark" not in r:
        lines.append("  tshark: not run (not installed or --no-tshark)")
        return "\n".join(lines)
    for key, label, tag in ROWS:
        ratios = [f"{r[f'{ref_tag}{tag}ratio_wall_s']:5.1f}x wall, "
                  f"{r[f'{ref_tag}{tag}ratio_cpu_s']:5.1f}x cpu vs {ref_label}"
                  for _, ref_label, ref_tag in refs]
        lines.append(f"  {label:<18}: " + "; ".join(ratios))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="rstsleuth facts vs tshark on a generated capture")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--connections", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--scale", action="store_true", help="run 1M and 5M packets")
    ap.add_argument("--no-tshark", dest="tshark", action="store_false")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    sizes = [1_000_000, 5_000_000] if args.scale else [args.packets]
    prepare()
    results = []
    for n in sizes:
        r = bench(n, args.connections, args.repeat, args.tshark)
        results.append(r)
        print(report(r), flush=True)
    if args.scale and len(results) == 2:
        a, b = (r["rstsleuth"]["peak_rss_mb"] for r in results)
        print(f"peak RSS 1M -> 5M: {a:.1f} MB -> {b:.1f} MB ({(b - a) / a * 100:+.0f}%)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
