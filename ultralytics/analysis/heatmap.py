"""Class-activation heatmaps of YOLOv10's one-to-one head: LayerCAM (default) and Grad-CAM.

The score is the sum of the one-to-one head's sigmoid class scores of its detections above `conf` (every
class, or only `classes`), at most max_det (anchor, class) pairs, as the head's top-k picks them. For a
feature map A (1, C, h, w) of a chosen row and G = d score / d A:
    Grad-CAM:  ReLU(sum_k mean_hw(G_k) * A_k)
    LayerCAM:  ReLU(sum_k ReLU(G_k) * A_k)       (element-wise, better on shallow layers)
Each row's map is upsampled to the input, un-letterboxed to the original image, scaled to [0, 1] by its
maximum, and the rows are averaged. The one-to-one branch reads detached features inside the head (as in the
paper, for training); here it is run on the attached features so that the gradient reaches the rows.

    from ultralytics.analysis import heatmap
    results = heatmap.run(model="runs/train/exp/weights/best.pt", source="datasets/shapes/images/val")
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ultralytics.utils import LOGGER, UserError

METHODS = ("layercam", "gradcam")


def cam(a: torch.Tensor, g: torch.Tensor, method: str = "layercam") -> torch.Tensor:
    """A class-activation map from activations a and gradients g, both (B, C, h, w) -> (B, h, w), >= 0."""
    if method == "layercam":
        return F.relu((F.relu(g) * a).sum(1))
    if method == "gradcam":
        return F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1))
    raise UserError(f"method={method!r} is not a heatmap method; use one of {', '.join(METHODS)}")


def check_head(model) -> None:
    """Raise a UserError unless the model's last row has YOLOv10's one-to-one head (one2one_cv2/cv3, decode)."""
    head = model.model[-1]
    ok = all(getattr(head, k, None) is not None for k in ("one2one_cv2", "one2one_cv3", "decode", "nl"))
    if not ok:
        raise UserError(f"heatmaps need YOLOv10's one-to-one head, but the last row of this model is "
                        f"{type(head).__name__} ({getattr(head, 'type', '?')}) without one2one_cv2/one2one_cv3; "
                        f"use a model whose last row is v10Detect")


def one2one_scores(model, feats: list[torch.Tensor]) -> torch.Tensor:
    """(1, A, 4 + nc) boxes (input pixels) + sigmoid class scores of the one-to-one branch, with gradients."""
    head = model.model[-1]
    maps = [torch.cat((head.one2one_cv2[i](feats[i]), head.one2one_cv3[i](feats[i])), 1) for i in range(head.nl)]
    return head.decode(maps)


def select_detections(preds: torch.Tensor, conf: float, classes=None, max_det: int = 300):
    """The (anchor, class) pairs above conf of one image: (score sum (a scalar with gradient), dets (K, 6)).

    preds: (1, A, 4 + nc). dets rows: x1, y1, x2, y2 (input pixels), score, class (detached). When no pair
    passes, the single best pair is used, with a warning.
    """
    scores = preds[0, :, 4:]
    mask = scores >= conf
    if classes is not None:
        keep = torch.zeros(scores.shape[1], dtype=torch.bool, device=scores.device)
        keep[[c for c in classes if 0 <= c < scores.shape[1]]] = True
        mask &= keep
        if not keep.any():
            raise UserError(f"classes={classes} names no class of this model (0..{scores.shape[1] - 1})")
    else:
        keep = None
    flat = torch.where(mask.flatten())[0]
    if len(flat) == 0:
        masked = scores.detach().clone()
        if keep is not None:
            masked[:, ~keep] = -1
        flat = masked.flatten().argmax().unsqueeze(0)
        LOGGER.warning(f"WARNING: no detection with score >= conf={conf}; using the best one "
                       f"(score {float(masked.max()):.3g}; lower conf= to include more)")
    if len(flat) > max_det:
        flat = flat[scores.flatten()[flat].detach().topk(max_det).indices]
    nc = scores.shape[1]
    anchor, cls = flat // nc, flat % nc
    s = scores[anchor, cls]
    dets = torch.cat((preds[0, anchor, :4].detach(), s.detach()[:, None], cls[:, None].to(s.dtype)), 1)
    return s.sum(), dets


def letterbox_params(shape0: tuple[int, int], size: int) -> tuple[float, int, int]:
    """(gain, pad_w, pad_h) of LetterBox((size, size)) for an image of shape0 (h, w)."""
    h, w = shape0
    gain = min(size / h, size / w)
    uw, uh = int(round(w * gain)), int(round(h * gain))
    return gain, int(round((size - uw) / 2 - 0.1)), int(round((size - uh) / 2 - 0.1))


def to_original(m: torch.Tensor, shape0: tuple[int, int], size: int) -> np.ndarray:
    """A map (h, w) over the letterboxed (size, size) input -> (H0, W0) float32 over the original image."""
    up = F.interpolate(m[None, None].float(), size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    gain, pw, ph = letterbox_params(shape0, size)
    h0, w0 = shape0
    crop = up[ph: ph + int(round(h0 * gain)), pw: pw + int(round(w0 * gain))].detach().cpu().numpy()
    return cv2.resize(crop, (w0, h0), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def image_heatmap(model, im0: np.ndarray, layers: list[int], method: str = "layercam", conf: float = 0.25,
                  classes=None, imgsz: int = 640) -> dict:
    """Heatmap of one BGR image (H0, W0, 3) for a DetectionModel in eval mode.

    Returns {'map': (H0, W0) float32 in [0, 1] (rows averaged), 'raw': (L, H0, W0) float32 per-row CAMs
    before scaling, 'dets': (K, 6) numpy x1, y1, x2, y2 (original pixels), score, class}.
    """
    from ultralytics.analysis.rows import head_inputs, run_rows, to_tensor
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils.ops import scale_boxes

    device = next(model.parameters()).device
    x = to_tensor(LetterBox((imgsz, imgsz))(image=im0)).to(device).requires_grad_(True)
    feats_rows = head_inputs(model)
    with torch.enable_grad():
        outs = run_rows(model, x, sorted(set(layers) | set(feats_rows)))
        preds = one2one_scores(model, [outs[j] for j in feats_rows])
        score, dets = select_detections(preds, conf, classes, getattr(model.model[-1], "max_det", 300))
        acts = [outs[i] for i in layers]
        grads = torch.autograd.grad(score, acts, allow_unused=True)
    raw = []
    for a, g in zip(acts, grads):
        g = torch.zeros_like(a) if g is None else g
        raw.append(to_original(cam(a.detach(), g, method)[0], im0.shape[:2], imgsz))
    raw = np.stack(raw)
    scaled = [r / r.max() if r.max() > 0 else r for r in raw]
    fused = np.mean(scaled, axis=0)
    fused = fused / fused.max() if fused.max() > 0 else fused
    dets = dets.cpu().numpy().astype(np.float64)
    dets[:, :4] = scale_boxes((imgsz, imgsz), dets[:, :4], im0.shape[:2])
    return {"map": fused.astype(np.float32), "raw": raw.astype(np.float32), "dets": dets}


def overlay(im0: np.ndarray, m: np.ndarray, dets: np.ndarray | None = None, names=None, alpha: float = 0.5) -> np.ndarray:
    """The image (H0, W0, 3) BGR blended with the JET-coloured map (H0, W0) in [0, 1], boxes on top, a colour
    bar (1 at the top, 0 at the bottom) inside the right edge: same size as the image."""
    from ultralytics.utils.plotting import draw_detections

    heat = cv2.applyColorMap(np.clip(m * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    out = cv2.addWeighted(im0, 1 - alpha, heat, alpha, 0)
    if dets is not None and len(dets):
        out = draw_detections(out, dets[:, :4], dets[:, 5], dets[:, 4], names)
    h, w = out.shape[:2]
    bw, bh = max(w // 40, 4), max(h // 2, 8)
    x1, y1 = w - bw - max(w // 100, 2), max(h // 20, 2)
    ramp = np.linspace(255, 0, bh).astype(np.uint8)[:, None].repeat(bw, 1)
    out[y1: y1 + bh, x1: x1 + bw] = cv2.applyColorMap(ramp, cv2.COLORMAP_JET)
    cv2.rectangle(out, (x1 - 1, y1 - 1), (x1 + bw, y1 + bh), (255, 255, 255), 1)
    fs = max(min(h, w) / 800, 0.3)
    for text, y in (("1", y1 + int(12 * fs / 0.4)), ("0", y1 + bh)):
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
        cv2.putText(out, text, (x1 - tw - 3, y), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def run(model="yolov10n-LSKA.yaml", source=None, method: str = "layercam", layers=None, conf: float = 0.25,
        classes=None, imgsz: int = 640, device="", save_npy: bool = False, project: str = "runs/heatmap",
        name: str = "exp", exist_ok: bool = False) -> list[dict]:
    """Heatmaps of every image of `source` (an image, a folder, a glob): overlays (and .npy maps) in project/nameN.

    model: a YAML, a .pt, a YOLO object or a DetectionModel. layers: rows (default: the rows the head reads).
    Returns one dict per image: {'path', 'file', 'map', 'dets', 'seconds'}.
    """
    from ultralytics.analysis.rows import check_layers, load_detection_model
    from ultralytics.cfg import check_imgsz
    from ultralytics.data import load_inference_source
    from ultralytics.utils.files import increment_path
    from ultralytics.utils.torch_utils import select_device

    if str(method).lower() not in METHODS:
        raise UserError(f"method={method!r} is not a heatmap method; use one of {', '.join(METHODS)}")
    if not isinstance(conf, (int, float)) or isinstance(conf, bool) or not 0 <= conf <= 1:
        raise UserError(f"conf={conf!r} must be a number in [0, 1]")
    if classes is not None:
        classes = [classes] if isinstance(classes, int) else list(classes)
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
            raise UserError(f"classes={classes!r} must be a class index or a list of them, e.g. classes=[0, 2]")
    if source is None:
        raise UserError("heatmap needs source= an image, a folder or a glob of images")
    dev = select_device(device, verbose=False)
    det = load_detection_model(model, dev)
    check_head(det)
    rows = check_layers(det, layers)
    imgsz = check_imgsz(imgsz, stride=int(det.stride.max()))
    images = load_inference_source(source)  # UserError naming a missing path or a folder without images
    save_dir = increment_path(Path(project) / name, exist_ok=exist_ok)
    results = []
    for path, im0 in images:
        t0 = time.perf_counter()
        r = image_heatmap(det, im0, rows, str(method).lower(), conf, classes, imgsz)
        seconds = time.perf_counter() - t0
        stem = Path(str(path)).stem
        f = save_dir / f"{stem}.png"
        cv2.imwrite(str(f), overlay(im0, r["map"], r["dets"], det.names))
        if save_npy:
            np.save(save_dir / f"{stem}.npy", r["raw"])
        results.append({"path": str(path), "file": f, "map": r["map"], "dets": r["dets"], "seconds": seconds})
        LOGGER.info(f"{path}: {len(r['dets'])} detections, rows {rows}, {method}, {seconds * 1e3:.0f} ms -> {f}")
    if results:
        mean = sum(r["seconds"] for r in results) / len(results)
        LOGGER.info(f"{len(results)} heatmaps in {save_dir} ({mean * 1e3:.0f} ms per image at {imgsz})")
    return results
