"""Atomic file output: a result is either fully written or not there at all.

Writers put the bytes in a temporary file in the destination folder and ``os.replace`` it
over the target, which is atomic on POSIX; a crash mid-write leaves no half-written result.
Results folders are written the same way, whole, and carry a marker file (:data:`RESULTS_MARKER`)
that only dlora-sim writes: a folder is replaced only when it is missing, empty or marked, so a
typo in ``-o`` can never delete a user's own files.

On the way back, :func:`dig` reads one field of such a record (summary.json, scenario.json) by
its dotted path, :func:`too_deep_at` refuses input nested deeper than any reader's stack allows
and :func:`first_at` finds a value a reader cannot take (:func:`non_finite_at`: the number JSON
could not carry), for every area (cli, scenario, sweep, report).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dlora_sim import __version__
from dlora_sim.errors import InputError

#: the file that marks a folder as one dlora-sim wrote (and so may replace)
RESULTS_MARKER = ".dlora-sim-results"
_TOOL = "dlora-sim"

#: the largest integer a record carries exactly once it meets float arithmetic
MAX_EXACT_INT = 2**53
#: nesting of tables and arrays accepted in any input; far beyond what a scenario needs and far
#: below what exhausts Python's stack in the parsers and validators behind it
MAX_DEPTH = 32


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating parent folders as needed.

    The file gets the permissions a plain ``open(path, "w")`` would give (``mkstemp`` alone
    would leave it readable by its owner only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as stable, sorted, indented JSON (byte-identical for equal objects)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


# --------------------------------------------------------------------------- results folders


def is_results_folder(path: str | Path) -> bool:
    """True iff ``path`` is a real folder holding the marker that :func:`atomic_directory` wrote.

    A ``summary.json`` proves nothing (a user may keep one anywhere); only the marker, a small
    JSON naming the tool, does.
    """
    path = Path(path)
    marker = path / RESULTS_MARKER
    if path.is_symlink() or not path.is_dir() or marker.is_symlink() or not marker.is_file():
        return False
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # unreadable, not UTF-8, not JSON
        return False
    return isinstance(record, dict) and record.get("tool") == _TOOL


def replace_problem(path: str | Path) -> str | None:
    """Why :func:`atomic_directory` must not replace ``path``, or None when it may.

    It may when ``path`` is missing, an empty folder, or a marked results folder. It may not
    when ``path`` is a symbolic link (replacing it would not write where the user looks), a
    file, the current folder or one above it, or a folder of anything else.
    """
    path = Path(path)
    if path.is_symlink():
        return "is a symbolic link; give the folder itself or a new folder"
    if not path.exists():
        return None
    if not path.is_dir():
        return "exists and is not a folder"
    resolved, cwd = path.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        return "is the current folder or one above it; choose a new folder"
    try:
        empty = not any(path.iterdir())
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if empty or is_results_folder(path):
        return None
    return (f"holds files but no {RESULTS_MARKER} marker, so it is not a results folder "
            "dlora-sim wrote; refusing to replace it (choose a new folder)")


def check_replaceable(path: str | Path, what: str = "results folder") -> None:
    """Raise :class:`InputError` (``"<path>: <what> <problem>"``) unless ``path`` may be replaced."""
    problem = replace_problem(path)
    if problem is not None:
        raise InputError(f"{path}: {what} {problem}")


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path``, on error it vanishes.

    Used for result folders: a failed run leaves no folder behind, and a rerun replaces the
    previous results whole. The folder gets the :data:`RESULTS_MARKER` last, just before it
    moves into place. ``path`` is replaced only when :func:`replace_problem` allows it, checked
    before anything is written and again at the end; the previous folder is moved aside first
    and put back if the new one cannot take its place, so no failure loses both.

    Raises:
        InputError: ``path`` may not be replaced, or its parent folder cannot be written.
    """
    path = Path(path)
    check_replaceable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    except OSError as error:
        raise InputError(f"{path}: cannot create the results folder ({error.strerror or error})") from None
    try:
        tmp.chmod(0o777 & ~_current_umask())
        yield tmp
        atomic_write_json(tmp / RESULTS_MARKER, {"tool": _TOOL, "version": __version__})
        _move_into_place(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # already moved on success; removed on any failure


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path``; an existing marked folder is moved aside, then removed."""
    check_replaceable(path)  # again: the folder may have changed while the results were computed
    try:
        if not path.exists() or not any(path.iterdir()):
            os.replace(tmp, path)  # POSIX rename replaces a missing or empty folder atomically
            return
        aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
        os.replace(path, aside)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(aside, path)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    except OSError as error:
        raise InputError(f"{path}: cannot replace the results folder ({error.strerror or error})") from None


# ------------------------------------------------------------------------------------ reading


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``, for a reader of records (``what``: "profile", ...).

    Raises:
        InputError: one line naming the file: missing, unreadable or not UTF-8, not JSON (line
            and column, and whether it looks truncated), an integer too long to read, nested too
            deep for the parser, or not a JSON object.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read {what} ({' '.join(str(error).split())})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        hint = " (file looks truncated)" if error.pos >= len(text.rstrip()) else ""
        raise InputError(f"{path}: not valid JSON at line {error.lineno} column {error.colno}: {error.msg}{hint}") from None
    except ValueError as error:  # an integer too long to convert
        raise InputError(f"{path}: not a {what}: {' '.join(str(error).split())}") from None
    except RecursionError:
        raise InputError(f"{path}: not a {what}: nested more than {MAX_DEPTH} levels deep") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a {what} must be a JSON object, got {type(data).__name__}")
    return data


def dig(obj: Any, dotted: str, default: Any = None) -> Any:
    """``dig(d, "job.budget")``: nested lookup that returns ``default`` on any missing step.

    A step into a list takes an index (``"fleet.groups.0.count"``), as scenario overrides do.
    """
    for part in dotted.split("."):
        if isinstance(obj, Mapping) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return default
    return obj


def too_deep_at(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Where ``value`` first nests tables/arrays deeper than ``max_depth`` (its first dotted
    steps, then ``...``), or None.

    Iterative on purpose: it must refuse exactly what recursive code further on (deep copies,
    pydantic, JSON encoders) would crash on with a RecursionError.
    """
    for where, _ in _walk(value):
        if len(where) > max_depth:
            return ".".join(where[:3]) + "..."
    return None


def first_at(value: Any, predicate: Callable[[Any], bool]) -> str | None:
    """The dotted path of the first node of ``value`` (in document order) that ``predicate``
    accepts, ``"(top level)"`` for ``value`` itself, or None."""
    for where, node in _walk(value):
        if predicate(node):
            return ".".join(where) or "(top level)"
    return None


def non_finite_at(value: Any) -> str | None:
    """The dotted path of the first NaN or infinite float in ``value``, or None.

    JSON cannot carry them (writers here refuse with ``allow_nan=False``), so a record is checked
    before anything is written and the user is told which number overflowed.
    """
    return first_at(value, lambda node: isinstance(node, float) and not math.isfinite(node))


def _walk(value: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every node of nested mappings and lists with its path, depth first, without recursion."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:
        where, node = stack.pop()
        yield where, node
        children = (node.items() if isinstance(node, Mapping)
                    else enumerate(node) if isinstance(node, (list, tuple)) else ())
        stack += reversed([((*where, str(key)), child) for key, child in children])
