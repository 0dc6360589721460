"""What the object-store readers (S3, Cloud Storage, Azure Blob) share: which objects a billing path names,
and where a downloaded object lands.

A path names one object, a prefix (every object below it whose name ends with one of the given
suffixes) or a glob (``exports/*/part-*.parquet``: listed from the part before the first wildcard and
matched with ``fnmatch``, where ``*`` also crosses ``/``).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path, PurePosixPath

from providers.errors import ProviderError

_WILDCARDS = "*?["


def listing_prefix(path: str) -> str:
    """The prefix to list from: the path itself, or its part before the first wildcard."""
    wild = next((i for i, ch in enumerate(path) if ch in _WILDCARDS), None)
    return path if wild is None else path[:wild]


def wanted(name: str, path: str, suffixes: tuple[str, ...] = ()) -> bool:
    """Whether a listed object ``name`` is one the ``path`` names (console "folders" never are)."""
    if name.endswith("/"):
        return False
    if any(ch in path for ch in _WILDCARDS):
        return fnmatch.fnmatchcase(name, path)
    return name == path or not suffixes or name.lower().endswith(suffixes)


def local_path(folder: Path, *parts: str) -> Path:
    """``folder/part/.../name`` for a downloaded object, its directories made; a name that would leave the
    folder (``..``, absolute) is refused."""
    *dirs, name = parts
    pieces = PurePosixPath(name).parts
    if not pieces or ".." in pieces or name.startswith("/"):
        raise ProviderError(f"refusing object name {name!r} in {'/'.join(dirs)} (it leaves the folder)")
    target = folder.joinpath(*dirs, *pieces)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target
