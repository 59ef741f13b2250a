"""Turn your own annotations into a checked YOLO dataset, or check one you have.

    python dataset.py source=path/to/voc_or_coco_or_labelme_or_yolo out=datasets/mine
    python dataset.py source=annotations/instances.json out=datasets/mine images=path/to/images split=[0.7,0.2,0.1]
    python dataset.py data=datasets/mine/data.yaml          # check an existing dataset, write its report.html
    python dataset.py source=scenes out=datasets/tiles tile=640 tile_overlap=0.2 tile_min_area=0.5 tile_empty=0.1
    python dataset.py source=path/to/source out=datasets/mine folds=5   # also datasets/mine/folds/<k>/data.yaml

Settings (key=value): format=auto|voc|coco|labelme|yolo, split=[0.8,0.2], seed=0, names=[cat,dog],
exist_ok=False (True replaces only a dataset this tool wrote), strict=False (any problem -> exit 1),
imgsz=640 (the size the report scales boxes to), max_image_mb=256 (larger image files are not read),
tile=0 (off), tile_overlap=0.2, tile_min_area=0.5, tile_empty=0.1, folds=0 (off).
Then train: python train.py data=datasets/mine/data.yaml, or data=datasets/mine/folds (docs/10-your-own-data.md)
"""

import sys

from ultralytics.data.convert import main
from ultralytics.utils import UserError

if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except UserError as e:
        print(f"dataset.py: {e}", file=sys.stderr)
        sys.exit(1)
