"""Keep TensorFlow's start-up log lines out of the command line's output.

TensorFlow 2.21 writes its C++ log lines (``I0000 00:00:… port.cc:153] oneDNN custom operations
are on…``, "Could not find cuda drivers", "failed call to cuInit") straight to file descriptor 2
before its logging is configured, so neither ``TF_CPP_MIN_LOG_LEVEL`` nor any other variable
silences them (tried on this machine). ``filtered_stderr`` puts a pipe in front of descriptor 2 and
forwards every line except those, so the CLI's own messages and Python's tracebacks still get through.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

# absl's line prefix (severity, date, time, thread, file:line]) and its one-line preamble.
NOISE = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\]|"
                   rb"WARNING: All log messages before absl::InitializeLog\(\) is called)")


def is_noise(line: bytes) -> bool:
    """True for one of TensorFlow's C++ log lines."""
    return NOISE.match(line) is not None


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """While inside, lines written to descriptor 2 reach the real stderr unless they are TF noise."""
    original = os.dup(2)
    reader, writer = os.pipe()
    os.dup2(writer, 2)
    os.close(writer)
    forwarder = threading.Thread(target=_forward, args=(reader, original), daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the forwarder sees the end and stops
        forwarder.join(timeout=5)
        os.close(original)


def _forward(reader: int, target: int) -> None:
    with os.fdopen(reader, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if pending and pending[:1] not in b"IWEF":  # a progress line ending in "\r": show it now
                lines, pending = [*lines, pending], b""
                _write(target, [line + b"\n" for line in lines[:-1]] + [lines[-1]])
            else:
                _write(target, [line + b"\n" for line in lines])
        _write(target, [pending] if pending else [])


def _write(target: int, lines: list[bytes]) -> None:
    kept = b"".join(line for line in lines if not is_noise(line))
    if kept:
        os.write(target, kept)
