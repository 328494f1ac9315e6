"""Atomic file output and the streaming video writer."""
from __future__ import annotations

import contextlib
import math
import os
import tempfile
from typing import Any, Iterator, Optional, Tuple

import numpy as np

from .common import PathLike

# ----------------------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------------------


def _temp_path_for(dest: str) -> str:
    """Create (empty) and return a temporary file next to ``dest`` that keeps ``dest``'s extension."""
    directory = os.path.dirname(os.path.abspath(dest))
    base, ext = os.path.splitext(os.path.basename(dest))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".partial{ext}", dir=directory)
    os.close(fd)
    return tmp


@contextlib.contextmanager
def atomic_output(dest: str) -> Iterator[str]:
    """Yield a temporary path next to ``dest``; on success move it over ``dest``, on error delete it (the one
    atomic-write helper of the package: tracks, results and checkpoints use it)."""
    tmp = _temp_path_for(dest)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode a plain open() would
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data is on disk before the rename makes it visible
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.replace(tmp, dest)


def _check_fps(fps: Any) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise ValueError(f"fps must be a positive finite number, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    return value


class AbortOnError:
    """Context-manager behaviour of the atomic writers: leaving the ``with`` block normally calls ``close()`` (the
    file appears complete), leaving it by an exception calls ``abort()`` (the destination is left untouched)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


class VideoWriter(AbortOnError):
    """Write ``(H, W, 3) uint8`` RGB frames one at a time to an ``.mp4`` or ``.gif`` file, atomically.

    * ``.mp4``: H.264 (``libx264``) in ``yuv420p`` through imageio's ffmpeg plugin, constant quality
      ``crf`` (lower = better, 18 is visually near lossless). yuv420p needs even dimensions, so frames
      with an odd height or width are **padded by one pixel** at the bottom / right (edge pixels
      repeated); the file is then up to one pixel larger than the frames given. Frames are streamed to
      ffmpeg as they come.
    * ``.gif``: imageio's pillow plugin, looping forever, frame duration ``1000 / fps`` ms (GIF stores
      durations in units of 10 ms, and a 256-colour palette per frame). Pillow assembles the GIF at close,
      so frames are held in memory until then; use GIF for short clips only.

    Data goes to a temporary file in the destination directory, moved over ``path`` by :meth:`close`. If
    the ``with`` block raises (or :meth:`abort` is called) the temporary file is removed and ``path`` is
    left untouched. Closing a writer that received no frame raises ``ValueError`` and writes nothing.

    Args:
        path: destination file, ``.mp4`` or ``.gif`` (case-insensitive). Its directory must exist.
        fps: frames per second, a positive number.
        crf: H.264 constant rate factor for ``.mp4`` (0..51).

    Raises:
        ValueError: unsupported extension, bad ``fps``/``crf``, or (in :meth:`write`) a bad frame.
        FileNotFoundError: the destination directory does not exist.
    """

    SUPPORTED = (".mp4", ".gif")

    def __init__(self, path: PathLike, *, fps: float, crf: int = 18):
        self.path = os.fspath(path)
        self.fps = _check_fps(fps)
        ext = os.path.splitext(self.path)[1].lower()
        if ext not in self.SUPPORTED:
            raise ValueError(
                f"VideoWriter: unsupported output extension {ext!r} for {self.path!r}; "
                f"supported: {', '.join(self.SUPPORTED)}"
            )
        if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= crf <= 51:
            raise ValueError(f"crf must be an integer in [0, 51], got {crf!r}")
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"output directory does not exist: {directory!r} (for {self.path!r})")
        self._ext = ext
        self._crf = int(crf)
        self._tmp: Optional[str] = _temp_path_for(self.path)
        self._backend: Any = None
        self.frame_shape: Optional[Tuple[int, int]] = None  # (H, W) of the frames given (before padding)
        self.num_written = 0
        self._done = False

    def _open_backend(self, h: int, w: int) -> None:
        if self._ext == ".mp4":
            import imageio.v2 as iio2

            self._backend = iio2.get_writer(
                self._tmp,
                format="FFMPEG",
                mode="I",
                fps=self.fps,
                codec="libx264",
                pixelformat="yuv420p",
                quality=None,
                macro_block_size=1,  # we pad to even sizes ourselves; never let imageio resize
                ffmpeg_log_level="error",
                output_params=["-crf", str(self._crf), "-preset", "medium"],
            )
        else:
            import imageio.v3 as iio

            self._backend = iio.imopen(self._tmp, "w", plugin="pillow", extension=".gif")

    def write(self, frame: np.ndarray) -> None:
        """Append one frame.

        Args:
            frame: ``(H, W, 3)`` uint8 RGB (``(H, W)`` grayscale and ``(H, W, 4)`` RGBA are accepted and
                converted); every frame must have the size of the first.

        Raises:
            ValueError: wrong shape/dtype, size change, or the writer is closed.
        """
        if self._done:
            raise ValueError(f"VideoWriter for {self.path!r} is already closed")
        a = np.asarray(frame)
        if a.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 (values 0..255), got dtype {a.dtype}")
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
            raise ValueError(f"frame must have shape (H, W, 3), got {a.shape}")
        a = a[:, :, :3]
        h, w = a.shape[:2]
        if self.frame_shape is None:
            self.frame_shape = (h, w)
            self._open_backend(h, w)
        elif (h, w) != self.frame_shape:
            raise ValueError(f"frame size {(h, w)} differs from the first frame's {self.frame_shape}")
        if self._ext == ".mp4":
            pad_h, pad_w = h % 2, w % 2
            if pad_h or pad_w:
                a = np.pad(a, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            self._backend.append_data(np.ascontiguousarray(a))
        else:
            self._backend.write(
                np.ascontiguousarray(a), is_batch=False, duration=1000.0 / self.fps, loop=0
            )
        self.num_written += 1

    def abort(self) -> None:
        """Stop writing and delete the temporary file; ``path`` is left untouched (idempotent)."""
        if self._done:
            return
        self._done = True
        try:
            if self._backend is not None:
                with contextlib.suppress(Exception):
                    self._backend.close()
        finally:
            if self._tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._tmp)
            self._tmp = None

    def close(self) -> None:
        """Finish the file and move it to ``path`` (idempotent).

        Raises:
            ValueError: no frame was written (nothing is saved).
        """
        if self._done:
            return
        if self.num_written == 0:
            self.abort()
            raise ValueError(f"VideoWriter: no frames were written; {self.path!r} was not created")
        try:
            self._backend.close()
        except BaseException:
            self.abort()
            raise
        self._done = True
        assert self._tmp is not None
        os.replace(self._tmp, self.path)
        self._tmp = None


    def __del__(self) -> None:  # pragma: no cover - an unclosed writer never replaces the destination
        with contextlib.suppress(Exception):
            self.abort()
