"""Read a py-spy raw (collapsed stacks) profile and print where the time goes: the functions
with the most inclusive samples, project code first.

    .venv/bin/python -m bench.profile_summary PROFILE.txt [--top 25]
"""

from __future__ import annotations

import argparse
from collections import Counter


def summarise(path: str, top: int) -> None:
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    with open(path) as handle:
        for line in handle:
            stack, _, count = line.rstrip().rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                      for f in stack.split(";") if f]
            for frame in set(frames):
                inclusive[frame] += n
            if frames:
                leaf[frames[-1]] += n
    print(f"{total} samples")
    print("inclusive:")
    for frame, n in inclusive.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {frame}")
    print("self:")
    for frame, n in leaf.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    summarise(args.path, args.top)


if __name__ == "__main__":
    main()
