"""Prediction sources: paths, folders, globs, lists, arrays, video files and webcams -> SourceItem frames."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ultralytics.data.image_io import ImageReadError, imread
from ultralytics.data.utils import get_img_files
from ultralytics.utils import LOGGER, UserError

VID_FORMATS = frozenset({"mp4", "avi", "mkv", "mov", "m4v", "mpeg", "mpg", "wmv", "webm"})
CODEC_HINT = ("OpenCV could not decode it: check the file is a complete video, or re-encode it to H.264 mp4 "
              "(ffmpeg -i in.mkv -c:v libx264 out.mp4); this OpenCV build reads what its FFmpeg backend reads")


class SourceItem(tuple):
    """One image to predict, a (name, image) pair: name (path), image (BGR uint8 (H, W, 3)); attributes
    frame (its index in the video, None for images) and fps (the video's frames per second, None for images)."""

    def __new__(cls, name: str, image: np.ndarray, frame: int | None = None, fps: float | None = None):
        item = super().__new__(cls, (name, image))
        item.frame, item.fps, item.file = frame, fps, None
        return item

    @property
    def name(self) -> str:
        return self[0]

    @property
    def image(self) -> np.ndarray:
        return self[1]


def is_video_file(path: str | Path) -> bool:
    """True when the file name has a video suffix (mp4, avi, mkv, mov, ...)."""
    return Path(str(path)).suffix[1:].lower() in VID_FORMATS


def is_webcam(source) -> bool:
    """True for a webcam index: an int (not a bool) or a string of digits."""
    return (isinstance(source, int) and not isinstance(source, bool)) or (isinstance(source, str) and
                                                                         source.strip().isdigit())


def open_video(source: str | int):
    """cv2.VideoCapture of a video file or webcam index; a UserError naming it (and a codec hint) if it cannot open."""
    import cv2

    cap = cv2.VideoCapture(int(source) if is_webcam(source) else str(source))
    if not cap.isOpened():
        cap.release()
        if is_webcam(source):
            raise UserError(f"cannot open webcam {int(source)}: no camera with that index, or it is in use")
        raise UserError(f"cannot open video '{source}': {CODEC_HINT}")
    return cap


class VideoSource:
    """Frames of a video file or webcam, read one at a time (memory stays flat), every vid_stride-th frame."""

    def __init__(self, source: str | int, vid_stride: int = 1):
        import cv2

        self.source, self.vid_stride = source, max(int(vid_stride), 1)
        self.webcam = is_webcam(source)
        cap = open_video(source)
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0) or 30.0  # some webcams and files report 0
        self.frames = 0 if self.webcam else int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        cap.release()
        self.name = f"webcam{int(source)}" if self.webcam else str(Path(source).resolve())

    def __len__(self) -> int:
        """Frames that will be predicted (a large number for a webcam, which runs until it stops)."""
        return 10**9 if self.webcam else -(-self.frames // self.vid_stride)

    def __iter__(self) -> Iterator[SourceItem]:
        cap = open_video(self.source)
        try:
            index = 0
            while cap.grab():
                if index % self.vid_stride == 0:
                    ok, im = cap.retrieve()
                    if not ok:
                        LOGGER.warning(f"WARNING ⚠️ {self.name}: frame {index} could not be decoded; stopping")
                        break
                    yield SourceItem(self.name, im, index, self.fps / self.vid_stride)
                index += 1
            if index == 0 and not self.webcam:
                raise UserError(f"cannot read any frame of video '{self.source}': {CODEC_HINT}")
        finally:
            cap.release()


class ImageSource:
    """Iterable over SourceItem; unreadable image files are skipped with a warning, videos are read frame by frame."""

    def __init__(self, items: list, strict: bool, vid_stride: int = 1):
        """items: image paths (str), video paths, webcam indices or (name, ndarray) pairs;
        strict: a single unreadable image file raises."""
        self.items, self.strict = items, strict
        self.videos = {i: VideoSource(it, vid_stride) for i, it in enumerate(items)
                       if is_webcam(it) or (isinstance(it, str) and is_video_file(it))}  # opened now: errors early

    @property
    def has_video(self) -> bool:
        return bool(self.videos)

    def __len__(self) -> int:
        """Number of images and video frames (before skipping unreadable files)."""
        return sum(len(self.videos[i]) if i in self.videos else 1 for i in range(len(self.items)))

    def __iter__(self) -> Iterator[SourceItem]:
        """Yield SourceItem(name or path, BGR image, frame, fps)."""
        for i, it in enumerate(self.items):
            if i in self.videos:
                yield from self.videos[i]
            elif isinstance(it, tuple):
                yield SourceItem(*it)
            else:
                try:
                    item = SourceItem(it, imread(it))
                    item.file = it  # read from this file (prediction's fast_decode may read it reduced)
                    yield item
                except ImageReadError as e:
                    if self.strict:
                        raise
                    LOGGER.warning(f"WARNING ⚠️ skipping {e}")


def _as_bgr(a: np.ndarray, name: str) -> np.ndarray:
    """Check an array image: (H, W, 3) or (H, W) uint8 (BGR) -> (H, W, 3) uint8."""
    if not isinstance(a, np.ndarray) or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        shape = getattr(a, "shape", None)
        raise UserError(f"source {name}: expected a BGR image array (H, W, 3), got {type(a).__name__} {shape}")
    if a.dtype != np.uint8:
        raise UserError(f"source {name}: expected dtype uint8, got {a.dtype}")
    if a.ndim == 2 or a.shape[2] == 1:
        a = np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2)
    elif a.shape[2] == 4:
        a = a[..., :3]
    return np.ascontiguousarray(a)


def load_inference_source(source, vid_stride: int = 1) -> ImageSource:
    """Source of images for prediction -> iterable of SourceItem (name, im0 BGR ndarray, frame, fps).

    source: an image path, a folder, a glob, a .txt list of paths, a list of paths, a video file (mp4, avi,
    mkv, mov, ...: read frame by frame, every vid_stride-th frame), a webcam index (0 or '0'), a BGR ndarray
    (H, W, 3), a PIL image, or a list of those. A path that does not exist raises a UserError naming it; a
    video that cannot be opened raises one naming it with a codec hint; unreadable images among many are
    skipped with a warning naming them.
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    single = not isinstance(source, (list, tuple))
    items, paths = [], []
    for k, s in enumerate([source] if single else source):
        if isinstance(s, np.ndarray):
            items.append((f"image{k}.jpg", _as_bgr(s, f"image{k}")))
        elif Image is not None and isinstance(s, Image.Image):
            rgb = np.asarray(s.convert("RGB"))
            items.append((getattr(s, "filename", "") or f"image{k}.jpg", np.ascontiguousarray(rgb[..., ::-1])))
        elif is_webcam(s):
            items.append(int(s))
        elif isinstance(s, (str, Path)) and is_video_file(s):
            if not Path(s).is_file():
                raise UserError(f"video source {s} does not exist")
            items.append(str(s))
        elif isinstance(s, (str, Path)):
            files = get_img_files(str(s))  # raises UserError naming a path that does not exist
            items += files
            paths += files
        else:
            raise UserError(f"unsupported prediction source {type(s).__name__}: give paths, folders, globs, videos, "
                            "a webcam index or arrays")
    strict = single and len(items) == 1 and len(paths) == 1 and Path(str(source)).is_file()
    return ImageSource(items, strict=strict, vid_stride=vid_stride)
