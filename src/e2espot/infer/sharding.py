"""Split a list of videos over several processes.

A shard is ``index/count`` with a 0-based index (``--shard 0/4`` .. ``--shard 3/4``, e.g. from a Slurm
array task id), or comes from the launcher's environment (``torchrun`` sets ``RANK`` and
``WORLD_SIZE``). Shard ``i`` takes every ``count``-th video starting at ``i``. No cluster code here:
processes are started by an existing launcher and only meet through files (or torch.distributed
when torchrun started them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from e2espot.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1
    from_launcher: bool = False  # RANK/WORLD_SIZE from torchrun: a process group can be joined

    @property
    def enabled(self) -> bool:
        return self.count > 1

    def select(self, items: Sequence[T]) -> list[T]:
        """This shard's share of ``items`` (every ``count``-th, starting at ``index``)."""
        return list(items[self.index :: self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"i/n"`` with ``0 <= i < n``."""
    parts = str(text).split("/")
    try:
        index, count = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--shard '{text}': expected INDEX/COUNT with a 0-based index, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"--shard '{text}': index must be in 0..{count - 1} (0-based) and count >= 1")
    return Shard(index, count)


def shard_from_env(env: Mapping[str, str] | None = None) -> Shard | None:
    """The shard a launcher (torchrun) describes through ``RANK`` / ``WORLD_SIZE``; None when absent."""
    env = os.environ if env is None else env
    world = env.get("WORLD_SIZE")
    if world is None:
        return None
    try:
        count, index = int(world), int(env.get("RANK", "0"))
    except ValueError:
        raise ConfigError(f"RANK={env.get('RANK')!r} / WORLD_SIZE={world!r} are not integers") from None
    if count <= 1:
        return None
    if not 0 <= index < count:
        raise ConfigError(f"RANK={index} is outside 0..{count - 1} (WORLD_SIZE={count})")
    return Shard(index, count, from_launcher=True)


def resolve_shard(text: str | None, env: Mapping[str, str] | None = None) -> Shard:
    """``--shard`` wins; else the launcher's environment; else the single shard ``0/1``."""
    if text:
        return parse_shard(text)
    return shard_from_env(env) or Shard()
