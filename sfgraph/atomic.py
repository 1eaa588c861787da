"""Files that appear whole or not at all: every writer of sfgraph goes through here.

A file is written to a hidden temporary beside its final path and renamed into place
(``os.replace`` is atomic within a file system), so neither a reader nor a run killed
half-way ever sees a half-written file under the final name:

- one file: ``write_bytes``, ``write_text``, or ``replacing`` for a writer that needs a
  path (an audio file); its temporary is ``.NAME.RANDOM.partial[.EXT]``.
- one folder: ``staged_folder`` writes it beside the final one and swaps it in.
- the outputs of a graph render, all together or none (``commit_together``): a sink
  writes each output to ``partial_path(final)`` and the engine moves them into place
  only when the whole run succeeded: every destination is checked first, old files are
  kept (as hard links) until every move has worked, and a failure puts the old files
  back. So a folder never holds some voices of a new render beside others of an old
  one. These temporaries carry their writer's PID; ``remove_stale_partials`` deletes
  those of processes that no longer run (killed before they could clean up).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
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


def destination_problems(finals) -> list[str]:
    """``destination_problem`` of each of ``finals`` that has one."""
    return [problem for problem in map(destination_problem, finals) if problem]


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
        problems = destination_problems(final for _, final in pairs)
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


@contextlib.contextmanager
def replacing(path: Path, extension: str = "") -> Iterator[Path]:
    """A temporary beside ``path`` (ending in ``extension``, for writers that choose the
    format by it) to write ``path``'s new contents to: it replaces ``path`` when the block
    ends normally and is deleted when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial" + extension, dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        os.chmod(temporary, 0o644)  # mkstemp makes files private; outputs are meant to be shared
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (on disk before it takes the final name)."""
    with replacing(path) as temporary, open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8."""
    write_bytes(path, text.encode("utf-8"))


def write_torch(path: Path, obj) -> None:
    """Write ``obj`` with ``torch.save`` (torch is imported here, by the callers that have it)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def staged_folder(folder: Path) -> Iterator[Path]:
    """A hidden folder beside ``folder`` to write its new contents to: when the block ends
    normally it takes ``folder``'s place (the old one is removed), when it raises it is
    removed and ``folder`` is left as it was."""
    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    retired = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
        if folder.exists():
            os.replace(folder, retired)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired.exists() and not folder.exists():
            os.replace(retired, folder)
        raise
    shutil.rmtree(retired, ignore_errors=True)
