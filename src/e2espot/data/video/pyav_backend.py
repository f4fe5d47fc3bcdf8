"""PyAV (FFmpeg) backend: exact random access into video files, upright and at true times.

On open, the packets are demuxed once (no decoding) into a timestamp index: the exact frame count,
every frame's presentation time and the keyframes. ``read_clip`` seeks to the keyframe at or before
the first frame asked for and decodes forward; it keeps decoding without a seek when the next clip
starts at or after the decoder's position within the same GOP. Decoded frames are identified by
their timestamps, so ``read_clip(k, n)`` equals frames k..k+n-1 of a full sequential decode, with
B-frames, open GOPs and long GOPs.

Exactness, kind by kind:

* Containers whose packet timestamps are presentation times (MP4/MOV, Matroska/WebM, ...): the
  index above. After a seek, frames shown before the keyframe (the leading B-frames of an open GOP,
  which reference the previous GOP) are skipped, never returned.
* AVI (its timestamps are decode times; H.264 in AVI carries no presentation times at all) and any
  file with missing or repeated timestamps: the file is decoded once on open (no colour
  conversion) to learn which packet each displayed frame came from. This is the slower exact path;
  ``e2espot prepare`` turns such files into short-GOP MP4s once.
* A frame missing after a seek is looked for again from an earlier keyframe, then from the start
  of the file; only when a sequential decode lacks it too is the file reported corrupt.
* Display rotation (phone footage; the stream's display matrix, read with PyAV's
  frame side data): frames come out as displayed, ``width`` / ``height`` are the upright ones and
  ``rotation`` / ``mirrored`` say what was applied (ffmpeg's ``-autorotate`` behaviour, flips
  included).
* Variable frame rate: ``frame_times_s`` are the true presentation times of the frames returned; ask
  for an ``fps`` to get frames resampled by timestamps at a constant rate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from e2espot.data.video.base import (
    VIDEO_EXTENSIONS,
    VideoInfo,
    VideoReader,
    keep_inherited,
    output_size,
    register_backend,
    resample_indices,
    same_rate,
    track_open_reader,
)
from e2espot.errors import VideoError

# whether this PyAV's VideoFrame.to_ndarray / reformat accepts threads= (checked on first use)
_SWS_THREADS_KWARG = True

# containers whose packet timestamps are not presentation timestamps: map them by one full decode
_UNTRUSTED_PTS_FORMATS = ("avi",)
# after a seek, at most this many frames shown before the keyframe are skipped before giving up
_MAX_LEADING_FRAMES = 512
# the decoded index of AVI-like files, by (path, size, mtime): labels alignment, datasets and
# predict open the same file several times in one process, and each would decode it whole
_DECODED_INDEX_CACHE: dict[tuple, tuple] = {}
_DECODED_INDEX_CACHE_SIZE = 64


class _MissingFrame(Exception):
    """A wanted source frame was not produced by the decoder after a seek (retried from further back)."""

    def __init__(self, want: int, got: int | None) -> None:
        super().__init__(want, got)
        self.want, self.got = want, got


@dataclass(frozen=True)
class Orientation:
    """How a stored frame is shown, from the stream's display matrix (libavutil/display.h).

    ``rotation``: degrees counter-clockwise (0, 90, 180, 270); ``mirrored``: then flipped left-right
    (PyAV's ``set_display_rotation(rotation, hflip=True)``; a vertical flip is 180 + mirrored).
    ``apply`` turns an (H, W, 3) stored frame into the displayed one.
    """

    rotation: int = 0
    mirrored: bool = False

    @property
    def sideways(self) -> bool:
        return self.rotation in (90, 270)

    def apply(self, arr: np.ndarray) -> np.ndarray:
        if self.rotation == 0 and not self.mirrored:
            return arr
        out = np.rot90(arr, k=self.rotation // 90)
        if self.mirrored:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)


# display matrix (a, b, c, d) of a pure counter-clockwise rotation, as libavutil stores it
_ROTATIONS = {(1, 0, 0, 1): 0, (0, -1, 1, 0): 90, (-1, 0, 0, -1): 180, (0, 1, -1, 0): 270}


def _display_matrix(frame) -> tuple[float, float, float, float] | None:
    """(a, b, c, d) of the frame's display matrix (16.16 fixed point decoded), None when it has none."""
    side_data = getattr(frame, "side_data", None)
    if side_data is None:
        return None
    for item in side_data:
        if "DISPLAYMATRIX" in str(getattr(item, "type", "")).upper():
            m = np.frombuffer(bytes(item), dtype="<i4")
            if m.size >= 5:
                return tuple(float(v) / 65536 for v in (m[0], m[1], m[3], m[4]))
    return None


def _unit_entry(value: float) -> int | None:
    """-1, 0 or 1 for a normalised matrix entry that is one of them, else None (a skew angle)."""
    if abs(value) < 1e-3:
        return 0
    if abs(abs(value) - 1) < 1e-3:
        return 1 if value > 0 else -1
    return None


def frame_orientation(frame, path: Path) -> Orientation:
    """Display orientation of a decoded PyAV frame (see ``Orientation``).

    Raises ``VideoError`` for a display matrix that is not a quarter turn, optionally mirrored
    (never guessed).
    """
    matrix = _display_matrix(frame)
    if matrix is None:  # a PyAV without frame side data: its rotation property (no flips)
        degrees = getattr(frame, "rotation", 0) or 0
        quarter = int(round(degrees)) % 360
        if quarter in (0, 90, 180, 270) and abs(degrees - round(degrees / 90) * 90) <= 0.5:
            return Orientation(quarter)
    else:
        scale = max(abs(v) for v in matrix) or 1.0
        units = [_unit_entry(v / scale) for v in matrix]
        if None not in units:
            a, b, c, d = units
            mirrored = a * d - b * c < 0
            if mirrored:  # undo the left-right flip applied after the rotation
                a, c = -a, -c
            if (a, b, c, d) in _ROTATIONS:
                return Orientation(_ROTATIONS[(a, b, c, d)], mirrored)
        degrees = getattr(frame, "rotation", 0) or 0
    raise VideoError(
        f"cannot decode '{path}': its display matrix rotates by {degrees:g} degrees, not a multiple "
        f"of 90. Override the rotation to read the frames as stored: ffmpeg -display_rotation 0 -i "
        f"{path.name} -c copy {path.stem}_norot{path.suffix}"
    )


def _first_frame_orientation(path: Path) -> Orientation:
    """Orientation of the first decodable frame (none decodes: upright; reading then fails on its own)."""
    import av

    container, stream = _open_container(path, threads=1)
    try:
        for frame in container.decode(stream):
            return frame_orientation(frame, path)
    except av.error.FFmpegError:
        return Orientation()
    finally:
        container.close()
    return Orientation()


def _reencode_hint(path: Path) -> str:
    return f"Re-encode it: ffmpeg -i {path.name} -c:v libx264 -crf 18 {path.stem}_fixed.mp4"


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"cannot open '{path}': no such file. Check the path (videos root + video id)")
    if path.is_dir():
        raise VideoError(
            f"cannot open '{path}' as a video file: it is a folder. Use open_video() for frame folders"
        )
    if path.stat().st_size == 0:
        raise VideoError(f"cannot open '{path}': the file is empty (0 bytes). Copy or download it again")


def _open_container(path: Path, threads: int):
    """Open ``path`` and return (container, video stream), raising VideoError with the fix."""
    import av

    _check_file(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(
            f"cannot open '{path}': {getattr(exc, 'strerror', None) or exc}. The file is truncated "
            f"(an interrupted copy or recording), or not a video. Copy it again, or re-encode it: "
            f"ffmpeg -i {path.name} -c:v libx264 -crf 18 {path.stem}_fixed.mp4"
        ) from exc
    if not container.streams.video:
        container.close()
        raise VideoError(
            f"cannot decode '{path}': no video stream. Re-mux it: ffmpeg -i {path.name} -c copy "
            f"{path.stem}.mp4 (or check that it is the video and not an audio track)"
        )
    stream = container.streams.video[0]
    ctx = stream.codec_context
    if ctx is None:
        container.close()
        raise VideoError(
            f"cannot decode '{path}': unsupported video codec (this FFmpeg build has no decoder for it). "
            + _reencode_hint(path)
        )
    stream.thread_type = "AUTO"
    ctx.thread_count = max(0, int(threads))
    return container, stream


def probe_file(path: Path) -> VideoInfo:
    """Container metadata and the first frame's rotation (no index): fast, but ``num_frames`` may be an
    estimate. ``width`` / ``height`` are the upright (displayed) size."""
    container, stream = _open_container(path, threads=1)
    try:
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        duration_s = None
        if stream.duration is not None and stream.time_base is not None:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration_s = container.duration / 1_000_000
        num_frames = int(stream.frames or 0)
        if num_frames <= 0 and fps and duration_s:
            num_frames = int(round(duration_s * fps))
        width, height = stream.codec_context.width, stream.codec_context.height
        has_audio = bool(container.streams.audio)
    finally:
        container.close()
    orientation = _first_frame_orientation(path)
    if orientation.sideways:
        width, height = height, width
    return VideoInfo(fps=fps, num_frames=num_frames, width=width, height=height, duration_s=duration_s,
                     has_audio=has_audio, rotation=orientation.rotation, mirrored=orientation.mirrored)


@register_backend("pyav")
class PyAVReader(VideoReader):
    """Video file reader on PyAV with a packet index for exact seeks (see module docstring).

    Beyond ``VideoReader``: ``rotation`` / ``mirrored`` (the display matrix applied to make frames
    upright; ``orientation``),
    ``exact_index`` ("timestamps", "decoded" or "sequential": how frames are identified),
    ``keyframe_idx``, ``src_times_s`` and ``frame_times_s``.
    """

    priority = 10

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return path.is_file()

    def __init__(self, path: str | Path, *, fps: float | None = None, height: int | None = None,
                 width: int | None = None, threads: int = 2) -> None:
        self.path = Path(path)
        self.threads = threads
        self._container = None
        self._stream = None
        self._pid = os.getpid()
        self.orientation = Orientation()
        self._reset_decoder()
        container, stream = _open_container(self.path, threads)
        try:
            coded_width = int(stream.codec_context.width)
            coded_height = int(stream.codec_context.height)
            self._build_index(container, stream)
        finally:
            # opened again lazily on the first read: many readers may exist, few decode at once
            container.close()
        if coded_width <= 0 or coded_height <= 0:
            raise VideoError(f"cannot decode '{self.path}': the video stream has no frame size. "
                             + _reencode_hint(self.path))
        if self.exact_index == "timestamps":
            self.orientation = _first_frame_orientation(self.path)
        self.src_width, self.src_height = (
            (coded_height, coded_width) if self.orientation.sideways else (coded_width, coded_height))
        self.width, self.height = output_size(self.src_width, self.src_height, height, width)
        if fps is None or (same_rate(fps, self.src_fps) and self.is_constant_rate):
            self.fps = self.src_fps
            self._out_src: np.ndarray | None = None
            self.num_frames = self.src_num_frames
        else:
            self.fps = float(fps)
            # timestamps are rounded to the time base: allow half of it, never a quarter frame
            frame_s = self.duration_s / self.src_num_frames
            tolerance_s = min(max(self._time_base_s / 2, 1e-6), frame_s / 4)
            self._out_src = resample_indices(self._times_s, self.duration_s, self.fps,
                                             tolerance_s=tolerance_s)
            self.num_frames = len(self._out_src)

    @property
    def rotation(self) -> int:
        """Display rotation applied to the stored frames, degrees counter-clockwise (0, 90, 180, 270)."""
        return self.orientation.rotation

    @property
    def mirrored(self) -> bool:
        """Whether the display matrix also flips the frames left-right (applied after ``rotation``)."""
        return self.orientation.mirrored

    @property
    def is_constant_rate(self) -> bool:
        """Whether the source frames are evenly spaced in time (within 1% or the time base)."""
        if self.src_num_frames < 3:
            return True
        steps_s = np.diff(self._times_s)
        median_s = float(np.median(steps_s))
        return bool(np.all(np.abs(steps_s - median_s) <= max(0.01 * median_s, 1.01 * self._time_base_s)))

    def _is_constant_rate(self) -> bool:  # kept for callers of the old private name
        return self.is_constant_rate

    # --- index -------------------------------------------------------------------------------------

    def _build_index(self, container, stream) -> None:
        import av

        pts_list: list[int | None] = []
        dts_list: list[int | None] = []
        key_list: list[bool] = []
        dur_list: list[int] = []
        num_discarded = 0
        try:
            for pkt in container.demux(stream):
                if pkt.size == 0 and pkt.pts is None and pkt.dts is None:
                    continue  # flush packet
                if pkt.is_discard:
                    num_discarded += 1
                    continue
                pts_list.append(pkt.pts)
                dts_list.append(pkt.dts)
                key_list.append(pkt.is_keyframe)
                dur_list.append(pkt.duration or 0)
        except av.error.FFmpegError as exc:
            raise VideoError(
                f"cannot read '{self.path}' after packet {len(pts_list)}: {exc}. The file is truncated or "
                f"corrupt. {_reencode_hint(self.path)}"
            ) from exc
        num = len(pts_list)
        if num == 0:
            raise VideoError(
                f"cannot decode '{self.path}': the video stream has no frames. " + _reencode_hint(self.path)
            )
        fmt = container.format.name or ""
        header_frames = int(stream.frames or 0)
        if "mov" in fmt and header_frames > num + num_discarded:
            raise VideoError(
                f"cannot decode '{self.path}': truncated: its header lists {header_frames} frames but the "
                f"data stops after frame {num - 1}. Copy it again, or keep the readable part: "
                f"ffmpeg -i {self.path.name} -c copy {self.path.stem}_fixed.mp4"
            )

        time_base = float(stream.time_base) if stream.time_base else None
        self._time_base_s = time_base or 0.0
        rate = stream.average_rate or stream.guessed_rate
        keys = np.asarray(key_list, dtype=bool)
        trusted = not (
            any(name in fmt.split(",") for name in _UNTRUSTED_PTS_FORMATS)
            or time_base is None
            or any(p is None for p in pts_list)
            or len(set(pts_list)) != num
        )
        if trusted:
            self._index_from_timestamps(pts_list, keys, dur_list, time_base, rate)
        else:
            self._index_by_decoding(pts_list, dts_list, keys, time_base, rate)

        # a truncated single-stream file whose header still states the full duration (e.g. Matroska)
        if len(container.streams) == 1 and container.duration and trusted:
            header_s = container.duration / 1_000_000
            frame_s = 1 / self.src_fps if self.src_fps else 0.04
            if self.duration_s + 2 * frame_s + 0.1 < header_s:
                raise VideoError(
                    f"cannot decode '{self.path}': truncated: its header says {header_s:.2f} s but the "
                    f"frames stop at {self.duration_s:.2f} s (after frame {num - 1}). Copy it again, or keep "
                    f"the readable part: ffmpeg -i {self.path.name} -c copy "
                    f"{self.path.stem}_fixed{self.path.suffix}"
                )

    def _index_from_timestamps(self, pts_list, keys, dur_list, time_base, rate) -> None:
        """Packet timestamps are presentation times: sort them (the fast path)."""
        num = len(pts_list)
        pts = np.asarray(pts_list, dtype=np.int64)
        order = np.argsort(pts, kind="stable")
        sorted_pts = pts[order]
        self.exact_index = "timestamps"
        self._id_pts, self._id_pos = sorted_pts, np.arange(num, dtype=np.int64)
        self._times_s = (sorted_pts - sorted_pts[0]).astype(np.float64) * time_base
        self._key_pos = np.flatnonzero(keys[order]).astype(np.int64)
        self._key_seek_ts = sorted_pts[self._key_pos]
        last_dur_s = dur_list[int(order[-1])] * time_base
        if last_dur_s <= 0:
            if num > 1:
                last_dur_s = float(np.median(np.diff(self._times_s)))
            else:
                last_dur_s = 1 / float(rate) if rate else 0.04
        self.duration_s = float(self._times_s[-1] + last_dur_s)
        self.src_fps = float(rate) if rate else num / self.duration_s
        self.src_num_frames = num
        self._ensure_key_at_start(int(sorted_pts[0]))

    def _index_by_decoding(self, pts_list, dts_list, keys, time_base, rate) -> None:
        """Packet timestamps are not presentation times (AVI, missing or repeated ones): decode the file
        once and record, for every displayed frame in order, the timestamp of the packet it came from."""
        import av

        if not rate and time_base:
            rate = 1 / time_base
        if not rate:
            raise VideoError(f"cannot decode '{self.path}': no timestamps and no frame rate. "
                             + _reencode_hint(self.path))
        stat = self.path.stat()
        cache_key = (str(self.path.resolve()), stat.st_size, stat.st_mtime_ns)
        cached = _DECODED_INDEX_CACHE.get(cache_key)
        if cached is not None:
            shown_pts, self.orientation = list(cached[0]), cached[1]
        else:
            container, stream = _open_container(self.path, self.threads)
            shown_pts = []
            try:
                for frame in container.decode(stream):
                    if not shown_pts:
                        self.orientation = frame_orientation(frame, self.path)
                    shown_pts.append(frame.pts)
            except av.error.FFmpegError as exc:
                raise VideoError(
                    f"cannot decode '{self.path}' after frame {len(shown_pts)}: {exc}. The file is truncated "
                    f"or corrupt. {_reencode_hint(self.path)}"
                ) from exc
            finally:
                container.close()
            if len(_DECODED_INDEX_CACHE) >= _DECODED_INDEX_CACHE_SIZE:
                _DECODED_INDEX_CACHE.pop(next(iter(_DECODED_INDEX_CACHE)))
            _DECODED_INDEX_CACHE[cache_key] = (tuple(shown_pts), self.orientation)
        num = len(shown_pts)
        if num == 0:
            raise VideoError(
                f"cannot decode '{self.path}': no frame decodes. " + _reencode_hint(self.path)
            )
        self.src_fps = float(rate)
        self.src_num_frames = num
        self._times_s = np.arange(num, dtype=np.float64) / self.src_fps
        self.duration_s = num / self.src_fps
        if any(p is None for p in shown_pts) or len(set(shown_pts)) != num:
            # no way to tell frames apart after a seek: count them from the start of the file
            self.exact_index = "sequential"
            self._id_pts = self._id_pos = None
            self._key_pos = np.zeros(1, dtype=np.int64)
            self._key_seek_ts = np.zeros(1, dtype=np.int64)
            return
        self.exact_index = "decoded"
        shown = np.asarray(shown_pts, dtype=np.int64)
        order = np.argsort(shown, kind="stable")
        self._id_pts, self._id_pos = shown[order], order.astype(np.int64)
        key_pos, key_seek = [], []
        for i in np.flatnonzero(keys):
            pos = self._lookup(pts_list[i])
            if pos is not None:
                key_pos.append(pos)
                key_seek.append(dts_list[i] if dts_list[i] is not None else pts_list[i])
        order = np.argsort(key_pos, kind="stable")
        self._key_pos = np.asarray(key_pos, dtype=np.int64)[order]
        self._key_seek_ts = np.asarray(key_seek, dtype=np.int64)[order]
        first_seek = min((d for d in dts_list if d is not None), default=0)
        self._ensure_key_at_start(int(first_seek))

    def _ensure_key_at_start(self, first_ts: int) -> None:
        if len(self._key_pos) == 0 or self._key_pos[0] != 0:
            # no keyframe at the start: let position 0 seek to the very beginning
            self._key_pos = np.concatenate([[0], self._key_pos]).astype(np.int64)
            self._key_seek_ts = np.concatenate([[first_ts], self._key_seek_ts]).astype(np.int64)

    def _lookup(self, pts: int | None) -> int | None:
        """Source position (presentation order) of the frame decoded from the packet with ``pts``."""
        if pts is None or self._id_pts is None:
            return None
        i = int(np.searchsorted(self._id_pts, pts))
        if i < len(self._id_pts) and self._id_pts[i] == pts:
            return int(self._id_pos[i])
        return None

    @property
    def keyframe_idx(self) -> np.ndarray:
        """Source frame indices (0-based, presentation order) of the keyframes."""
        return self._key_pos.copy()

    @property
    def src_times_s(self) -> np.ndarray:
        """Start time in seconds of every source frame (first frame at 0)."""
        return self._times_s.copy()

    @property
    def frame_times_s(self) -> np.ndarray:
        """(num_frames,) float64: presentation time in seconds of every frame ``read_clip`` returns.

        ``k / fps`` after resampling to an ``fps``; the source timestamps otherwise (true times on
        variable-frame-rate files, where ``k / fps`` is not).
        """
        if self._out_src is None:
            return self._times_s.copy()
        return np.arange(self.num_frames, dtype=np.float64) / self.fps

    def source_frame(self, frame_idx: int) -> int:
        """Index of the source frame that output frame ``frame_idx`` shows."""
        return int(frame_idx if self._out_src is None else self._out_src[frame_idx])

    # --- decoding ----------------------------------------------------------------------------------

    def _reset_decoder(self) -> None:
        self._frames = None  # iterator over decoded frames
        self._pending = None  # (pos, frame) pulled but not consumed
        self._next_pos: int | None = None  # source position the next pulled frame will have
        self._cache_pos: int | None = None  # last converted source frame (for repeated frames)
        self._cache_arr: np.ndarray | None = None

    def _ensure_open(self) -> None:
        if self._container is not None and self._pid != os.getpid():
            # inherited through fork (DataLoader workers): never share the parent's file offset, and
            # never free it here either (its decoder threads do not exist in this process: freeing
            # would wait for them forever), so keep it referenced
            keep_inherited((self._container, self._stream))
            self._container = self._stream = None
            self._reset_decoder()
        if self._container is None:
            self._container, self._stream = _open_container(self.path, self.threads)
            self._pid = os.getpid()
            self._reset_decoder()
            track_open_reader(self)

    def _position_of(self, frame) -> int | None:
        if self._id_pts is None:  # sequential: frames are counted from the start
            return self._next_pos
        return self._lookup(frame.pts)

    def _pull(self):
        """Next decoded (source position, frame), or (None, None) at the end of the stream."""
        import av

        if self._pending is not None:
            item, self._pending = self._pending, None
            self._next_pos = item[0] + 1
            return item
        try:
            frame = next(self._frames, None)
        except av.error.FFmpegError as exc:
            pos = self._next_pos
            self._reset_decoder()
            where = f"source frame {pos} ({self._times_s[pos]:.3f} s)" if pos is not None and pos < len(
                self._times_s) else "a frame"
            raise VideoError(
                f"cannot decode '{self.path}' at {where}: {exc}. The file is truncated or corrupt. "
                + _reencode_hint(self.path)
            ) from exc
        if frame is None:
            return None, None
        pos = self._position_of(frame)
        self._next_pos = None if pos is None else pos + 1
        return pos, frame

    def _restart(self) -> None:
        """Decode from the very start of a freshly opened file."""
        self.close()
        self._ensure_open()
        self._frames = self._container.decode(self._stream)
        self._next_pos = 0

    def _seek(self, target_pos: int, keys_back: int = 0) -> None:
        """Position the decoder so the next pulled frame is at or before ``target_pos`` and decodes
        correctly: seek to the keyframe before it (``keys_back`` keyframes further back), skipping the
        frames an open GOP shows before its keyframe. Falls back to decoding from the start."""
        import av

        ki = int(np.searchsorted(self._key_pos, target_pos, side="right")) - 1 - keys_back
        if self.exact_index == "sequential":
            ki = -1
        while True:
            if ki < 0:
                self._restart()
                return
            try:
                self._container.seek(int(self._key_seek_ts[ki]), stream=self._stream, backward=True,
                                     any_frame=False)
            except av.error.FFmpegError:
                ki = -1
                continue
            self._frames = self._container.decode(self._stream)
            self._pending, self._cache_pos, self._cache_arr = None, None, None
            self._next_pos = None
            key_pos = int(self._key_pos[ki])
            for _ in range(_MAX_LEADING_FRAMES):
                try:
                    frame = next(self._frames, None)
                except av.error.FFmpegError:
                    frame = None
                if frame is None:
                    break
                pos = self._position_of(frame)
                if pos is None:
                    continue
                if pos < key_pos and pos not in self._key_set:
                    continue  # shown before the keyframe it follows (open GOP): its references are missing
                if pos <= target_pos:
                    self._pending = (pos, frame)
                    self._next_pos = pos
                    return
                break
            ki = ki - 1 if ki > 0 else -1  # landed after the target: one keyframe earlier

    @property
    def _key_set(self) -> frozenset:
        keys = self.__dict__.get("_key_set_cache")
        if keys is None:
            keys = self.__dict__["_key_set_cache"] = frozenset(int(k) for k in self._key_pos)
        return keys

    def _can_continue(self, target_pos: int) -> bool:
        if self._frames is None or self._next_pos is None or self._next_pos > target_pos:
            return False
        if self.exact_index == "sequential":
            return True
        ki = int(np.searchsorted(self._key_pos, target_pos, side="right")) - 1
        return int(self._key_pos[ki]) <= self._next_pos

    def _convert(self, frame) -> np.ndarray:
        global _SWS_THREADS_KWARG
        orient = self.orientation
        width, height = (self.height, self.width) if orient.sideways else (self.width, self.height)
        if _SWS_THREADS_KWARG:
            try:
                # one swscale thread: its default (one per CPU) fights the decoder threads and runs
                # ~9x slower at 224p on 2 cores (benchmarks/bench_decode.py)
                return orient.apply(frame.to_ndarray(format="rgb24", width=width, height=height, threads=1))
            except TypeError:  # a PyAV without reformat(threads=)
                _SWS_THREADS_KWARG = False
        return orient.apply(frame.to_ndarray(format="rgb24", width=width, height=height))

    def read_clip(self, start: int, num: int) -> np.ndarray:
        self._check_range(start, num)
        out = np.empty((num, self.height, self.width, 3), dtype=np.uint8)
        if num == 0:
            return out
        need = (np.arange(start, start + num) if self._out_src is None else self._out_src[start:start + num])
        j = 0
        if self._cache_pos is not None:  # the previous clip ended on this source frame
            while j < num and need[j] == self._cache_pos:
                out[j] = self._cache_arr
                j += 1
            if j == num:
                return out
        self._ensure_open()
        if not self._can_continue(int(need[j])):
            self._seek(int(need[j]))
        # a frame the decoder skipped: look again from one keyframe earlier, then from the start
        for keys_back in (1, None, "fail"):
            try:
                self._decode_into(out, need, j)
                return out
            except _MissingFrame as missing:
                if keys_back == "fail":
                    self._reset_decoder()
                    self._raise_missing(missing)
                j = int(np.searchsorted(need, missing.want))
                if keys_back is None:
                    self._restart()
                else:
                    self._seek(missing.want, keys_back=keys_back)
        return out  # unreachable

    def _decode_into(self, out: np.ndarray, need: np.ndarray, j: int) -> None:
        num = len(need)
        while j < num:
            want = int(need[j])
            pos, frame = self._pull()
            if frame is None:
                self._reset_decoder()
                raise _MissingFrame(want, None)
            if pos is None:
                self._reset_decoder()
                raise VideoError(f"cannot decode '{self.path}': a decoded frame has no timestamp near source "
                                 f"frame {want}. {_reencode_hint(self.path)}")
            if pos < want:
                continue
            if pos > want:
                self._reset_decoder()
                raise _MissingFrame(want, pos)
            arr = self._convert(frame)
            while j < num and need[j] == pos:
                out[j] = arr
                j += 1
            self._cache_pos, self._cache_arr = pos, arr

    def _raise_missing(self, missing: _MissingFrame) -> None:
        want = missing.want
        if missing.got is None:
            raise VideoError(
                f"cannot decode '{self.path}': decoding stopped before source frame {want} "
                f"({self._times_s[want]:.3f} s) but the file's index lists {self.src_num_frames} frames. "
                f"The file is truncated or corrupt. {_reencode_hint(self.path)}"
            )
        raise VideoError(
            f"cannot decode '{self.path}': source frame {want} ({self._times_s[want]:.3f} s) is "
            f"missing from the decoded stream (the decoder skipped to frame {missing.got}, also when "
            "decoding from the start). The file is corrupt. " + _reencode_hint(self.path)
        )

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._stream = None
        self._reset_decoder()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("_container", "_stream", "_frames", "_pending", "_cache_arr"):
            state[key] = None
        state["_next_pos"] = state["_cache_pos"] = None
        state.pop("_key_set_cache", None)
        return state


__all__ = ["Orientation", "PyAVReader", "frame_orientation", "probe_file", "VIDEO_EXTENSIONS"]
