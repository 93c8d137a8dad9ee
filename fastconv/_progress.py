"""A small, dependency-free progress bar on stderr (used by ``fastconv bench`` and
``fastconv train``).

>>> for case in progress(cases, desc="bench", postfix_fn=lambda c: c.name):
...     run(case)

or, when the caller counts itself::

    with Progress(total=n_batches, desc="epoch 1") as bar:
        for batch in batches:
            loss = step(batch)
            bar.update(1, loss=f"{loss:.3f}")
        bar.write("epoch 1 done")      # a plain line above the bar

On a terminal the bar redraws one line in place (at most every ``min_interval``
seconds). When the stream is not a TTY (CI logs, pipes, files) it draws nothing: only
:meth:`Progress.write` lines appear, so logs stay free of carriage returns.
"""
import shutil
import sys
import time

__all__ = ["Progress", "progress"]


def _clock(seconds):
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """A progress bar drawn on one line of ``stream`` (default ``sys.stderr``).

    Parameters
    ----------
    total : int or None
        Number of steps; None draws a counter without bar and ETA.
    desc : str
        Label at the left.
    stream : file-like or None
        Where to draw; default ``sys.stderr`` (looked up when the bar is created).
    enabled : bool or None
        None: draw only when ``stream.isatty()``. False: never draw (``write`` still
        prints). True: draw even to a non-terminal.
    min_interval : float
        Seconds between redraws; updates in between are counted but not drawn.
    """

    def __init__(self, total=None, desc="", stream=None, enabled=None, min_interval=0.1):
        self.total = total
        self.desc = desc
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.min_interval = min_interval
        self.n = 0
        self.postfix = ""
        self._start = time.perf_counter()
        self._last_draw = -float("inf")
        self._drawn = False
        self._closed = False

    # ----------------------------------------------------------------- public
    def update(self, n=1, **postfix):
        """Advance by ``n`` steps; keyword arguments become the ``key=value`` postfix."""
        self.n += n
        if postfix:
            self.postfix = "  ".join(f"{k}={v}" for k, v in postfix.items())
        self._draw()

    def set_postfix(self, text):
        """Replace the text shown right of the counter (e.g. the item being worked on)."""
        self.postfix = str(text)
        self._draw()

    def write(self, line):
        """Print ``line`` on its own line, above the bar (which is redrawn after it)."""
        self._clear()
        print(line, file=self.stream, flush=True)
        self._draw(force=True)

    def close(self):
        """Draw the final state and end the bar's line. Idempotent."""
        if self._closed:
            return
        self._draw(force=True)
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---------------------------------------------------------------- drawing
    def format(self, width):
        """The bar's text, at most ``width`` characters."""
        elapsed = time.perf_counter() - self._start
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            frac = min(self.n / self.total, 1.0)
            eta = elapsed / self.n * (self.total - self.n) if self.n else None
            count = f" {self.n}/{self.total} {_clock(elapsed)}<{_clock(eta) if eta is not None else '?'}"
            tail = f"  {self.postfix}" if self.postfix else ""
            bar_w = max(10, min(30, width - len(head) - len(count) - len(tail) - 8))
            fill = int(frac * bar_w)
            text = f"{head}{frac:4.0%} |{'#' * fill}{'.' * (bar_w - fill)}|{count}{tail}"
        else:
            text = f"{head}{self.n} {_clock(elapsed)}" + (f"  {self.postfix}" if self.postfix else "")
        return text[:width]

    def _width(self):
        return max(20, shutil.get_terminal_size((100, 20)).columns - 1)

    def _draw(self, force=False):
        if not self.enabled or self._closed:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        width = self._width()
        self.stream.write("\r" + self.format(width).ljust(width))
        self.stream.flush()
        self._drawn = True

    def _clear(self):
        if self.enabled and self._drawn and not self._closed:
            self.stream.write("\r" + " " * self._width() + "\r")
            self.stream.flush()


def progress(iterable, total=None, desc="", postfix_fn=None, **kwargs):
    """Yield the items of ``iterable`` while drawing a :class:`Progress` bar.

    Parameters
    ----------
    iterable : iterable
    total : int or None
        Default ``len(iterable)`` when it has one.
    desc : str
    postfix_fn : callable or None
        ``postfix_fn(item)`` -> text shown while ``item`` is being processed.
    **kwargs
        Passed to :class:`Progress` (``stream``, ``enabled``, ``min_interval``).
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    with Progress(total=total, desc=desc, **kwargs) as bar:
        for item in iterable:
            if postfix_fn is not None:
                bar.set_postfix(postfix_fn(item))
            yield item
            bar.update(1)
