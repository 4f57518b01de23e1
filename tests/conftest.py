import os, sys
from pathlib import Path
# tests import the package from the checkout even before it is installed
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault('OMP_NUM_THREADS', '1')

import numpy as np, pandas as pd
from PIL import Image

def write_img(path, size=(40, 30), mode='RGB', seed=0):
    "A random image file of `size` (W, H)"
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == 'RGB' else (size[1], size[0])
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(path)

def write_cxr(d, labels, size=64, patients=None, boxes=()):
    "A ChestX-ray14-format folder: grey PNGs `images/{i:08d}_000.png`, Data_Entry_2017.csv, BBox_List_2017.csv (`boxes`: row dicts)"
    (d/'images').mkdir(parents=True)
    names = [f'{i:08d}_000.png' for i in range(len(labels))]
    for i, n in enumerate(names): write_img(d/'images'/n, size=(size, size), mode='L', seed=i)
    pd.DataFrame({'Image Index': names, 'Finding Labels': labels, 'Follow-up #': 0,
                  'Patient ID': range(len(labels)) if patients is None else patients,
                  # as in the real release: the size of the original scan, not of the PNG (nor of the boxes' frame)
                  'OriginalImage[Width': 2682, 'Height]': 2749}).to_csv(d/'Data_Entry_2017.csv', index=False)
    pd.DataFrame(list(boxes), columns=['Image Index', 'Finding Label', 'Bbox [x', 'y', 'w', 'h]']).to_csv(d/'BBox_List_2017.csv', index=False)
    return d
