"""Writing a file so that readers see the old one or the whole new one, never a part."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_write(target):
    """A binary file object that becomes ``target`` (a :class:`pathlib.Path`) when the
    ``with`` block ends without an error; on any error it is removed and ``target`` is
    untouched. The file gets the mode a plain ``open()`` would give (0666 & ~umask)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    try:
        # mkstemp creates 0600
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
