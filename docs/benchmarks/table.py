"""Markdown tables of a pytest-benchmark JSON file: one per group, each
implementation's mean (and min) time and its ratio to its naive twin.

    python docs/benchmarks/table.py docs/benchmarks/cpu.json

The twin is ``extra_info["twin"]``, set by the benchmarks in ``cases/``;
benchmarks without one (``tests/test_speed.py``) list their ``extra_info`` counts.
"""

from __future__ import annotations

import json
import sys

COUNTS = ("forward_calls", "points", "backward_calls", "truths_computed")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}" if seconds >= 0.01 else f"{seconds * 1e3:,.3f}"


def tables(data: dict) -> str:
    groups: dict[str, list] = {}
    for bench in data["benchmarks"]:
        groups.setdefault(bench["group"] or "", []).append(bench)
    out = []
    for group, benches in groups.items():
        means = {(b["extra_info"].get("implementation"), b["extra_info"].get("device")): b["stats"]["mean"]
                 for b in benches}
        out.append(f"**{group}**\n")
        if any("twin" in b["extra_info"] for b in benches):
            out += ["| implementation | device | mean ms | min ms | / naive twin |", "| --- | --- | ---: | ---: | --- |"]
            for b in benches:
                info, stats = b["extra_info"], b["stats"]
                twin = info.get("twin")
                ratio = (f"{stats['mean'] / means[(twin, info['device'])]:.2f}× {twin}"
                         if twin and (twin, info["device"]) in means else "")
                out.append(f"| {info['implementation']} | {info['device']} | {_ms(stats['mean'])} "
                           f"| {_ms(stats['min'])} | {ratio} |")
        else:
            out += ["| method | mean ms | min ms | " + " | ".join(COUNTS) + " | verdict |",
                    "| --- | ---: | ---: |" + " ---: |" * len(COUNTS) + " --- |"]
            for b in benches:
                info, stats = b["extra_info"], b["stats"]
                verdict = info.get("certified", info.get("passed"))
                out.append(f"| {info.get('method', b['name'])} | {_ms(stats['mean'])} | {_ms(stats['min'])} | "
                           + " | ".join(f"{info[c]:,}" if c in info else "" for c in COUNTS) + f" | {verdict} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        print(tables(json.load(fh)))
