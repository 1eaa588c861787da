"""Output files that appear all together or not at all.

A sink writes each output to a hidden temporary beside its final path
(``partial_path``) and hands the pairs to the engine, which moves them into place
with ``commit_together`` only when the whole run succeeded: every destination is
checked first, old files are kept (as hard links) until every move has worked, and a
failure puts the old files back. So a folder never holds some voices of a new
render beside others of an old one.

Temporaries carry their writer's PID; ``remove_stale_partials`` deletes those of
processes that no longer run (killed before they could clean up).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_TEMPORARY = re.compile(r"^\..+\.(partial|previous)-(\d+)(\.[^.]*)?$")


def partial_path(final: Path) -> Path:
    """The hidden temporary that ``final`` is written to before it is committed."""
    return final.with_name(f".{final.stem}.partial-{os.getpid()}{final.suffix}")


def _previous_path(final: Path) -> Path:
    return final.with_name(f".{final.stem}.previous-{os.getpid()}{final.suffix}")


def folder_problem(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (created if missing), or None."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK, effective_ids=True):
        return f"{existing} is not writable (read-only folder or file system)"
    return None


def destination_problem(final: Path) -> str | None:
    """Why ``final`` cannot be written, as ``cannot write FINAL: reason``, or None."""
    final = Path(final)
    reason = ("a folder of that name is in the way" if final.is_dir() else folder_problem(final.parent))
    return f"cannot write {final}: {reason}" if reason else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete the temporaries of dead processes in ``folder``; returns them."""
    removed = []
    if not Path(folder).is_dir():
        return removed
    for path in Path(folder).iterdir():
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and not _alive(int(match.group(2))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def discard(pairs: list[tuple[Path, Path]]) -> None:
    """Delete the temporaries of outputs that will not be committed."""
    for temporary, _ in pairs:
        Path(temporary).unlink(missing_ok=True)


def commit_together(pairs: list[tuple[Path, Path]]) -> None:
    """Move every ``(temporary, final)`` into place, or none: on any failure (or an
    interrupt) the finals already moved get their old contents back, the temporaries
    are deleted, and OSError says which file failed and why."""
    previous: dict[Path, Path] = {}
    moved: list[Path] = []
    try:
        problems = [p for p in (destination_problem(final) for _, final in pairs) if p]
        if problems:
            raise OSError(f"{problems[0]}; no output was changed")
        for _, final in pairs:
            if final.exists():
                keep = _previous_path(final)
                keep.unlink(missing_ok=True)
                try:
                    os.link(final, keep)
                except OSError:  # a file system without hard links (FAT, some network shares)
                    shutil.copy2(final, keep)
                previous[final] = keep
        for temporary, final in pairs:
            try:
                os.replace(temporary, final)
            except OSError as exc:
                raise OSError(f"cannot write {final}: {exc.strerror or exc}; no output was changed") from None
            moved.append(final)
    except BaseException:
        for final in moved:
            if final in previous:
                os.replace(previous.pop(final), final)
            else:
                final.unlink(missing_ok=True)
        discard(pairs)
        for keep in previous.values():
            keep.unlink(missing_ok=True)
        raise
    for keep in previous.values():
        keep.unlink()
