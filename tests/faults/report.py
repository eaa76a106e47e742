"""Print the fault suite's observations as the Markdown tables of docs/reliability.md.

python -m tests.faults.report        # after make test-faults

The cluster scenarios (``cluster-*.json``, tests/faults/test_cluster.py) get a table of
their own, with how long no window completed.
"""

from __future__ import annotations

import json

from tests.support.paths import ARTIFACTS


def main() -> None:
    print(
        "| scenario | fault | events counted | windows checked (all exact) | dead letters "
        "| SSE connections (status) | s to exact (from) "
        "| peak RSS growth MiB | late |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    paths = sorted((ARTIFACTS / "faults").glob("*.json"))
    for path in paths:
        if path.name.startswith("cluster-"):
            continue
        seen = json.loads(path.read_text())
        growth = max(seen["peak_rss_growth_mib"].values(), default=0)
        statuses = " ".join(str(s) for s in seen["connections"])
        print(
            f"| {seen['scenario']} | {seen['fault']} | {seen['events']} "
            f"| {seen['windows_checked']} | {seen['dead_letters']} | {statuses} "
            f"| {seen['seconds_to_exact']} ({seen['seconds_to_exact_from']}) "
            f"| ≤ {growth} | {int(seen['late'])} |"
        )

    cluster = [json.loads(p.read_text()) for p in paths if p.name.startswith("cluster-")]
    if not cluster:
        return
    print()
    print(
        "| scenario | fault | events counted | windows checked (all exact) "
        "| s without a new window (window 3 s) | slowest window, s after its end "
        "| late | processor restarts | peak RSS growth MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for seen in cluster:
        growth = max(seen["peak_rss_growth_mib"].values(), default=0)
        print(
            f"| {seen['scenario']} | {seen['fault']} | {seen['events']} "
            f"| {seen['windows_checked']} | {seen['seconds_without_new_windows']} "
            f"| {seen.get('max_seconds_window_end_to_complete', '')} | {int(seen['late'])} "
            f"| {seen['processor_restarts']} | ≤ {growth} |"
        )


if __name__ == "__main__":
    main()
