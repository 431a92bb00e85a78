"""Shards of a split for inference (``infer.shards``): contiguous manifest rows, cut at multiples of the
C++ program's batch so that every image meets the same batch neighbours (and the same zero padding of
the last batch) as in one unsharded run -- the gathered features are then bitwise those of one shard.
Standard library only: the workflow reads it at parse time. docs/architecture.md §1, "Shards"."""

from __future__ import annotations


def shard_rows(n_rows: int, shards: int, batch: int) -> list[range]:
    """The manifest rows of each of ``shards`` shards of an ``n_rows``-row split: whole batches of
    ``batch`` rows dealt as evenly as they go (the first shards take one batch more), in order, covering
    every row once. With more shards than batches the last shards are empty."""
    if shards < 1 or batch < 1 or n_rows < 0:
        raise ValueError(f"shard_rows: expected shards >= 1, batch >= 1, rows >= 0; got {shards}, {batch}, {n_rows}")
    batches = -(-n_rows // batch)
    per, extra = divmod(batches, shards)
    out, start = [], 0
    for i in range(shards):
        stop = min(n_rows, start + (per + (i < extra)) * batch)
        out.append(range(start, stop))
        start = stop
    return out


def shard_ids(shards: int) -> list[str]:
    """The {shard} wildcard values of ``shards`` shards: '0', '1', ..."""
    return [str(i) for i in range(shards)]
