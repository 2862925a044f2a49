"""How far a worker is behind on one partition, from what Faust's consumer knows."""

from __future__ import annotations


def unprocessed(highwater: int | None, processed: int | None, committed: int | None) -> int:
    """Records of a partition not yet processed: from the last processed offset (this
    worker's, since it started) or the group's committed offset (the next to read), the
    later of the two, to the broker's high watermark (unknown before the first fetch: 0)."""
    if highwater is None:
        return 0
    done = max(-1 if processed is None else processed, -1 if committed is None else committed - 1)
    return max(0, highwater - done - 1)
