"""Prediction on video files and streams: every frame read and written back annotated, vid_stride, stream=True."""

from __future__ import annotations

import inspect

import cv2
import numpy as np
import pytest
import torch

from ultralytics import YOLO
from ultralytics.utils import UserError

FPS, N, W, H = 12.0, 14, 96, 64


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    """A 14-frame 96x64 mp4 at 12 fps: a white disc moving over a changing background."""
    f = tmp_path_factory.mktemp("video") / "clip.mp4"
    w = cv2.VideoWriter(str(f), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for i in range(N):
        im = np.full((H, W, 3), 20 * (i % 7), np.uint8)
        cv2.circle(im, (10 + 5 * i, 32), 9, (255, 255, 255), -1)
        w.write(im)
    w.release()
    return str(f)


@pytest.fixture(scope="module")
def model() -> YOLO:
    torch.manual_seed(0)
    return YOLO("yolov10n.yaml")


def read_frames(path: str) -> list[np.ndarray]:
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, im = cap.read()
        if not ok:
            break
        frames.append(im)
    cap.release()
    return frames


def test_video_every_frame_written(model, clip, tmp_path):
    """One Results per frame (frame index 0..13), the annotated mp4 has every frame at the source fps and size,
    and each frame's detections equal those of the same frame given as an array."""
    res = model.predict(clip, imgsz=64, conf=0.0, save=True, save_txt=True, project=str(tmp_path), verbose=False)
    assert [r.frame for r in res] == list(range(N))
    out = tmp_path / "predict" / "clip.mp4"
    assert res[0].save_path == out and out.is_file()
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)) == (N, FPS)
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (W, H)
    cap.release()
    assert sorted(p.name for p in (tmp_path / "predict" / "labels").glob("*.txt"))[:2] == ["clip_0.txt", "clip_1.txt"]
    frames = read_frames(clip)
    for i in (0, 7):
        ref = model.predict(frames[i], imgsz=64, conf=0.0, verbose=False)[0]
        assert torch.equal(ref.boxes.data, res[i].boxes.data) and res[i].orig_shape == (H, W)


def test_vid_stride_and_stream(model, clip, tmp_path):
    """vid_stride=3 predicts frames 0, 3, 6, 9, 12 and writes them at fps / 3; stream=True is a lazy generator."""
    gen = model.predict(clip, imgsz=64, vid_stride=3, stream=True, save=True, project=str(tmp_path), verbose=False)
    assert inspect.isgenerator(gen)
    assert not (tmp_path / "predict").exists()  # nothing ran yet
    first = next(gen)
    assert first.frame == 0
    assert [first.frame] + [r.frame for r in gen] == [0, 3, 6, 9, 12]
    cap = cv2.VideoCapture(str(tmp_path / "predict" / "clip.mp4"))
    assert (cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)) == (5, FPS / 3)
    cap.release()


def test_mixed_sources_and_images_have_no_frame(model, clip, log_messages):
    """A list of a video and an image array: frames first (in order), then the image with frame None; without
    stream=True a warning says the frames are kept in memory."""
    im = np.zeros((50, 70, 3), np.uint8)
    res = model.predict([clip, im], imgsz=64, batch=4, verbose=False)
    assert [r.frame for r in res] == [*range(N), None]
    assert any("without stream=True keeps every frame" in m for m in log_messages)


def test_bad_video_sources(model, tmp_path):
    """A video that cannot be opened names the file and gives the codec hint; a missing one and a webcam too."""
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(UserError, match=r"broken\.mp4.*re-encode it to H\.264"):
        model.predict(str(bad), imgsz=64)
    with pytest.raises(UserError, match=r"video source .*missing\.avi does not exist"):
        model.predict(str(tmp_path / "missing.avi"), imgsz=64)
    with pytest.raises(UserError, match="cannot open webcam 99"):
        model.predict(99, imgsz=64)


def test_webcam_index_with_a_fake_camera(model, monkeypatch):
    """source=0 opens cv2.VideoCapture(0) and predicts its frames one at a time until the camera stops."""
    opened = []

    class FakeCamera:
        def __init__(self, index):
            opened.append(index)
            self.left = 4

        def isOpened(self):
            return True

        def get(self, prop):
            return 0.0  # webcams often report no fps and no frame count

        def grab(self):
            self.left -= 1
            return self.left >= 0

        def retrieve(self):
            return True, np.full((48, 64, 3), 30 * self.left, np.uint8)

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoCapture", FakeCamera)
    res = list(model.predict(0, imgsz=64, stream=True, verbose=False))
    assert all(i == 0 for i in opened) and [r.frame for r in res] == [0, 1, 2, 3]
    assert res[0].path == "webcam0" and res[0].orig_shape == (48, 64)
