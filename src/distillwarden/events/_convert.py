"""Spool conversion in a short-lived child process (``python -m distillwarden.events._convert``).

Parsing a spool and writing Parquet makes a burst of Arrow buffers and Python objects (tens of
MB for a 50,000-event spool). In the serving process that burst would stay as resident
memory; in a child it is gone when the child exits, and the gateway never loads Arrow at all.

The child converts one spool exactly as the in-process path does (same segment name, so a
retry can never duplicate events), then deletes the spool. It inherits the writer's locked
file descriptor on the spool (``--hold-fd``), so if the writer is killed meanwhile the spool
still counts as owned until the child is done, and no other writer converts it at the same
time. Its result is one JSON line on stdout; anything it logs goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ._segments import fsync_dir

__all__ = ["ConversionFailed", "ConversionOutcome", "convert_in_child", "main"]

#: The child runs this much nicer than its parent: request handling wins the CPU, conversion
#: (which only has to keep up on average) takes what is left.
CHILD_NICENESS = 5
#: Arrow JSON block size and rows per table in the child: they bound its memory (about 30 MB
#: over the ~75 MB of Python and Arrow for a 50,000-event spool; bench/gateway/conversion_memory.py).
CHILD_BLOCK_BYTES = 256 << 10
CHILD_BATCH_ROWS = 5_000


class ConversionFailed(RuntimeError):
    """The child did not convert the spool (error, crash, kill or timeout); it is kept."""


@dataclass
class ConversionOutcome:
    """What one conversion produced, and what it cost when done in a child."""

    rows: int = 0
    rejected: int = 0
    segment: str | None = None
    already_converted: bool = False
    torn_line: int | None = None
    reasons: list[str] = field(default_factory=list)
    pid: int = 0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0


def convert_in_child(
    spool: Path, segment_dir: Path, *, hold_fd: int | None, timeout_s: float
) -> ConversionOutcome:
    """Convert ``spool`` into a segment in ``segment_dir`` in a new process and wait for it.

    Raises :class:`ConversionFailed` when the child fails, is killed or runs past
    ``timeout_s`` (it is then killed); ``OSError`` when no child could be started.
    """
    argv = [sys.executable, "-m", __name__, str(spool), str(segment_dir),
            "--nice", str(CHILD_NICENESS)]
    pass_fds: tuple[int, ...] = ()
    if hold_fd is not None:
        argv += ["--hold-fd", str(hold_fd)]
        pass_fds = (hold_fd,)
    if not sys.executable:
        raise OSError("no Python interpreter path (sys.executable) to start a child with")
    try:
        proc = subprocess.run(
            argv, pass_fds=pass_fds, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=timeout_s, check=False,
        )
    except subprocess.TimeoutExpired as exc:  # run() has killed and reaped it
        raise ConversionFailed(f"conversion process ran past {timeout_s:.0f} s, killed") from exc
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        detail = stderr.splitlines()[-1] if stderr else "no message"
        raise ConversionFailed(f"conversion process {how}: {detail}")
    try:
        data = orjson.loads(proc.stdout.strip().splitlines()[-1])
        outcome = ConversionOutcome(**data)
    except (IndexError, TypeError, orjson.JSONDecodeError) as exc:
        raise ConversionFailed(f"conversion process gave no result: {proc.stdout[-200:]!r}") from exc
    if stderr:  # warnings (torn line, rejected events) go to the writer's log
        log = logging.getLogger("distillwarden.events")
        for line in stderr.splitlines():
            log.warning("conversion of %s (pid %d): %s", spool.name, outcome.pid, line)
    return outcome


def _peak_rss_mb() -> float:
    """This process's peak resident memory since exec (VmHWM). ``ru_maxrss`` would do
    elsewhere but on Linux it carries over the parent's size at fork."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def main(argv: list[str] | None = None) -> int:
    """The child's entry point: convert, delete the spool, print the outcome as JSON."""
    ap = argparse.ArgumentParser(prog="python -m distillwarden.events._convert",
                                 description="convert one event spool into a Parquet segment")
    ap.add_argument("spool", type=Path)
    ap.add_argument("segment_dir", type=Path)
    ap.add_argument("--hold-fd", type=int, default=None,
                    help="inherited descriptor holding the spool's lock; kept open until done")
    ap.add_argument("--nice", type=int, default=0, help="raise this process's niceness by N")
    ap.add_argument("--block-bytes", type=int, default=CHILD_BLOCK_BYTES,
                    help="JSON bytes parsed at a time (bounds memory)")
    ap.add_argument("--batch-rows", type=int, default=CHILD_BATCH_ROWS,
                    help="events per Arrow table (bounds memory)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    if args.nice > 0:
        with contextlib.suppress(OSError):
            os.nice(args.nice)
    from ._spool import convert_spool  # Arrow is loaded here, in the child only

    try:
        result = convert_spool(args.spool, args.segment_dir, batch_rows=args.batch_rows,
                               block_bytes=args.block_bytes)
    except Exception as exc:  # the spool is kept; the writer retries with backoff
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    # The segment (and any rejected file) is durable: the spool can go. The writer tries the
    # same when this returns; doing it here too covers a writer killed meanwhile.
    with contextlib.suppress(FileNotFoundError):
        args.spool.unlink()
    fsync_dir(args.spool.parent)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    outcome = ConversionOutcome(
        rows=result.rows,
        rejected=result.rejected,
        segment=str(result.segment) if result.segment is not None else None,
        already_converted=result.already_converted,
        torn_line=result.torn_line,
        reasons=result.reasons,
        pid=os.getpid(),
        cpu_s=round(usage.ru_utime + usage.ru_stime, 4),
        peak_rss_mb=_peak_rss_mb(),
    )
    sys.stdout.buffer.write(orjson.dumps(outcome.__dict__, option=orjson.OPT_APPEND_NEWLINE))
    sys.stdout.flush()
    if args.hold_fd is not None:
        with contextlib.suppress(OSError):
            os.close(args.hold_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
