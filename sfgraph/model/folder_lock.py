"""One writer per model folder: a lock that a second process fails to take at once.

``with FolderLock(folder):`` creates the folder if needed (and removes it again if
it is still empty on leaving) and holds an exclusive
``flock`` on ``folder/.lock``, which holds the holder's PID. A second locker (another
process, or the same one again) gets ``ModelError`` naming that PID instead of
waiting. The kernel drops the lock when its holder dies, however it dies, so a lock
file left by a dead process is simply taken over.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sfgraph.model.errors import ModelError

LOCK_NAME = ".lock"

# The files ``sfgraph train`` writes into a model folder (``--force`` removes them).
TRAINING_FILES = ("model.json", "weights.pt", "checkpoint.pt", "log.csv", "loss_curve.png")


class FolderLock:
    """Context manager: hold ``folder``'s lock, or raise ModelError naming its holder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        if self.folder.exists() and not self.folder.is_dir():
            raise ModelError(f"{self.folder} is a file, not a folder")
        self._created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise ModelError(f"{self.folder} is in use by another process (PID {holder}); wait for it to "
                                 "finish or write to another folder") from None
            # The previous holder may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else can see, so start again.
            if self.path.exists() and os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc_info) -> None:
        # Removed while still held, so that no one locks the file as it disappears.
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
        if self._created and not any(self.folder.iterdir()):  # a run that failed before writing anything
            self.folder.rmdir()


def prepare_output_folder(folder: Path, resume: bool, force: bool) -> None:
    """Refuse to train into a folder that holds anything unless resuming or forced;
    ``force`` removes the files of the earlier run, so that no run mixes with another.
    Call it while holding the folder's lock (it also deletes temporaries of killed runs)."""
    folder = Path(folder)
    for temporary in folder.glob(".*.partial"):  # left by a killed run (atomic_write_bytes); none runs now
        temporary.unlink()
    if resume and force:
        raise ModelError("--resume continues the run in the folder and --force replaces it: give one of them")
    contents = sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME) if folder.is_dir() else []
    if not contents or resume:
        return
    if not force:
        shown = ", ".join(contents[:4]) + (" …" if len(contents) > 4 else "")
        raise ModelError(f"{folder} is not empty ({shown}); --resume continues its run, --force replaces it, "
                         "or write to another folder")
    for name in contents:
        if name in TRAINING_FILES or name.startswith("final_weights_rank"):
            (folder / name).unlink()
