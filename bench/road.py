"""ROAD (Rong et al. 2022, Remove And Debias) speed and parity: robust_saliency.road against pytorch-grad-cam's ROAD,
measured side by side in one run. Prints the parity numbers, the time of each, their ratio, and where our time goes.

Parity: our imputer against grad-cam's `NoisyLinearImputer(noise=0)` on the same images and masks (RGB and grey), and our
MoRF/LeRF curves against grad-cam's per-percentile scores with the noise off on both sides.
Speed: MoRF + LeRF over `--n` images at `--percentiles`, both with their default noise (0.01), grad-cam through its
public `ROADMostRelevantFirstAverage` / `ROADLeastRelevantFirstAverage`. grad-cam solves one sparse system per image and
percentile with scipy on the host; ours solves all of them at once in torch, on the model's device (one block-Cholesky
pass over the image rows for every image-percentile, then batched forward passes).

pytorch-grad-cam is optional and not a dependency. To include it without touching the venv:
    pip install --no-deps --target /tmp/gcpkgs grad-cam ttach opencv-python-headless
    GRADCAM_PATH=/tmp/gcpkgs python bench/road.py [--device cuda]
Run under the shared lock on the project machine: `flock /tmp/heavy.lock .venv/bin/python bench/road.py`."""
import argparse, importlib.metadata, math, os, statistics, sys, time, warnings
import numpy as np, torch
from robust_saliency.core import small_cnn, fold_bn
from robust_saliency.data import synth_lesions
from robust_saliency.metrics import gaussian_blur
from robust_saliency import road
from robust_saliency.road import road_impute, road_curve

if os.environ.get('GRADCAM_PATH'): sys.path.append(os.environ['GRADCAM_PATH'])
try:
    warnings.filterwarnings('ignore')
    import pytorch_grad_cam
    from pytorch_grad_cam.metrics.road import (NoisyLinearImputer, ROADMostRelevantFirstAverage,
                                               ROADLeastRelevantFirstAverage)
    from pytorch_grad_cam.metrics.perturbation_confidence import (PerturbationConfidenceMetric, RemoveMostRelevantFirst,
                                                                  RemoveLeastRelevantFirst)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
    gerr = None
except Exception as e: pytorch_grad_cam, gerr = None, e

DEV = torch.device('cpu')

def _sync():
    if DEV.type == 'cuda': torch.cuda.synchronize(DEV)

def once(f):
    _sync(); t = time.perf_counter(); f(); _sync()
    return time.perf_counter() - t

def interleaved(fs, reps):
    "Median time of each callable, runs interleaved so that machine load drifts hit all alike (after one warm-up each)"
    for f in fs.values(): f()
    ts = {k: [] for k in fs}
    for _ in range(reps):
        for k, f in fs.items(): ts[k].append(once(f))
    return {k: statistics.median(v) for k, v in ts.items()}

def gc_removed(cam, q, order):
    "How many pixels grad-cam removes at its percentile `q` (RemoveMostRelevantFirst keeps `cam < np.percentile(cam, q)`)"
    c = cam if order == 'morf' else 1 - cam
    return int((c >= np.percentile(c, q)).sum())

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=64); p.add_argument('--size', type=int, default=32)
    p.add_argument('--percentiles', default='10,20,30,40,50,60,70,80,90')
    p.add_argument('--threads', type=int, default=1); p.add_argument('--reps', type=int, default=3)
    p.add_argument('--device', default='cpu')
    a = p.parse_args()
    global DEV
    DEV = torch.device(a.device)
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    pcts = [float(v) for v in a.percentiles.split(',')]
    B, S, P = a.n, a.size, len(pcts)
    print(f"torch {torch.__version__}, device {DEV}, {a.threads} thread(s); {B} lesion images 3x{S}x{S}, "
          f"{P} percentiles, MoRF + LeRF = {2 * B * P} imputed images")
    print('pytorch-grad-cam', importlib.metadata.version('grad-cam') if pytorch_grad_cam else f'not available ({gerr})')
    x = synth_lesions(B, S, seed=0).images.to(DEV)
    # CAM-like maps (smooth blobs): large connected holes, the hard case for the solver
    maps = gaussian_blur(torch.rand(B, 1, S, S, generator=torch.Generator().manual_seed(1)), sigma=S / 10).to(DEV)
    model = small_cnn(3, 2).to(DEV).eval()
    with torch.no_grad(): t = model(x).argmax(1)
    ours = {o: (lambda o=o: road_curve(model, x, maps, t, percentiles=pcts, order=o)) for o in ('morf', 'lerf')}

    # where our time goes: the imputation (factorisation, substitution) against the forward passes
    N = S * S
    rank = {o: maps.flatten(1).argsort(dim=1, descending=o == 'morf', stable=True).argsort(dim=1) for o in ('morf', 'lerf')}
    ks = torch.tensor([math.floor(N * q / 100 + 1e-6) for q in pcts], device=DEV)
    u = torch.cat([(rank[o][:, None] < ks[None, :, None]).view(-1, S, S) for o in ('morf', 'lerf')])
    xr = x[:, None].expand(B, P, 3, S, S).reshape(-1, 3, S, S).repeat(2, 1, 1, 1)
    wsum = road._nsum(torch.ones(1, 1, S, S, device=DEV))[0, 0]
    n = road._rows_per_solve(x.shape, DEV)
    def factor(): return [road._factor(c, wsum) for c in u.split(n)]
    fac = factor()
    spd = [torch.eye(S, device=DEV).expand(len(c), S, S) * 2 - 0.1 for c in u.split(n)]   # blocks of the same sizes
    def lapack(): return [torch.cholesky_inverse(torch.linalg.cholesky_ex(t)[0]) for t in spd for _ in range(S)]
    bb = torch.where(u[:, None], road._nsum(xr * ~u[:, None]), xr).permute(2, 0, 3, 1).split(n, 1)
    net = fold_bn(model, x); net = fold_bn(model, x)
    def forward():
        with torch.no_grad():
            for c in xr.split(32 if DEV.type == 'cpu' else 256): net(c)
    tm = interleaved(dict(total=lambda: (ours['morf'](), ours['lerf']()), impute=lambda: road_impute(xr, u[:, None], noise=0),
                          factor=factor, lapack=lapack, subst=lambda: [road._substitute(*f, b.contiguous()) for f, b in zip(fac, bb)],
                          forward=forward), a.reps)
    t_ours = tm['total']
    print(f"\nours, MoRF + LeRF: {t_ours:.3f}s = imputation {tm['impute']:.3f}s ({tm['impute'] / t_ours:.0%}) + {2 * B * P} "
          f"forward passes {tm['forward']:.3f}s ({tm['forward'] / t_ours:.0%}) + masks, noise, scoring "
          f"{t_ours - tm['impute'] - tm['forward']:.3f}s")
    print(f"the imputation's parts, each timed on its own (the sum can exceed the whole, which reuses buffers): block "
          f"Cholesky down the {S} rows {tm['factor']:.3f}s, of which the {S}x{S} blocks' Cholesky and inverse, one LAPACK "
          f"call per block, {tm['lapack']:.3f}s; substitution {tm['subst']:.3f}s")
    print(f"ours: {tm['impute'] / (2 * B * P) * 1e3:.3f} ms per imputed image (noise-free solve)")
    if not pytorch_grad_cam: return

    # parity 1: the imputer, noise off, same image and mask (grad-cam's mask: 1 = keep)
    imp = NoisyLinearImputer(noise=0)
    xc, uc = x.cpu(), u.cpu()
    worst = {}
    for name, img in (('RGB', xc), ('grey', xc.mean(1, keepdim=True))):
        rows = list(range(0, len(uc), max(1, len(uc) // 24)))
        ref = torch.stack([imp(img[(r % (B * P)) // P], (~uc[r]).float()) for r in rows])
        mine = road_impute(torch.stack([img[(r % (B * P)) // P] for r in rows]).to(DEV), uc[rows][:, None].to(DEV), noise=0).cpu()
        worst[name] = (mine - ref).abs().max().item()
    print(f"\nparity, imputer vs grad-cam NoisyLinearImputer(noise=0), same images and masks: max |diff| "
          f"RGB {worst['RGB']:.1e}, grey {worst['grey']:.1e} (tolerance 1e-4)")
    assert max(worst.values()) < 1e-4, worst

    # parity 2: the curves, noise off on both sides, each grad-cam percentile matched to the pixels it removes
    cams = maps[:, 0].cpu().numpy()
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in t]
    for o, Rm in (('morf', RemoveMostRelevantFirst), ('lerf', RemoveLeastRelevantFirst)):
        qs = [100 - q for q in pcts]   # grad-cam's percentile q removes the other 100 - q percent
        theirs = np.stack([PerturbationConfidenceMetric(Rm(q, NoisyLinearImputer(noise=0)))(
            x, cams, targets, model, return_diff=False) for q in qs], 1)
        counts = [{gc_removed(c, q, o) for c in cams} for q in qs]
        assert all(len(c) == 1 for c in counts), counts
        mine = road_curve(model, x, maps, t, percentiles=[100 * c.pop() / N for c in counts], order=o, noise=0).cpu()
        d = (mine - torch.tensor(theirs)).abs().max().item()
        print(f"parity, {o} curve vs grad-cam (noise 0, same pixels removed): max |diff| {d:.1e}")
        assert d < 1e-4, d

    # speed: grad-cam's public ROAD at its default noise, against ours
    gc = {o: (lambda c=c: c(pcts)(x, cams, targets, model))
          for o, c in (('morf', ROADMostRelevantFirstAverage), ('lerf', ROADLeastRelevantFirstAverage))}
    t_imp = once(lambda: [imp(xc[(r % (B * P)) // P], (~uc[r]).float()) for r in range(len(uc))])
    tg = interleaved(dict(theirs=lambda: (gc['morf'](), gc['lerf']()), ours=lambda: (ours['morf'](), ours['lerf']())), a.reps)
    print(f"\ngrad-cam, MoRF + LeRF: {tg['theirs']:.3f}s (its imputer alone {t_imp:.3f}s, "
          f"{t_imp / (2 * B * P) * 1e3:.2f} ms per imputed image) | ours {tg['ours']:.3f}s "
          f"-> {tg['theirs'] / tg['ours']:.1f}x (target >= 3x); imputation alone {t_imp / tm['impute']:.1f}x")


if __name__ == '__main__': main()
