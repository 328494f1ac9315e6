"""Reading videos, GIFs and image folders as ``uint8`` RGB frames (imageio; ffmpeg for video files)."""
from __future__ import annotations

import math
import os
import re
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .common import DEFAULT_FPS, IMAGE_EXTENSIONS, PathLike, VideoReadError

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
