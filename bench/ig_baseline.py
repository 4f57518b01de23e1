"""Which baseline should `robust-saliency compare` give Integrated Gradients by default?

IG from a black image, from the data set's mean colour and from a blurred copy of each image, side by side on the same
trained models (`--methods ig(black),ig(mean),ig(blur)`, one run per data set):
- the built-in lesions at the demo's settings (`make demo`: 2000 images, 32 px, 5 epochs);
- a HAM10000-format folder (JPEG files and HAM10000_metadata.csv, read by the real-format loader with ImageNet
  normalisation) made of lesion images whose discriminative-region masks are known, so localisation can be scored there
  too (the CLI itself has no masks for such a folder).

Printed: pointing game and mask AUC (localisation; chance is the region's share of the image and 0.5) and deletion /
insertion AUC (faithfulness), per model and baseline, with each model's clean accuracy.

    python bench/ig_baseline.py            # two runs at the demo's settings
    python bench/ig_baseline.py --quick    # 600 images and 3 epochs per run
"""
import argparse, json, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd, torch
import torch.nn.functional as F
from PIL import Image
from robust_saliency.cli import compare, load_model, load_data, parse_methods, _valid_rows
from robust_saliency.data import synth_lesions
from robust_saliency.metrics import evaluate
from robust_saliency.saliency import get_method

METHODS = 'ig(black),ig(mean),ig(blur)'
COLS = ['pointing_game', 'mask_auc', 'deletion_auc', 'insertion_auc']

def ham_folder(d, n, size, seed=1):
    "A HAM10000-format folder of `n` built-in lesion images (benign -> nv, malignant -> mel); their data with masks"
    data = synth_lesions(n, size=size, seed=seed)
    im = (data.images.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    ids = [f'ISIC_{i:07d}' for i in range(n)]
    for i, a in zip(ids, im): Image.fromarray(a).save(d/f'{i}.jpg', quality=95)
    pd.DataFrame(dict(image_id=ids, lesion_id=[f'HAM_{i:07d}' for i in range(n)],
                      dx=['mel' if int(l) else 'nv' for l in data.labels])).to_csv(d/'HAM10000_metadata.csv', index=False)
    return data

def rows(report, data_name):
    out = []
    for m, M in report['models'].items():
        for meth, v in M['methods'].items():
            out.append(dict(data=data_name, model=m, method=meth, clean_acc=M['clean_acc'], **{k: v.get(k, np.nan) for k in COLS}))
    return out

def ham_localisation(folder, run, data, size, n_eval, seed=0):
    "Pointing game and mask AUC of the HAM-format run's models, against the masks the folder's images were made with"
    dls = load_data(folder, size=size, classes=['nv', 'mel'], seed=seed)
    order = torch.randperm(len(dls.valid_ds), generator=torch.Generator().manual_seed(seed)).tolist()
    idx = sorted(order[:n_eval])
    x, y = _valid_rows(dls, idx)
    pos = [dls.valid.dataset.items[i] for i in idx]               # positions in the loader's file list
    src = [int(Path(dls.annotations_data.items[p]).stem.split('_')[1]) for p in pos]   # ISIC_000123.jpg: synth image 123
    masks = F.interpolate(data.disc_mask[src].float(), size=(size, size), mode='area') > 0.5
    meths = {c: get_method(k, **kw) for c, (k, kw) in parse_methods(METHODS).items()}
    out = []
    for m in ('standard', 'robust'):
        s = load_model(run/f'{m}.pth')
        df = evaluate({m: s.model}, meths, x, y, masks=masks, space=s.space, metrics=['pointing_game', 'mask_auc'])
        out += [dict(model=m, method=r.method, metric=r.metric, mean=r.mean) for r in df.itertuples()]
    return pd.DataFrame(out).pivot_table(index=['model', 'method'], columns='metric', values='mean', sort=False), masks.float().mean().item()

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='smaller runs (600 images, 3 epochs)')
    a = ap.parse_args()
    n, epochs = (600, 3) if a.quick else (2000, 5)
    res, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        r = compare(data='lesions', n=n, epochs=epochs, methods=METHODS, out=d/'lesions', quiet=True)
        res += rows(r, 'lesions')
        chance = synth_lesions(200, size=32).disc_mask.float().mean().item()
        (d/'ham').mkdir()
        data = ham_folder(d/'ham', n, 64)
        r = compare(data=str(d/'ham'), size=32, classes='nv,mel', epochs=epochs, methods=METHODS, out=d/'hamrun', quiet=True)
        loc, chance_ham = ham_localisation(d/'ham', d/'hamrun', data, 32, 128)
        for x in rows(r, 'HAM-format folder'):
            x.update(loc.loc[(x['model'], x['method'])].to_dict())
            res.append(x)
    df = pd.DataFrame(res)
    pd.set_option('display.width', 200)
    print(df.to_string(index=False, float_format=lambda v: f'{v:.3f}'))
    print(f"\nchance: pointing game = the region's share of the image ({chance:.3f} lesions, {chance_ham:.3f} HAM-format), "
          f"mask AUC = 0.500. {n} images per data set, {epochs} epochs; {time.time() - t0:.0f} s in all.")
