"""Run sahi 0.12's get_sliced_prediction on a fake model with nested boxes: does it switch its merge at low conf?

Run with the sahi venv (benchmarks/record_sahi_reference.py says how to make it):
    /tmp/sahi-venv/bin/python benchmarks/sahi_low_conf.py
The fake model returns a box inside another (IOS 1, IOU 0.04): GREEDYNMM/IOS keeps one box, NMS/IOU both.
Measured with sahi 0.12.8: 1 box at confidence_threshold 0.3, 0.11, 0.1; 2 boxes (and the warning "Switching
postprocess type/metric to NMS/IOU") at 0.099, 0.05, 0.001; 1 box everywhere with force_postprocess_type=True.
"""
import logging
import numpy as np
from sahi.models.base import DetectionModel
from sahi.prediction import ObjectPrediction
from sahi.predict import get_sliced_prediction

logging.basicConfig(level=logging.INFO)

class Fake(DetectionModel):
    def load_model(self):
        self.model = object()
    def set_model(self, model, **kw):
        self.model = model
    def perform_inference(self, image):
        self._original_predictions = [image.shape]
    def _create_object_prediction_list_from_original_predictions(self, shift_amount_list=None, full_shape_list=None):
        shift = shift_amount_list[0] if shift_amount_list else [0, 0]
        if isinstance(shift[0], list): shift = shift[0]
        full = full_shape_list[0] if full_shape_list else None
        if full is not None and isinstance(full[0], list): full = full[0]
        # nested: big 0..100, small 10..30 inside (IOS 1, IOU 0.04); scores 0.5, 0.4 (both above any conf used)
        preds = [ObjectPrediction(bbox=[0, 0, 100, 100], category_id=0, category_name="a", score=0.5,
                                  shift_amount=[0, 0], full_shape=full),
                 ObjectPrediction(bbox=[10, 10, 30, 30], category_id=0, category_name="a", score=0.4,
                                  shift_amount=[0, 0], full_shape=full)]
        self._object_prediction_list_per_image = [preds if shift == [0, 0] else []]
        self._object_prediction_list = self._object_prediction_list_per_image[0]
    @property
    def category_names(self):
        return ["a"]
    @property
    def num_categories(self):
        return 1
    @property
    def has_mask(self):
        return False

img = np.zeros((200, 200, 3), np.uint8)
for conf in (0.3, 0.11, 0.1, 0.099, 0.05, 0.001):
    for force in (False, True):
        m = Fake(confidence_threshold=conf, load_at_init=True)
        r = get_sliced_prediction(img, m, slice_height=640, slice_width=640, perform_standard_pred=False,
                                  verbose=0, force_postprocess_type=force)
        print(f"conf={conf} force={force}: {len(r.object_prediction_list)} boxes "
              f"{[p.bbox.to_xyxy() for p in r.object_prediction_list]}")
