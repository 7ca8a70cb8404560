"""Write the benchmark's application data: a few hundred incompressible files of mixed sizes plus many small ones.

    python3 make-app-data.py ROOT MIB

About 5 % of MIB goes into small files (2-8 KiB, 100 to a directory), the rest into files of 0.25-12 MiB. The sizes
come from a fixed seed, so every build has the same shape; the content is random (nothing compresses or dedups).
"""

import os
import random
import sys

CHUNK = 1 << 20


def write(path: str, size: int) -> None:
    with open(path, "wb") as handle:
        left = size
        while left > 0:
            n = min(CHUNK, left)
            handle.write(os.urandom(n))
            left -= n


def main(root: str, mib: int) -> int:
    rng = random.Random(7)
    total = mib << 20
    small_count = max(100, mib * 10)
    small_sizes = [rng.randint(2048, 8192) for _index in range(small_count)]
    large_total = max(0, total - sum(small_sizes))
    large_sizes = []
    while sum(large_sizes) < large_total:
        large_sizes.append(rng.randint(256 << 10, 12 << 20))
    large_sizes[-1] -= sum(large_sizes) - large_total
    for i, size in enumerate(small_sizes):
        d = os.path.join(root, "small", f"d{i // 100:04}")
        os.makedirs(d, exist_ok=True)
        write(os.path.join(d, f"s{i:06}.dat"), size)
    for i, size in enumerate(large_sizes):
        d = os.path.join(root, "blobs", f"d{i % 16:02}")
        os.makedirs(d, exist_ok=True)
        write(os.path.join(d, f"blob{i:04}.bin"), max(0, size))
    print(f"{len(small_sizes)} small files, {len(large_sizes)} large files, {total >> 20} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
