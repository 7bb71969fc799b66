"""Benchmark: the decompression bombs of issue 11 through the CLI, with their time and peak memory.

Writes, into a temporary folder, a 1.5 MB `.npz` holding 2,000,000 blank 28x28 images with labels (member by
member, never holding the 1.6 GB in memory) and an IDX folder whose headers declare 2,000,000,000 images,
then runs `python -m core --dataset FILE` on each: it must end with one `error:` line, quickly, without
allocating what the file declares. Prints the exit code, the seconds (process start and imports included)
and the process's peak resident memory.

    python3 bench/bomb_files.py
"""

from __future__ import annotations

import io
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine  # noqa: E402


def write_npz_bomb(path: Path, images: int = 2_000_000) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, shape in (("x_train", (images, 28, 28)), ("y_train", (images,)),
                            ("x_test", (10, 28, 28)), ("y_test", (10,))):
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                member.write(header.getvalue())
                left, chunk = int(np.prod(shape)), 1 << 24
                while left > 0:
                    count = min(left, chunk)
                    member.write((np.arange(count) % 10).astype(np.uint8).tobytes() if name.startswith("y")
                                 else bytes(count))
                    left -= count


def write_idx_bomb(folder: Path, images: int = 2_000_000_000) -> None:
    folder.mkdir()
    for prefix in ("train", "t10k"):
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, images, 28, 28) + bytes(7840))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, images) + bytes(10))


def run_cli(target: Path, runs: Path) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak resident MB, last line) of `python -m core --dataset target` in a child."""
    code = ("import resource, runpy, sys; sys.argv = ['core'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('core', run_name='__main__')\n"
            "finally:\n    print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, "--dataset", str(target), "--runs", str(runs), "--no-download"],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    seconds = time.perf_counter() - started
    peak = next((int(line.split()[1]) / 1024 for line in done.stderr.splitlines() if line.startswith("PEAK")), float("nan"))
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip() and not line.startswith("PEAK")]
    return done.returncode, seconds, peak, lines[-1] if lines else ""


def main() -> int:
    print(describe_machine())
    with tempfile.TemporaryDirectory(prefix="convlab-bombs-") as folder:
        npz, idx = Path(folder) / "bomb.npz", Path(folder) / "idx"
        write_npz_bomb(npz)
        write_idx_bomb(idx)
        print(f"bomb.npz: {npz.stat().st_size / 1e6:.2f} MB on disk, declaring 2,000,000 images of 28x28")
        for target in (npz, idx):
            code, seconds, peak, last = run_cli(target, Path(folder) / "runs")
            print(f"{target.name}: exit {code} after {seconds:.1f} s, peak resident memory {peak:.0f} MB\n    {last}")
    print(f"(this script's own peak: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
