"""Video, query, mask and track input/output for cotracker_fast.

Everything here is numpy + imageio (with the ffmpeg binary shipped by ``imageio-ffmpeg`` for video files
and imageio's pillow plugin for GIF/PNG/JPEG); there is no OpenCV dependency.

Conventions used throughout the package:

* frames are ``uint8`` RGB arrays of shape ``(H, W, 3)``;
* pixel coordinates are ``(x, y)`` with ``x`` the column and ``y`` the row, in pixels, and the *centre*
  of pixel ``(row i, column j)`` sits at ``(x=j, y=i)``;
* a query is a row ``(t, x, y)``: frame index ``t`` (0-based) and the pixel position in that frame.

Files are written atomically: data goes to a temporary file in the destination's directory which is
moved over the destination with :func:`os.replace` only once it is complete.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "VideoReadError",
    "VideoReader",
    "read_video",
    "VideoWriter",
    "load_queries",
    "load_mask",
    "save_tracks",
    "load_tracks",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "TRACK_EXTENSIONS",
    "atomic_output",
]

#: Still-image extensions read as single frames (and collected from directories), lower case.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
#: Video extensions read through ffmpeg (any other non-image, non-GIF extension is tried with ffmpeg too).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
#: Extensions understood by :func:`save_tracks` / :func:`load_tracks`.
TRACK_EXTENSIONS = (".npz", ".csv", ".json")

DEFAULT_FPS = 25.0


class VideoReadError(OSError):
    """A video (or image sequence) exists but could not be read: corrupt, unsupported, or no frames."""


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------


def _natural_key(name: str) -> List[Any]:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _to_rgb_uint8(image: np.ndarray, where: str) -> np.ndarray:
    """Convert a decoded image to a contiguous ``(H, W, 3) uint8`` RGB array.

    Grayscale ``(H, W)`` / ``(H, W, 1)`` is repeated to three channels, gray+alpha ``(H, W, 2)`` keeps the
    gray channel, RGBA ``(H, W, 4)`` drops alpha. ``uint16`` is reduced to 8 bits, ``bool`` maps to 0/255.
    ``where`` names the file/frame in error messages.
    """
    a = np.asarray(image)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise VideoReadError(f"{where}: unsupported pixel type {a.dtype} (expected 8- or 16-bit integers)")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise VideoReadError(f"{where}: decoded image has unsupported shape {a.shape} (expected (H, W[, C]))")
    c = a.shape[2]
    if c in (1, 2):
        a = np.repeat(a[:, :, :1], 3, axis=2)
    elif c == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def _ffmpeg_error_summary(err: BaseException) -> str:
    """Boil an imageio/ffmpeg error (which embeds ffmpeg's whole stderr) down to one useful line."""
    text = str(err)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    interesting = [
        ln
        for ln in lines
        if any(k in ln for k in ("Invalid data", "moov atom", "Error opening input", "not found", "No such"))
    ]
    if interesting:
        return interesting[-1]
    return lines[0] if lines else type(err).__name__


def _decoded(frames: Iterator[Any], describe) -> Iterator[np.ndarray]:
    """Yield decoded frames as arrays; a decoder error becomes a :class:`VideoReadError` whose message
    ``describe(frame_index, error)`` names the file and the frame."""
    index = 0
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except Exception as err:
            raise VideoReadError(describe(index, err)) from None
        yield np.asarray(frame)
        index += 1


def _check_max_frames(max_frames: Optional[int]) -> Optional[int]:
    if max_frames is None:
        return None
    if isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames < 1:
        raise ValueError(f"max_frames must be a positive integer or None, got {max_frames!r}")
    return int(max_frames)


# ----------------------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------------------


class VideoReader:
    """Stream the frames of a video one at a time as ``(H, W, 3) uint8`` RGB arrays.

    Sources:

    * a video file read through ffmpeg (``.mp4 .avi .mov .mkv .webm`` ... ; frames are decoded on demand
      through a pipe, so the whole video is never held in memory);
    * an animated (or still) ``.gif``, read frame by frame with imageio's pillow plugin;
    * a single still image (``.png .jpg`` ...), a one-frame video;
    * a directory of still images, taken in natural sort order (``f2.png`` before ``f10.png``), hidden
      files and non-image files ignored;
    * a list/tuple of image paths, taken in the given order.

    Grayscale frames are repeated to RGB, an alpha channel is dropped, 16-bit images are reduced to 8 bits.

    The first frame is decoded when the reader is opened (so ``shape_hw`` is always known and a source
    without frames fails immediately); it is kept and yielded first, not decoded twice.

    Attributes:
        path: the source as given (``str`` for a path, ``list[str]`` for an image list).
        fps: frames per second (float); ``25.0`` when the source does not say (image lists, GIFs without
            a frame duration).
        shape_hw: ``(H, W)`` of every frame, in pixels.
        num_frames: number of frames iteration will yield (already capped by ``max_frames``), or ``None``
            when it cannot be determined without decoding. For ffmpeg sources it is counted lazily on first
            access by demuxing (not decoding) the file.

    Each ``for frame in reader`` pass starts from the first frame. Use as a context manager or call
    :meth:`close` to release the decoder.

    Args:
        path: file, directory, or sequence of image files.
        max_frames: stop after this many frames (positive int), or ``None`` for all.

    Raises:
        FileNotFoundError: ``path`` (or a listed image) does not exist.
        VideoReadError: the source cannot be decoded, has no video stream, or has zero frames.
        ValueError: ``max_frames`` is not a positive integer.
    """

    def __init__(self, path: Union[PathLike, Sequence[PathLike]], *, max_frames: Optional[int] = None):
        self._max_frames = _check_max_frames(max_frames)
        self._closed = False
        self._num_frames_cache: Optional[int] = None
        self._num_frames_known = False
        self.fps: float = DEFAULT_FPS
        self.shape_hw: Tuple[int, int] = (0, 0)

        if isinstance(path, (list, tuple)):
            if len(path) == 0:
                raise VideoReadError("image list is empty: it contains no frames")
            self._files = [os.fspath(p) for p in path]
            for f in self._files:
                if not os.path.isfile(f):
                    raise FileNotFoundError(f"image file not found: {f!r}")
            self.path: Union[str, List[str]] = list(self._files)
            self._kind = "images"
            self._name = f"image list ({len(self._files)} files, first {self._files[0]!r})"
        else:
            p = os.fspath(path)
            self.path = p
            self._name = repr(p)
            if not os.path.exists(p):
                raise FileNotFoundError(f"video not found: {p!r}")
            if os.path.isdir(p):
                names = [
                    n
                    for n in os.listdir(p)
                    if not n.startswith(".")
                    and os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS
                    and os.path.isfile(os.path.join(p, n))
                ]
                if not names:
                    raise VideoReadError(
                        f"{p!r}: directory contains no frames (no files with extensions {', '.join(IMAGE_EXTENSIONS)})"
                    )
                self._files = [os.path.join(p, n) for n in sorted(names, key=_natural_key)]
                self._kind = "images"
            else:
                ext = os.path.splitext(p)[1].lower()
                if ext == ".gif":
                    self._kind = "gif"
                elif ext in IMAGE_EXTENSIONS:
                    self._kind = "images"
                    self._files = [p]
                else:
                    self._kind = "ffmpeg"

        if self._kind == "images":
            self._num_frames_cache = len(self._files)
            self._num_frames_known = True

        gen = self._frames()
        try:
            first = next(gen)
        except StopIteration:
            raise VideoReadError(f"{self._name}: contains no frames") from None
        self.shape_hw = (int(first.shape[0]), int(first.shape[1]))
        self._pending: Optional[Tuple[Iterator[np.ndarray], np.ndarray]] = (gen, first)

    # -- backends: each is a generator yielding raw decoded frames; it owns (and closes) its decoder --------

    def _iter_ffmpeg(self) -> Iterator[np.ndarray]:
        import imageio.v2 as iio2

        try:
            reader = iio2.get_reader(self.path, format="FFMPEG")
        except Exception as err:  # imageio raises OSError/RuntimeError with ffmpeg's stderr inside
            text = str(err)
            if "Input #0" in text and "Video:" not in text:
                raise VideoReadError(f"{self._name}: contains no video stream (zero video frames)") from None
            raise VideoReadError(
                f"{self._name}: could not open video with ffmpeg ({_ffmpeg_error_summary(err)})"
            ) from None
        try:
            meta = reader.get_meta_data()
            fps = meta.get("fps")
            if isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0:
                self.fps = float(fps)
            yield from _decoded(reader.iter_data(), lambda i, err: (
                f"{self._name}: failed to decode frame {i} ({_ffmpeg_error_summary(err)})"))
        finally:
            reader.close()

    def _iter_gif(self) -> Iterator[np.ndarray]:
        import imageio.v3 as iio

        try:
            handle = iio.imopen(self.path, "r", plugin="pillow")
        except Exception as err:
            raise VideoReadError(f"{self._name}: could not open GIF ({type(err).__name__}: {err})") from None
        try:
            try:
                meta = handle.metadata(index=0)
                duration_ms = float(meta.get("duration") or 0.0)
                if duration_ms > 0:
                    self.fps = 1000.0 / duration_ms
                if not self._num_frames_known:
                    self._num_frames_cache = int(handle.properties(index=...).n_images)
                    self._num_frames_known = True
            except Exception:
                pass  # metadata is optional; frames are what matter
            yield from _decoded(handle.iter(), lambda i, err: (
                f"{self._name}: failed to decode GIF frame {i} ({type(err).__name__}: {err})"))
        finally:
            handle.close()

    def _iter_images(self) -> Iterator[np.ndarray]:
        import imageio.v3 as iio

        for f in self._files:
            if not os.path.isfile(f):
                raise FileNotFoundError(f"image file not found: {f!r}")
            try:
                frame = iio.imread(f, plugin="pillow")
            except Exception as err:
                raise VideoReadError(f"{f!r}: could not read image ({type(err).__name__}: {err})") from None
            if frame.ndim == 4:  # a multi-page file (e.g. animated PNG/WebP): take its first page
                frame = frame[0]
            yield frame

    def _frames(self) -> Iterator[np.ndarray]:
        """Frames converted to RGB uint8, size-checked, capped at ``max_frames``."""
        backend = {"ffmpeg": self._iter_ffmpeg, "gif": self._iter_gif, "images": self._iter_images}[self._kind]
        raw = backend()
        try:
            count = 0
            for raw_frame in raw:
                where = f"{self._name} frame {count}"
                if self._kind == "images":
                    where = repr(self._files[count])
                frame = _to_rgb_uint8(raw_frame, where)
                if count > 0 and frame.shape[:2] != self.shape_hw:
                    raise VideoReadError(
                        f"{where}: frame size {frame.shape[:2]} differs from the first frame's {self.shape_hw}"
                    )
                yield frame
                count += 1
                if self._max_frames is not None and count >= self._max_frames:
                    return
        finally:
            raw.close()

    # -- public interface ---------------------------------------------------------------------------------

    @property
    def num_frames(self) -> Optional[int]:
        """Number of frames iteration yields (capped by ``max_frames``), or ``None`` if unknown."""
        if not self._num_frames_known:
            self._num_frames_known = True
            if self._kind == "ffmpeg":
                try:
                    import imageio_ffmpeg

                    n, _secs = imageio_ffmpeg.count_frames_and_secs(self.path)
                    self._num_frames_cache = int(n) if n > 0 else None
                except Exception:
                    self._num_frames_cache = None
        n = self._num_frames_cache
        if n is not None and self._max_frames is not None:
            n = min(n, self._max_frames)
        return n

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._closed:
            raise ValueError(f"VideoReader for {self._name} is closed")
        if self._pending is not None:
            gen, first = self._pending
            self._pending = None
            return self._chain_first(gen, first)
        return self._frames()

    @staticmethod
    def _chain_first(gen: Iterator[np.ndarray], first: np.ndarray) -> Iterator[np.ndarray]:
        try:
            yield first
            yield from gen
        finally:
            gen.close()

    def close(self) -> None:
        """Release the decoder held for the first pass (idempotent)."""
        if self._pending is not None:
            self._pending[0].close()
            self._pending = None
        self._closed = True

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort cleanup of an ffmpeg subprocess
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return (
            f"VideoReader({self._name}, shape_hw={self.shape_hw}, fps={self.fps:g}, "
            f"max_frames={self._max_frames})"
        )


def read_video(path: Union[PathLike, Sequence[PathLike]], *, max_frames: Optional[int] = None) -> np.ndarray:
    """Read a (short) video completely into memory.

    Args:
        path: anything :class:`VideoReader` accepts.
        max_frames: read at most this many frames (positive int) or ``None`` for all.

    Returns:
        ``(T, H, W, 3) uint8`` RGB frames, ``T >= 1``.

    Raises:
        FileNotFoundError, VideoReadError, ValueError: as :class:`VideoReader`.
    """
    with VideoReader(path, max_frames=max_frames) as reader:
        frames = list(reader)
    return np.stack(frames, axis=0)


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


class VideoWriter:
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

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:  # pragma: no cover - an unclosed writer never replaces the destination
        with contextlib.suppress(Exception):
            self.abort()


# ----------------------------------------------------------------------------------------------------------
# queries and masks
# ----------------------------------------------------------------------------------------------------------


def _validate_query_rows(rows: List[Tuple[str, Sequence[Any]]], path: str) -> np.ndarray:
    """Check ``(label, values)`` rows are 3 finite numbers with ``t`` a non-negative integer."""
    out = np.empty((len(rows), 3), dtype=np.float64)
    for i, (label, values) in enumerate(rows):
        if len(values) != 3:
            raise ValueError(f"{path!r}, {label}: expected 3 columns (t, x, y), got {len(values)}: {list(values)!r}")
        try:
            vals = [float(v) for v in values]
        except (TypeError, ValueError):
            raise ValueError(f"{path!r}, {label}: values must be numbers (t, x, y), got {list(values)!r}") from None
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"{path!r}, {label}: non-finite value in (t, x, y) = {vals!r}")
        t = vals[0]
        if t < 0:
            raise ValueError(f"{path!r}, {label}: frame index t must be >= 0, got {t:g}")
        if t != int(t):
            raise ValueError(f"{path!r}, {label}: frame index t must be an integer, got {t:g}")
        out[i] = vals
    if len(rows) == 0:
        raise ValueError(f"{path!r}: contains no queries")
    return out.astype(np.float32)


def load_queries(path: PathLike) -> np.ndarray:
    """Load query points ``(t, x, y)``: frame index and pixel position in that frame.

    Formats (by extension):

    * ``.csv`` / ``.txt``: one query per line, comma- or whitespace-separated; an optional first line
      ``t,x,y`` (header); blank lines and lines starting with ``#`` are ignored.
    * ``.npy``: a numeric array of shape ``(N, 3)``.
    * ``.json``: a list of ``[t, x, y]`` or a list of ``{"t": .., "x": .., "y": ..}`` (also accepted
      wrapped as ``{"queries": [...]}``).

    Returns:
        ``(N, 3) float32``, ``N >= 1``; ``t`` integer-valued and ``>= 0``, ``x``/``y`` in pixels.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown extension, unparsable file, wrong column count, non-finite value, negative
            or fractional ``t``, or no queries; the message names the file and the row (line number for
            text files, 0-based index for ``.npy``/``.json``).
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"queries file not found: {p!r}")
    ext = os.path.splitext(p)[1].lower()
    rows: List[Tuple[str, Sequence[Any]]] = []
    if ext in (".csv", ".txt"):
        with open(p, "r", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        first_content = True
        for lineno, line in enumerate(lines, start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            tokens = [tok for tok in re.split(r"[,\s]+", s) if tok != ""]
            if first_content:
                first_content = False
                if [tok.lower() for tok in tokens] == ["t", "x", "y"]:
                    continue
            rows.append((f"line {lineno}", tokens))
    elif ext == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as err:
            raise ValueError(f"{p!r}: could not read .npy ({type(err).__name__}: {err})") from None
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"{p!r}: expected an array of shape (N, 3) with rows (t, x, y), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise ValueError(f"{p!r}: expected a real numeric array, got dtype {arr.dtype}")
        rows = [(f"row {i}", list(r)) for i, r in enumerate(arr.tolist())]
    elif ext == ".json":
        try:
            with open(p, "r", encoding="utf-8") as fh:
                data = json.load(fh)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{p!r}: invalid JSON ({err})") from None
        if isinstance(data, dict) and "queries" in data:
            data = data["queries"]
        if not isinstance(data, list):
            raise ValueError(f"{p!r}: expected a JSON list of [t, x, y] or {{'t', 'x', 'y'}} items")
        for i, item in enumerate(data):
            if isinstance(item, dict):
                missing = [k for k in ("t", "x", "y") if k not in item]
                if missing:
                    raise ValueError(f"{p!r}, item {i}: missing key(s) {missing} (expected 't', 'x', 'y')")
                extra = sorted(set(item) - {"t", "x", "y"})
                if extra:
                    raise ValueError(f"{p!r}, item {i}: unexpected key(s) {extra} (expected 't', 'x', 'y')")
                rows.append((f"item {i}", [item["t"], item["x"], item["y"]]))
            elif isinstance(item, list):
                if any(isinstance(v, bool) for v in item):
                    raise ValueError(f"{p!r}, item {i}: values must be numbers (t, x, y), got {item!r}")
                rows.append((f"item {i}", item))
            else:
                raise ValueError(f"{p!r}, item {i}: expected [t, x, y] or {{'t','x','y'}}, got {item!r}")
    else:
        raise ValueError(f"{p!r}: unsupported queries extension {ext!r}; supported: .csv, .txt, .npy, .json")
    return _validate_query_rows(rows, p)


def load_mask(path: PathLike) -> np.ndarray:
    """Load a segmentation mask image (PNG, or any still image imageio reads).

    A pixel is inside when it is nonzero: for grayscale the value, for gray+alpha the gray value, for
    RGB/RGBA any of the R, G, B channels (alpha is ignored). Palette images are expanded to their colours
    first, so palette index 0 counts as inside unless its colour is black.

    Returns:
        ``(H, W) bool``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file cannot be decoded as a single still image.
    """
    import imageio.v3 as iio

    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"mask file not found: {p!r}")
    try:
        img = np.asarray(iio.imread(p, plugin="pillow"))
    except Exception as err:
        raise ValueError(f"{p!r}: could not read mask image ({type(err).__name__}: {err})") from None
    if img.ndim == 2:
        return img != 0
    if img.ndim == 3 and img.shape[2] in (1, 2):
        return img[:, :, 0] != 0
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return np.any(img[:, :, :3] != 0, axis=2)
    raise ValueError(f"{p!r}: mask must be a single 2-D image (H, W[, C]), got array of shape {img.shape}")


# ----------------------------------------------------------------------------------------------------------
# tracks
# ----------------------------------------------------------------------------------------------------------


def _check_tracks(tracks: Any, visibility: Any, queries: Any, fps: Any):
    tr = np.asarray(tracks)
    if tr.ndim != 3 or tr.shape[2] != 2:
        raise ValueError(f"tracks must have shape (T, N, 2) with (x, y) in pixels, got {tr.shape}")
    if not np.issubdtype(tr.dtype, np.number) or np.iscomplexobj(tr):
        raise ValueError(f"tracks must be real numbers, got dtype {tr.dtype}")
    tr = tr.astype(np.float32)
    vis = np.asarray(visibility)
    if vis.shape != tr.shape[:2]:
        raise ValueError(f"visibility must have shape (T, N) = {tr.shape[:2]}, got {vis.shape}")
    if vis.dtype != np.bool_:
        if not np.issubdtype(vis.dtype, np.number) or not np.all((vis == 0) | (vis == 1)):
            raise ValueError("visibility must be boolean (or 0/1 numbers)")
        vis = vis != 0
    q = None
    if queries is not None:
        q = np.asarray(queries)
        if q.ndim != 2 or q.shape != (tr.shape[1], 3):
            raise ValueError(f"queries must have shape (N, 3) = ({tr.shape[1]}, 3) rows (t, x, y), got {q.shape}")
        q = q.astype(np.float32)
    f = None if fps is None else _check_fps(fps)
    return tr, vis, q, f


def _float_strings(a: np.ndarray) -> np.ndarray:
    """Shortest decimal strings that read back to the same float32 values (``nan``/``inf`` kept)."""
    return np.asarray(a, dtype=np.float32).astype(str)


def _json_floats(a: np.ndarray) -> Any:
    """Nested lists of Python floats with float32-shortest decimals; non-finite values become ``None``."""
    strings = _float_strings(a)
    finite = np.isfinite(a)
    flat = [float(s) if ok else None for s, ok in zip(strings.ravel().tolist(), finite.ravel().tolist())]
    return np.array(flat, dtype=object).reshape(a.shape).tolist()


def save_tracks(
    path: PathLike,
    tracks: np.ndarray,
    visibility: np.ndarray,
    *,
    queries: Optional[np.ndarray] = None,
    fps: Optional[float] = None,
) -> None:
    """Save tracks atomically (temporary file in the same directory + :func:`os.replace`).

    Args:
        path: destination; the extension picks the format:

            * ``.npz``: compressed arrays ``tracks`` (T, N, 2) float32, ``visibility`` (T, N) bool, and
              ``queries`` (N, 3) float32 / ``fps`` () float64 when given;
            * ``.csv``: header ``frame,track,x,y,visible``, one row per (frame, track), frame-major;
              ``visible`` is 0/1; floats are written with the shortest decimals that read back exactly
              as float32;
            * ``.json``: ``{"tracks": [[[x, y], ...] per frame], "visibility": [[bool, ...] per frame],
              "queries": [[t, x, y], ...], "fps": ...}`` (the last two only when given); non-finite
              coordinates become ``null``.
        tracks: ``(T, N, 2)`` positions ``(x, y)`` in pixels (NaN allowed for "no position").
        visibility: ``(T, N)`` bool (or 0/1 numbers).
        queries: optional ``(N, 3)`` rows ``(t, x, y)``.
        fps: optional positive frames per second (not stored in ``.csv``).

    Raises:
        ValueError: unknown extension (the message lists the supported ones) or bad array shapes.
        FileNotFoundError: the destination directory does not exist.
    """
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext not in TRACK_EXTENSIONS:
        raise ValueError(f"{p!r}: unsupported tracks extension {ext!r}; supported: {', '.join(TRACK_EXTENSIONS)}")
    tr, vis, q, f = _check_tracks(tracks, visibility, queries, fps)
    directory = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"output directory does not exist: {directory!r} (for {p!r})")
    with atomic_output(p) as tmp:
        if ext == ".npz":
            arrays: Dict[str, np.ndarray] = {"tracks": tr, "visibility": vis}
            if q is not None:
                arrays["queries"] = q
            if f is not None:
                arrays["fps"] = np.asarray(f, dtype=np.float64)
            with open(tmp, "wb") as fh:  # a file object: numpy does not append ".npz" to the name
                np.savez_compressed(fh, **arrays)
        elif ext == ".csv":
            t_len, n = vis.shape
            xs = _float_strings(tr[..., 0]).ravel().tolist()
            ys = _float_strings(tr[..., 1]).ravel().tolist()
            vv = vis.ravel().tolist()
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write("frame,track,x,y,visible\n")
                k = 0
                for ti in range(t_len):
                    fh.write(
                        "".join(
                            f"{ti},{ni},{xs[k + ni]},{ys[k + ni]},{1 if vv[k + ni] else 0}\n" for ni in range(n)
                        )
                    )
                    k += n
        else:
            doc: Dict[str, Any] = {"tracks": _json_floats(tr), "visibility": vis.tolist()}
            if q is not None:
                doc["queries"] = _json_floats(q)
            if f is not None:
                doc["fps"] = f
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, separators=(",", ":"), allow_nan=False)


def load_tracks(path: PathLike) -> Dict[str, Any]:
    """Load tracks written by :func:`save_tracks` (``.npz``, ``.csv`` or ``.json``).

    Returns:
        ``{"tracks": (T, N, 2) float32, "visibility": (T, N) bool, "queries": (N, 3) float32 or None,
        "fps": float or None}`` (``.csv`` never has queries/fps).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown extension or malformed content.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"tracks file not found: {p!r}")
    ext = os.path.splitext(p)[1].lower()
    if ext == ".npz":
        with np.load(p, allow_pickle=False) as data:
            if "tracks" not in data or "visibility" not in data:
                raise ValueError(f"{p!r}: missing 'tracks' and/or 'visibility' arrays")
            out = {
                "tracks": data["tracks"].astype(np.float32),
                "visibility": data["visibility"].astype(bool),
                "queries": data["queries"].astype(np.float32) if "queries" in data else None,
                "fps": float(data["fps"]) if "fps" in data else None,
            }
    elif ext == ".json":
        with open(p, "r", encoding="utf-8") as fh:
            doc = json.load(fh)
        if not isinstance(doc, dict) or "tracks" not in doc or "visibility" not in doc:
            raise ValueError(f"{p!r}: expected a JSON object with 'tracks' and 'visibility'")
        tr = np.array(doc["tracks"], dtype=np.float64)  # null -> nan
        if tr.size == 0:
            tr = tr.reshape(len(doc["tracks"]), 0, 2)
        out = {
            "tracks": tr.astype(np.float32),
            "visibility": np.array(doc["visibility"], dtype=bool).reshape(tr.shape[:2]),
            "queries": None if doc.get("queries") is None else np.array(doc["queries"], np.float64).astype(np.float32),
            "fps": None if doc.get("fps") is None else float(doc["fps"]),
        }
    elif ext == ".csv":
        with open(p, "r", encoding="utf-8") as fh:
            header = fh.readline().strip()
            if header != "frame,track,x,y,visible":
                raise ValueError(f"{p!r}: expected header 'frame,track,x,y,visible', got {header!r}")
            body = fh.read()
        raw = np.loadtxt(body.splitlines(), delimiter=",", dtype=np.float64, ndmin=2) if body.strip() else None
        if raw is None:
            raise ValueError(f"{p!r}: no rows")
        frames, track_ids = raw[:, 0].astype(np.int64), raw[:, 1].astype(np.int64)
        t_len, n = int(frames.max()) + 1, int(track_ids.max()) + 1
        if raw.shape[0] != t_len * n:
            raise ValueError(f"{p!r}: expected {t_len} x {n} = {t_len * n} rows, found {raw.shape[0]}")
        tr = np.full((t_len, n, 2), np.nan, dtype=np.float32)
        vis = np.zeros((t_len, n), dtype=bool)
        tr[frames, track_ids, 0] = raw[:, 2]
        tr[frames, track_ids, 1] = raw[:, 3]
        vis[frames, track_ids] = raw[:, 4] != 0
        out = {"tracks": tr, "visibility": vis, "queries": None, "fps": None}
    else:
        raise ValueError(f"{p!r}: unsupported tracks extension {ext!r}; supported: {', '.join(TRACK_EXTENSIONS)}")
    tr = out["tracks"]
    if tr.ndim != 3 or tr.shape[2] != 2 or out["visibility"].shape != tr.shape[:2]:
        raise ValueError(f"{p!r}: malformed tracks {tr.shape} / visibility {out['visibility'].shape}")
    return out
