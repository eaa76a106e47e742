"""Print the fault suite's observations as the Markdown table of docs/reliability.md.

python -m tests.faults.report        # after make test-faults
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
    for path in sorted((ARTIFACTS / "faults").glob("*.json")):
        seen = json.loads(path.read_text())
        growth = max(seen["peak_rss_growth_mib"].values(), default=0)
        statuses = " ".join(str(s) for s in seen["connections"])
        print(
            f"| {seen['scenario']} | {seen['fault']} | {seen['events']} "
            f"| {seen['windows_checked']} | {seen['dead_letters']} | {statuses} "
            f"| {seen['seconds_to_exact']} ({seen['seconds_to_exact_from']}) "
            f"| ≤ {growth} | {int(seen['late'])} |"
        )


if __name__ == "__main__":
    main()
