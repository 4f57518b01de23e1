"""Explanation sensitivity: robust_saliency.stability's max-/avg-sensitivity against Captum's `sensitivity_max` and
Quantus' MaxSensitivity / AvgSensitivity, values and speed, measured side by side in one run; prints the ratios.

Values. With identical noise (ours drawn by `stability.perturbations`, fed to Captum through its `perturb_func` and to
Quantus through a `perturb_func` that returns sample k at its k-th call) the scores must agree to float precision.
With each library drawing its own noise they can only agree in distribution: the bench prints the means over the
images and the Spearman correlation of the per-image scores, next to the correlation between two of our own runs
with different seeds (the noise floor of that correlation).
Speed. The floor is the n+1 input-gradient passes the metric needs (the clean images and n perturbed copies of
each): one `torch.autograd.grad` over the B*(n+1) rows of a plain eval-mode model. Every library explains with the
same saliency method (`Gradient()`), so the differences are the metrics' own overheads. Target: ours within 1.15x
the floor, Quantus >= 1.8x ours. Ours runs BatchNorm-folded passes, so it can come in under the floor; with ours at the
floor, Quantus / ours is Quantus' own ratio to the floor, which the bench prints too.

Quantus is optional and not a dependency (it pulls opencv and scikit-image). To include it without touching the venv:
    pip install --no-deps --target /tmp/qpkgs quantus scikit-image opencv-python-headless cachetools lazy_loader imageio tifffile networkx
    QUANTUS_PATH=/tmp/qpkgs python bench/stability.py
Run under the shared lock on the project machine: `flock /tmp/heavy.lock .venv/bin/python bench/stability.py`.
On a GPU: `--device cuda` (Quantus moves every step's batch between numpy on the host and the device)."""
import argparse, os, statistics, sys, time, warnings
import numpy as np, torch
from scipy.stats import spearmanr
from robust_saliency.core import small_cnn
from robust_saliency.saliency import Gradient
from robust_saliency.stability import explanation_stability, perturbations, max_sensitivity, avg_sensitivity

if os.environ.get('QUANTUS_PATH'): sys.path.append(os.environ['QUANTUS_PATH'])
try:
    warnings.filterwarnings('ignore')
    import quantus
except Exception as e: quantus, qerr = None, e
try: from captum.metrics import sensitivity_max
except Exception as e: sensitivity_max, cerr = None, e

DEV = torch.device('cpu')

def _sync():
    if DEV.type == 'cuda': torch.cuda.synchronize(DEV)

def pair(fs, reps):
    "Median wall time of each function in `fs`, runs interleaved (f, g, h, f, g, h, ...) so load drifts hit all alike"
    for f in fs: f()
    _sync()
    ts = [[] for _ in fs]
    for _ in range(reps):
        for f, t in zip(fs, ts):
            t0 = time.perf_counter(); f(); _sync(); t.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in ts]

def floor_fn(model, x, t, n, bs):
    "The n+1 input-gradient passes alone: plain autograd over the clean rows and n perturbed copies, `bs` rows a pass"
    rows = x.repeat_interleave(n + 1, 0).detach()
    tr = t.repeat_interleave(n + 1)
    for p in model.parameters(): p.requires_grad_(False)
    def f():
        for a in range(0, len(rows), bs):
            xr = rows[a:a + bs].clone().requires_grad_()
            torch.autograd.grad(model(xr).gather(1, tr[a:a + bs, None]).sum(), xr)
    return f

def explain(model, inputs, targets):
    "Gradient maps of numpy or torch inputs, on the bench device; grad enabled (Captum calls its explainer under no_grad)"
    if isinstance(inputs, tuple):   # Captum hands its inputs over as a tuple and wants one back
        return (explain(model, inputs[0], targets),)
    with torch.enable_grad():
        return Gradient()(model, torch.as_tensor(inputs, device=DEV), target=torch.as_tensor(targets, device=DEV))

def captum_scores(model, x, t, n, radius, noise=None):
    "Captum's max-sensitivity; with `noise` [B,n,...] its perturbations are ours (rows image-major, as Captum repeats)"
    pf = (lambda inp, r: inp + noise.flatten(0, 1)) if noise is not None else None
    kw = dict(perturb_func=pf) if pf is not None else {}
    return sensitivity_max(lambda inp, target: explain(model, inp, target), (x,), perturb_radius=radius,
                           n_perturb_samples=n, target=t, **kw).detach().cpu()

def quantus_scores(kind, model, x, t, n, radius, noise=None):
    "Quantus' Max-/AvgSensitivity on Gradient maps; with `noise` its k-th perturbation call returns our sample k"
    state = {'k': 0}
    def ours_noise(arr, indices, **kw):
        k = state['k']; state['k'] += 1
        return arr + noise[:, k].flatten(1).cpu().numpy()
    cls = quantus.MaxSensitivity if kind == 'max' else quantus.AvgSensitivity
    kw = dict(perturb_func=ours_noise) if noise is not None else {}
    m = cls(nr_samples=n, lower_bound=radius, normalise=False, abs=False, disable_warnings=True,
            display_progressbar=False, **kw)
    ex = lambda model, inputs, targets, **k: explain(model, inputs, targets).cpu().numpy()
    r = m(model=model, x_batch=x.cpu().numpy(), y_batch=t.cpu().numpy(), a_batch=None, explain_func=ex,
          device=str(DEV), batch_size=len(x), channel_first=True)
    return torch.tensor(np.array(r), dtype=torch.float32)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--bs', type=int, default=48, help='images timed'); p.add_argument('--size', type=int, default=32)
    p.add_argument('--n', type=int, default=10, help='perturbations per image')
    p.add_argument('--radius', type=float, default=0.02); p.add_argument('--images', type=int, default=64,
                   help='images of the value comparison with independent noise')
    p.add_argument('--reps', type=int, default=5); p.add_argument('--threads', type=int, default=1)
    p.add_argument('--device', default='cpu')
    a = p.parse_args()
    global DEV
    DEV = torch.device(a.device)
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    print(f"torch {torch.__version__}, device {DEV}, {a.threads} thread(s); small_cnn, {a.bs} images 3x{a.size}x{a.size}, "
          f"n={a.n} uniform perturbations of radius {a.radius}")
    print('quantus', quantus.__version__ if quantus else f'not available ({qerr})', '| captum',
          'available' if sensitivity_max else f'not available ({cerr})')
    model = small_cnn(3, 2, nf=16, depth=3).to(DEV).eval()
    with torch.no_grad():   # BatchNorm statistics that are not the identity, so the maps vary from image to image
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d): m.running_mean.uniform_(-.1, .1); m.running_var.uniform_(.5, 2)
    x = torch.rand(a.images, 3, a.size, a.size, device=DEV)
    with torch.no_grad(): t = model(x).argmax(1)
    Gradient()(model, x[:2]); Gradient()(model, x[:2])   # BatchNorm folded from here on, in every library's calls alike
    ours = lambda x, t, **kw: explanation_stability(model, Gradient(), x, t, radius=a.radius, n=a.n, **kw)

    print("\n-- values, identical noise (max |difference| over the images; scores are O(0.1-1)) --")
    xb, tb = x[:a.bs], t[:a.bs]
    noise = perturbations(xb, a.n, a.radius)
    r = ours(xb, tb)
    if sensitivity_max:
        c = captum_scores(model, xb, tb, a.n, a.radius, noise)
        print(f"max-sensitivity  ours vs captum.sensitivity_max: {(r.max_sensitivity.cpu() - c).abs().max():.2e}")
    if quantus:
        for kind, mine in (('max', r.max_sensitivity), ('avg', r.avg_sensitivity)):
            q = quantus_scores(kind, model, xb, tb, a.n, a.radius, noise)
            print(f"{kind}-sensitivity  ours vs quantus.{kind.title()}Sensitivity: {(mine.cpu() - q).abs().max():.2e}")

    print(f"\n-- values, each library's own noise ({a.images} images): mean, and Spearman of per-image scores vs ours --")
    r0, r1 = ours(x, t), ours(x, t, seed=1)
    rho = lambda u, v: spearmanr(u.cpu().numpy(), v.cpu().numpy())[0]
    print(f"ours seed 0        max {r0.max_sensitivity.mean():.4f}  avg {r0.avg_sensitivity.mean():.4f}")
    print(f"ours seed 1        max {r1.max_sensitivity.mean():.4f}  avg {r1.avg_sensitivity.mean():.4f}   "
          f"rho(max) {rho(r0.max_sensitivity, r1.max_sensitivity):.3f}  rho(avg) {rho(r0.avg_sensitivity, r1.avg_sensitivity):.3f}"
          "  (the noise floor of rho)")
    if sensitivity_max:
        c = captum_scores(model, x, t, a.n, a.radius)
        print(f"captum             max {c.mean():.4f}                rho(max) {rho(r0.max_sensitivity, c):.3f}")
    if quantus:
        qm, qa = (quantus_scores(k, model, x, t, a.n, a.radius) for k in ('max', 'avg'))
        print(f"quantus            max {qm.mean():.4f}  avg {qa.mean():.4f}   rho(max) {rho(r0.max_sensitivity, qm):.3f}  "
              f"rho(avg) {rho(r0.avg_sensitivity, qa):.3f}")

    print(f"\n-- speed ({a.bs} images, n={a.n}; median of {a.reps} interleaved runs) --")
    auto = 256 if DEV.type == 'cuda' else 64   # the rows per pass ours uses by default
    fs = {f'floor, n+1 passes of {a.bs} images': floor_fn(model, xb, tb, a.n, a.bs),
          f'floor, passes of {auto} rows (as ours)': floor_fn(model, xb, tb, a.n, auto),
          'ours max_sensitivity': lambda: max_sensitivity(model, Gradient(), xb, tb, radius=a.radius, n=a.n),
          'ours avg_sensitivity': lambda: avg_sensitivity(model, Gradient(), xb, tb, radius=a.radius, n=a.n),
          'ours, all four scores at once': lambda: ours(xb, tb),
          'ours max, Gradient(fold_bn=False)': lambda: max_sensitivity(model, Gradient(fold_bn=False), xb, tb,
                                                                       radius=a.radius, n=a.n),
          'ours max, keep_pred=True': lambda: max_sensitivity(model, Gradient(), xb, tb, radius=a.radius, n=a.n,
                                                              keep_pred=True)}
    if sensitivity_max: fs['captum sensitivity_max'] = lambda: captum_scores(model, xb, tb, a.n, a.radius)
    if quantus: fs['quantus MaxSensitivity'] = lambda: quantus_scores('max', model, xb, tb, a.n, a.radius)
    ts = dict(zip(fs, pair(list(fs.values()), a.reps)))
    tf = min(v for k, v in ts.items() if k.startswith('floor'))
    to, ta = ts['ours max_sensitivity'], ts['ours avg_sensitivity']
    for k, v in ts.items(): print(f"{k:40s} {v * 1e3:8.1f} ms   {v / tf:5.2f}x the floor   {v / to:5.2f}x ours")
    print(f"ours / floor = {to / tf:.2f} (max), {ta / tf:.2f} (avg) (target <= 1.15); without BatchNorm folding "
          f"{ts['ours max, Gradient(fold_bn=False)'] / tf:.2f}" +
          (f"; quantus / ours = {ts['quantus MaxSensitivity'] / to:.2f} (target >= 1.8)" if quantus else ''))
    print("floor = the faster of the two floors; keep_pred adds one forward pass over the perturbed rows")

if __name__ == '__main__': main()
