"""The CAM family against pytorch-grad-cam: parity and speed, same models, inputs and run; prints one table.

For every method both libraries have, on a ResNet-18 and a small ViT (random weights, seeded; the predicted class
explained), the maps of both are min-max normalised per image as pytorch-grad-cam does (`scale_cam_image`) and
compared. `corr` is the lowest Pearson correlation over the images whose map is not all zero (a random model's map
is often negative everywhere, which ReLU turns into zeros on both sides); `corr before ReLU` compares the signed maps
(pytorch-grad-cam's two ReLUs switched off) on every image, and `max abs diff` is theirs. Times of the fast methods
are medians of `--reps` interleaved runs (ours, theirs, ours, ...); Score-CAM and Ablation-CAM are timed on one run
each. ratio = ours / theirs (< 1: we are faster); rows marked '-' only show parity.

Known, documented differences (the rows say where they show):
- Grad-CAM++: pytorch-grad-cam adds eps=1e-6 to the alpha denominator; ours is the paper's formula. The
  `gradcampp+eps` row runs ours with that eps added.
- XGrad-CAM: pytorch-grad-cam divides by the activation sum + 1e-7; ours divides by the sum (a zero sum: weight 0).
- EigenCAM: an SVD's sign is arbitrary. pytorch-grad-cam keeps whatever LAPACK returns; ours takes the principal
  direction whose channel sum is positive. `corr` is after aligning the sign per image; `flips` counts the images
  where the two signs differ.
- Score-CAM: masks are upsampled with `align_corners=False` (ours, as the authors' code) vs `UpsamplingBilinear2d`
  (align_corners=True) in pytorch-grad-cam. The `scorecam+corners` row runs ours with theirs. On the random ViT
  the difference is large: its layer is a LayerNorm, whose features sum to ~0 over the channels at every token, and
  the softmax weights of a random model are nearly uniform, so the map is made of the small differences between
  the weights, and any change of the masks shows in full.
- Ablation-CAM on a ViT: pytorch-grad-cam's `AblationLayerVit` sets the feature to (min - 1e7) on every token, the
  class token included; ours zeroes it on the patch tokens (the paper's ablation). The `ablationcam*` row runs
  pytorch-grad-cam with an ablation layer that does the same as ours.
Score-CAM and Ablation-CAM are timed with pytorch-grad-cam at its default batch size (16 and 32) and at ours (`--chunk`).

pytorch-grad-cam is not a dependency. To include it without touching the venv:
    pip install --no-deps --target /tmp/gcpkgs grad-cam ttach opencv-python-headless
    GRADCAM_PATH=/tmp/gcpkgs python bench/cam.py
Run under the shared lock on the project machine: `flock /tmp/heavy.lock .venv/bin/python bench/cam.py`.

Usage: python bench/cam.py [--size 64] [--vit-size 64] [--bs 8] [--chunk 128] [--reps 5]
       [--device cpu|cuda] [--skip-slow] [--models resnet18,vit]
"""
import argparse, os, statistics, sys, time, warnings
import numpy as np, torch
from torch import nn
from robust_saliency.core import fold_bn
from robust_saliency.saliency import (GradCAM, GradCAMpp, HiResCAM, XGradCAM, LayerCAM, EigenCAM, ScoreCAM, AblationCAM,
                                      find_layer)

sys.path.append(os.environ.get('GRADCAM_PATH', '/tmp/gcpkgs'))
try:
    warnings.filterwarnings('ignore')
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from pytorch_grad_cam.utils.reshape_transforms import vit_reshape_transform
    from pytorch_grad_cam.ablation_layer import AblationLayer, AblationLayerVit
    import pytorch_grad_cam.score_cam, pytorch_grad_cam.ablation_cam
    for _m in (pytorch_grad_cam.score_cam, pytorch_grad_cam.ablation_cam): _m.tqdm.tqdm = lambda it, **k: it   # no bars
except Exception as e: pgc, err = None, e

def _once(f, dev, k=1):
    t0 = time.perf_counter()
    for _ in range(k): f()
    if dev.type == 'cuda': torch.cuda.synchronize(dev)
    return (time.perf_counter() - t0) / k

def pair(f, g, reps, dev):
    "Median wall times of `f()` and `g()` after a warm-up each, runs interleaved so machine load drifts hit both alike"
    a, b = _once(f, dev), _once(g, dev)
    k = max(1, int(0.25 / max(a, b, 1e-4)))              # fast calls: time k in a row
    tf, tg = [], []
    for _ in range(reps): tf.append(_once(f, dev, k)); tg.append(_once(g, dev, k))
    return statistics.median(tf), statistics.median(tg)

def scale(m):
    "pytorch-grad-cam's `scale_cam_image` normalisation, per image: (m - min) / (1e-7 + max)"
    m = m.reshape(len(m), -1).double()
    m = m - m.min(1, keepdim=True).values
    return m / (1e-7 + m.max(1, keepdim=True).values)

def corr(a, b):
    "Pearson correlation per image [B] (1 where both maps are constant)"
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    na, nb = a.norm(dim=1), b.norm(dim=1)
    c = (a * b).sum(1) / (na * nb).clamp_min(1e-300)
    return torch.where((na > 0) & (nb > 0), c, ((na == 0) & (nb == 0)).double())

class _NoReLU:
    "numpy for pytorch_grad_cam.base_cam, whose two `np.maximum(cam, 0)` (the ReLUs) become the identity"
    def __getattr__(self, k): return getattr(np, k)
    @staticmethod
    def maximum(a, b): return a

class _Flipped(EigenCAM):
    "EigenCAM with the other SVD sign (to align with pytorch-grad-cam's per-image sign)"
    def _cam_free(self, p, A): return -super()._cam_free(p, A)

class _EpsGradCAMpp(GradCAMpp):
    "Grad-CAM++ with pytorch-grad-cam's eps=1e-6 in the alpha denominator (to show that it is the whole difference)"
    def _cam(self, A, g):
        g2 = g * g
        a = torch.where(g != 0, g2 / (2 * g2 + A.sum((2, 3), keepdim=True) * g2 * g + 1e-6), torch.zeros_like(g))
        return ((a * torch.relu(g)).sum((2, 3), keepdim=True) * A).sum(1, keepdim=True)

class _CornerScoreCAM(ScoreCAM):
    "Score-CAM with pytorch-grad-cam's mask upsampling (align_corners=True), to show that it is the whole difference"
    def _masks(self, a, size):
        m = torch.nn.functional.interpolate(a, size=size, mode='bilinear', align_corners=True)
        lo, hi = m.amin((2, 3), keepdim=True), m.amax((2, 3), keepdim=True)
        return (m - lo) / (hi - lo + 1e-8)

class _ZeroPatchVit(AblationLayerVit if pgc else object):
    "pytorch-grad-cam's ViT ablation layer doing the paper's ablation: the feature zeroed on the patch tokens only"
    def __call__(self, x):
        out = self.activations
        for i in range(out.size(0)): out[i, 1:, self.indices[i]] = 0
        return out

def tiny_vit(size, n_out, dev):
    "A small ViT (4 layers, width 128, patch 16): seconds on a CPU; its zero-initialised head given random weights"
    from torchvision.models.vision_transformer import VisionTransformer
    m = VisionTransformer(image_size=size, patch_size=16, num_layers=4, num_heads=4, hidden_dim=128, mlp_dim=256,
                          num_classes=n_out)
    nn.init.normal_(m.heads.head.weight, std=0.1)
    return m.to(dev).eval()

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--size', type=int, default=64); p.add_argument('--vit-size', type=int, default=64)
    p.add_argument('--bs', type=int, default=8); p.add_argument('--chunk', type=int, default=128)
    p.add_argument('--reps', type=int, default=5)
    p.add_argument('--models', default='resnet18,vit'); p.add_argument('--skip-slow', action='store_true')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    a = p.parse_args(argv)
    if pgc is None: sys.exit(f"pytorch-grad-cam not importable ({err}); install it as the docstring says")
    import torchvision
    dev, C = torch.device(a.device), 10
    print(f"device={dev} threads={torch.get_num_threads()} bs={a.bs} size={a.size} vit_size={a.vit_size} "
          f"chunk={a.chunk} reps={a.reps}  pytorch-grad-cam {getattr(pgc, '__version__', '1.5.x')}")
    rows = []
    for arch in a.models.split(','):
        torch.manual_seed(0)
        if arch == 'resnet18':
            model, size = torchvision.models.resnet18(num_classes=C).to(dev).eval(), a.size
            x = torch.rand(a.bs, 3, size, size, device=dev)
            layer, rt, abl = model.layer4, None, AblationLayer
        else:
            size = a.vit_size
            model = tiny_vit(size, C, dev)
            x = torch.rand(a.bs, 3, size, size, device=dev)
            layer, g = model.encoder.layers[-1].ln_1, size // 16
            rt, abl = (lambda t: vit_reshape_transform(t, g, g)), AblationLayerVit
            assert find_layer(model, x) is layer                # the automatic choice is the one the tutorial uses
        fold_bn(model, x); fold_bn(model, x)                   # Score-CAM's folded model, traced before any timing
        with torch.no_grad(): y = model(x).argmax(1)             # the predicted class (pytorch-grad-cam's default)
        tg = [ClassifierOutputTarget(int(c)) for c in y]
        def theirs(cls, **kw):
            def run(signed=False):
                cam = cls(model=model, target_layers=[layer], reshape_transform=rt, **{k: v for k, v in kw.items() if k != 'bsz'})
                if 'bsz' in kw: cam.batch_size = kw['bsz']
                if signed: pgc.base_cam.np = _NoReLU()
                try:
                    with cam: return torch.from_numpy(cam(input_tensor=x, targets=tg))
                finally: pgc.base_cam.np = np
            return run
        specs = [('gradcam', GradCAM(layer=layer), theirs(pgc.GradCAM), 'fast'),
                 ('gradcampp', GradCAMpp(layer=layer), theirs(pgc.GradCAMPlusPlus), 'fast'),
                 ('gradcampp+eps', _EpsGradCAMpp(layer=layer), theirs(pgc.GradCAMPlusPlus), 'parity'),
                 ('hirescam', HiResCAM(layer=layer), theirs(pgc.HiResCAM), 'fast'),
                 ('xgradcam', XGradCAM(layer=layer), theirs(pgc.XGradCAM), 'fast'),
                 ('layercam', LayerCAM(layer=layer), theirs(pgc.LayerCAM), 'fast'),
                 ('eigencam', EigenCAM(layer=layer), theirs(pgc.EigenCAM), 'fast')]
        if not a.skip_slow:
            specs += [('scorecam', ScoreCAM(layer=layer, chunk=a.chunk), theirs(pgc.ScoreCAM), 'slow'),
                      (f'scorecam bs={a.chunk}', ScoreCAM(layer=layer, chunk=a.chunk), theirs(pgc.ScoreCAM, bsz=a.chunk), 'slow'),
                      (f'scorecam+corners bs={a.chunk}', _CornerScoreCAM(layer=layer, chunk=a.chunk),
                       theirs(pgc.ScoreCAM, bsz=a.chunk), 'parity'),
                      ('ablationcam', AblationCAM(layer=layer, chunk=a.chunk), theirs(pgc.AblationCAM, ablation_layer=abl()), 'slow'),
                      (f'ablationcam bs={a.chunk}', AblationCAM(layer=layer, chunk=a.chunk),
                       theirs(pgc.AblationCAM, ablation_layer=abl(), batch_size=a.chunk), 'slow')]
            if arch == 'vit':
                specs.append((f'ablationcam* bs={a.chunk}', AblationCAM(layer=layer, chunk=a.chunk),
                              theirs(pgc.AblationCAM, ablation_layer=_ZeroPatchVit(), batch_size=a.chunk), 'parity'))
        for name, ours, ref, speed in specs:
            f = lambda: ours(model, x, target=y)
            # the maps as users get them (ReLU'd) and before the ReLU (signed: every pixel compared, also where a
            # random model's map is negative everywhere and ReLU leaves zeros on both sides). A slow pair is timed
            # on these calls, a fast one over `reps` interleaved runs after them
            t0 = time.perf_counter(); mo = scale(f().cpu()); t1 = time.perf_counter(); mt = scale(ref()); t2 = time.perf_counter()
            ours.relu = False
            so, st = scale(f().cpu()), scale(ref(signed=True))
            ours.relu = True
            c, cs, flips = corr(mo, mt), corr(so, st), ''
            if name == 'eigencam':                      # align the arbitrary SVD sign per image
                flip = cs < 0
                flips, cs = f"{int(flip.sum())}/{len(c)}", cs.abs()
                mo = torch.where(flip[:, None], scale(_Flipped(layer=layer)(model, x, target=y).cpu()), mo)
                so = torch.where(flip[:, None], 1 - so, so)
                c = corr(mo, mt)
            nz = (mo.amax(1) > 0) | (mt.amax(1) > 0)    # images with a non-zero map on either side
            cr = f"{c[nz].min().item():.6f}" if nz.any() else '(all 0)'
            if speed == 'fast': to, tt = pair(f, ref, a.reps, dev)
            elif speed == 'slow': to, tt = t1 - t0, t2 - t1
            else: to = tt = float('nan')                 # a parity-only row
            rows.append((arch, name, cr, int(nz.sum()), cs.min().item(), (so - st).abs().max().item(), flips, to, tt))
            print(f"{arch:<9} {name:<24} corr {cr:>8} ({int(nz.sum())}/{len(c)})  signed {cs.min().item():.6f} "
                  f"max|d| {rows[-1][5]:.1e} {flips:>4}  ours {to:8.4f}s  theirs {tt:8.4f}s  ratio {to / tt:5.2f}", flush=True)
    print("\n| model | method | corr | non-zero maps | corr before ReLU | max abs diff | sign flips | ours (s) "
          "| pytorch-grad-cam (s) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for arch, name, cr, nz, cs, d, fl, to, tt in rows:
        tm = f"{to:.4f} | {tt:.4f} | {to / tt:.2f}" if to == to else "- | - | -"
        print(f"| {arch} | {name} | {cr} | {nz}/{a.bs} | {cs:.6f} | {d:.1e} | {fl} | {tm} |")

if __name__ == '__main__':
    main()
