"""Output files a run owns: checked before the run, written under a name of their own, moved into place whole.

* Checks before any work (:func:`check_output_file`): OUTPUT must be a GeoTIFF name (:data:`GEOTIFF_SUFFIXES`),
  must not be an existing symbolic link, directory, device, FIFO or socket (only a regular file is replaced),
  its folder must exist and take a new file (:func:`check_output_folder`), and it must not resolve to a file the
  run reads: the input file itself (also through symbolic or hard links) or anything inside an input folder.
* Writing: each run writes under a unique name in OUTPUT's folder, ``.NAME.<random><suffix>``, created
  exclusively (:func:`temporary_path`), and renames the complete file over OUTPUT with ``os.replace``
  (:func:`replace_output`): an existing OUTPUT stays as it was until the new file is complete, and concurrent
  runs writing the same OUTPUT never share a file (the last complete one wins). :func:`atomic_output` wraps
  both for a file written in one go.
* Failures: an ``OSError`` while writing (a full disk, a read-only folder) becomes :class:`OutputWriteError`
  naming the output (:func:`write_error`), after the temporary files are removed.
* Signals: :func:`cleanup_on_signals` turns SIGTERM / SIGINT into an exception for the duration of a run, so the
  writers' cleanup removes their temporary files, then lets the signal act as it would have (the process ends
  with the signal's conventional status).

docs/decisions/2026-12-06-owned-atomic-output.md gives the reasons.
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import os
import secrets
import signal
import stat
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

__all__ = [
    "GEOTIFF_SUFFIXES",
    "Interrupted",
    "OutputWriteError",
    "atomic_output",
    "check_not_input",
    "check_output_file",
    "check_output_folder",
    "check_output_target",
    "cleanup_on_signals",
    "remove_quietly",
    "replace_output",
    "temporary_path",
    "write_error",
]

#: File name endings of a GeoTIFF OUTPUT (compared in lower case).
GEOTIFF_SUFFIXES = (".tif", ".tiff")
#: Characters of OUTPUT's name kept in a temporary name (a name of 255 bytes leaves no room for the rest).
_NAME_CHARS = 120


class OutputWriteError(OSError, ValueError):
    """An output could not be written (disk full, read-only folder, ...): names the output and the cause.

    An ``OSError`` (``errno`` is the cause's) and a ``ValueError``, the library's error for what the user must
    fix: the command line reports it in one line with exit status 2."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived inside :func:`cleanup_on_signals` (``signum``). A ``BaseException``: no
    ``except Exception`` on the way stops it, every cleanup (``finally``, ``except BaseException``) runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def check_output_target(
    output: str | os.PathLike, *, suffixes: Sequence[str] = GEOTIFF_SUFFIXES, what: str = "OUTPUT"
) -> Path:
    """Refuse an ``output`` name that does not end in one of ``suffixes`` (any case; empty: any name) and an
    existing ``output`` that is not a regular file: a symbolic link (not followed, not replaced: give the path
    it points to), a directory, a device, a FIFO or a socket. Returns ``output`` as a Path."""
    out = Path(output)
    if suffixes and out.suffix.lower() not in {s.lower() for s in suffixes}:
        ending = f"ends in {out.suffix!r}" if out.suffix else "has no extension"
        raise ValueError(f"{what} {out} {ending}: a GeoTIFF is written, name it {' or '.join(suffixes)}")
    try:
        st = os.lstat(out)
    except (FileNotFoundError, NotADirectoryError):  # nothing there (a bad folder is check_output_folder's)
        return out
    if stat.S_ISLNK(st.st_mode):
        raise ValueError(
            f"{what} {out} is a symbolic link (to {os.readlink(out)}): links are not replaced nor written through; "
            "give the path of the file itself"
        )
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what} {out} is {_kind(st.st_mode)}: only a regular file is written or replaced")
    return out


def check_output_folder(folder: str | os.PathLike, *, what: str = "OUTPUT") -> Path:
    """The folder an output goes to must exist, be a folder and take a new file (tried: a temporary file is
    created and removed, which also catches read-only file systems and access rules ``os.access`` misses)."""
    d = Path(folder) if str(folder) else Path(".")
    if not d.exists():
        raise FileNotFoundError(f"the folder {d} of {what} does not exist")
    if not d.is_dir():
        raise NotADirectoryError(f"the folder {d} of {what} is not a folder")
    try:
        probe = temporary_path(d / "probe", suffix=".probe")
    except OSError as e:
        raise write_error(d, e, doing=f"cannot create files in the folder {d} of {what}") from e
    remove_quietly(probe)
    return d


def check_not_input(
    output: str | os.PathLike, reads: Iterable[str | os.PathLike], *, what: str = "OUTPUT"
) -> None:
    """Refuse an ``output`` that resolves (``os.path.realpath``, through symbolic links) to one of the files or
    into one of the folders ``reads`` names, or that is the same file (``os.path.samestat``: a hard link) as one
    of them or as any file inside one of the folders."""
    out = Path(output)
    real = os.path.realpath(out)
    try:
        out_stat: os.stat_result | None = os.stat(out)
    except OSError:
        out_stat = None
    for r in reads:
        r_real = os.path.realpath(r)
        if os.path.isdir(r_real):
            if real == r_real or real.startswith(r_real.rstrip(os.sep) + os.sep):
                raise ValueError(f"{what} {out} is inside the input folder {r}: write it outside the input")
            if out_stat is None:
                continue
            for root, _, files in os.walk(r_real):
                for f in files:
                    p = os.path.join(root, f)
                    try:
                        same = os.path.samestat(out_stat, os.stat(p))
                    except OSError:
                        continue
                    if same:
                        raise ValueError(f"{what} {out} is the same file as {p} in the input folder {r} (a link)")
        elif real == r_real or (out_stat is not None and os.path.exists(r) and os.path.samestat(out_stat, os.stat(r))):
            raise ValueError(f"{what} {out} is the input file {r}: it would be overwritten")


def check_output_file(
    output: str | os.PathLike,
    *,
    reads: Iterable[str | os.PathLike] = (),
    suffixes: Sequence[str] = GEOTIFF_SUFFIXES,
    what: str = "OUTPUT",
) -> Path:
    """Every check of an output file before a run: :func:`check_output_target`, :func:`check_not_input` against
    the paths the run ``reads`` and :func:`check_output_folder` of its folder. Returns ``output`` as a Path."""
    out = check_output_target(output, suffixes=suffixes, what=what)
    check_not_input(out, reads, what=what)  # first: the folder check creates (and removes) a file there
    check_output_folder(out.parent, what=f"{what} {out}")
    return out


def temporary_path(final: str | os.PathLike, *, suffix: str = ".part") -> Path:
    """Reserve a unique name ``.NAME.<random><suffix>`` in ``final``'s folder: the file is created empty,
    exclusively (``O_EXCL``: no other run gets the same name), with mode ``0o666`` less the umask, as the output
    itself gets. The caller writes it (or writes over it) and removes or renames it."""
    final = Path(final)
    for _ in range(100):
        tmp = final.with_name(f".{final.name[:_NAME_CHARS]}.{secrets.token_hex(4)}{suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno_codes.EEXIST, f"no free temporary name for {final}", str(final))


def remove_quietly(path: str | os.PathLike | None) -> None:
    """Remove the file ``path`` if it is there (a cleanup step: a missing file is not an error)."""
    if path is None:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def replace_output(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Rename the complete file ``tmp`` to ``final`` (``os.replace``: an existing ``final`` is replaced in one
    step; there is never a moment without a file at ``final``)."""
    os.replace(tmp, final)
    return Path(final)


def write_error(output: str | os.PathLike, exc: BaseException, *, doing: str | None = None) -> OutputWriteError:
    """The :class:`OutputWriteError` for ``exc`` raised while writing ``output``: names the output and the cause
    (the OS's words and GDAL's, when GDAL reported it)."""
    if isinstance(exc, OutputWriteError):
        return exc
    code = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    reason = reason.replace(". See previous exception for details.", "")  # rasterio's pointer to the cause
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in reason:
        reason = f"{reason} ({cause})"
    reason = " ".join(str(reason).split())
    hint = "" if code in (errno_codes.ENOSPC, errno_codes.EROFS, errno_codes.EACCES, errno_codes.EPERM) else (
        "; is the disk full or the folder read-only?"
    )
    head = doing or f"cannot write {output}"
    return OutputWriteError(f"{head}: {reason}{hint}", code)


@contextlib.contextmanager
def atomic_output(
    final: str | os.PathLike, *, suffix: str = ".part", check_suffixes: Sequence[str] = ()
) -> Iterator[Path]:
    """``with atomic_output(path) as tmp:`` write ``tmp``; on a normal exit it replaces ``path``
    (:func:`replace_output`), on an exception it is removed and ``path`` stays as it was. ``path`` is checked
    first (:func:`check_output_target` with ``check_suffixes``). ``OSError`` become :class:`OutputWriteError`."""
    final = check_output_target(final, suffixes=check_suffixes)
    tmp: Path | None = None
    try:
        tmp = temporary_path(final, suffix=suffix)
        yield tmp
        replace_output(tmp, final)
        tmp = None
    except OSError as e:
        raise write_error(final, e) from e
    finally:
        remove_quietly(tmp)


@contextlib.contextmanager
def cleanup_on_signals(signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """For the duration of the ``with`` block, SIGTERM and SIGINT raise :class:`Interrupted` in the main thread,
    so that the cleanup of the code running there (``except BaseException`` / ``finally``: the writers remove
    their temporary files) runs. On leaving, the previous handlers are restored and an interrupting signal is
    raised again: with the default handler the process ends by that signal (exit status 128 + its number), with
    Python's SIGINT handler it raises ``KeyboardInterrupt``, a handler of the caller's gets it.

    A signal that was ignored (``SIG_IGN``) stays ignored; only the first signal interrupts (the cleanup is not
    interrupted by a second one). Outside the main thread (where Python cannot set handlers) it does nothing.
    A signal arriving while the main thread is inside a C call (an engine's forward pass) acts when it returns.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if received:  # already interrupting: let the cleanup finish
            return
        received.append(signum)
        raise Interrupted(signum)

    previous = {}
    for s in signals:
        old = signal.getsignal(s)
        if old is signal.SIG_IGN or old is None:  # ignored, or set outside Python: left as it is
            continue
        previous[s] = old
        signal.signal(s, handler)

    def restore() -> None:
        for s, old in previous.items():
            signal.signal(s, old)

    try:
        yield
    except Interrupted as e:
        restore()
        signal.raise_signal(e.signum)  # the default handler ends the process here
        raise
    finally:
        restore()
    if received:  # the block swallowed the exception: the signal still acts
        signal.raise_signal(received[0])
