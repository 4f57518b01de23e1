"""Deletion / insertion AUC speed: robust_saliency.metrics (one stacked batch of images x steps, split by `chunk`)
against Quantus' PixelFlipping at the same number of steps and against a straightforward per-image, per-step loop,
measured side by side in one run. Prints the ratios and checks that all three give the same curves.
Also prints the floor: the time of the B*steps forward passes alone. Deletion/insertion cost is the model's forward
passes; Quantus >= 0.6 also batches over images (one forward per step), so against it the ratio is bounded by its
per-step overhead, not by the 20x that per-image implementations leave on the table.

Quantus is optional and not a dependency (it pulls opencv and scikit-image). To include it without touching the venv:
    pip install --no-deps --target /tmp/qpkgs quantus scikit-image opencv-python-headless cachetools lazy_loader imageio tifffile networkx
    QUANTUS_PATH=/tmp/qpkgs python bench/metrics.py
Run under the shared lock on the project machine: `flock /tmp/heavy.lock .venv/bin/python bench/metrics.py`.
On a GPU (`--device cuda`) ours perturbs and scores on the device, while Quantus perturbs numpy arrays on the host and
copies every step's batch to the device: that is where the two differ most.
The ceiling printed per model is Quantus' time over the forward-pass floor: what any implementation that runs the same
forward passes in the same precision can gain over Quantus. `--amp bf16` also times ours under bf16 autocast (a cheaper
forward pass, DESIGN.md's way below the floor) and prints how far its curves move from fp32."""
import argparse, os, sys, time, warnings
import numpy as np, torch
from torch import nn
from robust_saliency.core import small_cnn
from robust_saliency.metrics import perturbation_curve, curve_auc

if os.environ.get('QUANTUS_PATH'): sys.path.append(os.environ['QUANTUS_PATH'])
try:
    warnings.filterwarnings('ignore')
    import quantus
except Exception as e: quantus, qerr = None, e


def naive_curve(model, x, maps, target, steps, mode='deletion', start=None):
    "Reference: one image and one step at a time (what a straightforward implementation does)"
    B, C, H, W = x.shape; N = H * W
    out = torch.zeros(B, steps + 1, device=x.device)
    with torch.no_grad():
        for b in range(B):
            order = maps[b].flatten().argsort(descending=True, stable=True)
            for i in range(steps + 1):
                idx = order[:round(i * N / steps)]
                if mode == 'deletion': img = x[b].clone().view(C, -1); img[:, idx] = 0.
                else: img = start[b].clone().view(C, -1); img[:, idx] = x[b].view(C, -1)[:, idx]
                out[b, i] = model(img.view(1, C, H, W)).softmax(1)[0, target[b]]
    return out


def quantus_curve(model, x, maps, target, steps):
    "Quantus PixelFlipping at the same steps (map broadcast over channels, baseline 0, softmax)"
    B, C, H, W = x.shape
    m = quantus.PixelFlipping(features_in_step=H * W // steps, perturb_baseline=0.0, normalise=True, abs=False,
                              disable_warnings=True, display_progressbar=False)
    r = m(model=model, x_batch=x.cpu().numpy(), y_batch=target.cpu().numpy(), a_batch=maps.cpu().numpy(), device=str(x.device),
          softmax=True, channel_first=True, batch_size=B)
    return torch.tensor(np.array(r), dtype=torch.float32)


DEV = torch.device('cpu')

def _sync():
    if DEV.type == 'cuda': torch.cuda.synchronize(DEV)

def timeit(f, reps):
    f(); _sync()   # warm-up
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); _sync(); ts.append(time.perf_counter() - t)
    return min(ts)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--n', type=int, default=64); p.add_argument('--steps', type=int, default=20)
    p.add_argument('--size', type=int, default=60, help='image side; H*W must be divisible by steps for Quantus')
    p.add_argument('--channels', type=int, default=1, help="1 (grey, chest-like): Quantus' steps are C*H*W/features_in_step "
                   "while it requires H*W % features_in_step == 0, so it can run 20 steps only on one-channel images")
    p.add_argument('--chunk', type=int, default=None, help='images per forward pass (default: automatic)'); p.add_argument('--reps', type=int, default=3)
    p.add_argument('--threads', type=int, default=1); p.add_argument('--models', default='small_cnn,resnet18')
    p.add_argument('--device', default='cpu')
    p.add_argument('--amp', default='none', choices=['none', 'bf16', 'fp16'], help='also time ours under autocast in this dtype')
    a = p.parse_args()
    global DEV
    DEV = torch.device(a.device)
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    print(f"torch {torch.__version__}, device {DEV}, {a.threads} thread(s); {a.n} images {a.channels}x{a.size}x{a.size}, {a.steps} steps, chunk {a.chunk}")
    print('quantus', quantus.__version__ if quantus else f'not available ({qerr}); comparing against the per-image loop only')
    x = torch.rand(a.n, a.channels, a.size, a.size, device=DEV); maps = torch.rand(a.n, 1, a.size, a.size, device=DEV)
    for name in a.models.split(','):
        if name == 'small_cnn': model = small_cnn(a.channels, 2, nf=16, depth=3).eval()
        else:
            import torchvision
            model = getattr(torchvision.models, name)(num_classes=2)
            if a.channels != 3: model.conv1 = nn.Conv2d(a.channels, 64, 7, 2, 3, bias=False)
            model.eval()
        model.to(DEV)
        with torch.no_grad(): t = model(x).argmax(1)
        ours = lambda: perturbation_curve(model, x, maps, t, steps=a.steps, chunk=a.chunk)
        ours_ins = lambda: perturbation_curve(model, x, maps, t, steps=a.steps, mode='insertion', chunk=a.chunk)
        from robust_saliency.metrics import gaussian_blur
        loop = lambda: naive_curve(model, x, maps, t, a.steps)
        loop_ins = lambda: naive_curve(model, x, maps, t, a.steps, 'insertion', gaussian_blur(x))
        c = ours()
        torch.testing.assert_close(c, loop(), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ours_ins(), loop_ins(), atol=1e-5, rtol=1e-4)
        t_ours, t_ins = timeit(ours, a.reps), timeit(ours_ins, a.reps)
        t_loop, t_loop_ins = timeit(loop, 1), timeit(loop_ins, 1)
        # the floor: the B*steps forward passes alone (in the automatic chunk size), no perturbation, no scoring
        xs = torch.rand(a.n * a.steps, *x.shape[1:], device=DEV).split(a.chunk or 32)
        def floor():
            with torch.no_grad():
                for xc in xs: model(xc)
        t_floor = timeit(floor, a.reps)
        print(f"\n[{name}]  forward-pass floor ({a.n}x{a.steps} images): {t_floor:.3f}s; ours = {t_ours / t_floor:.2f}x the floor")
        print(f"[{name}]  deletion: ours {t_ours:.3f}s | per-image loop {t_loop:.3f}s -> {t_loop / t_ours:.1f}x")
        print(f"[{name}]  insertion: ours {t_ins:.3f}s | per-image loop {t_loop_ins:.3f}s -> {t_loop_ins / t_ins:.1f}x")
        if quantus:
            q = quantus_curve(model, x, maps, t, a.steps)
            torch.testing.assert_close(q, c[:, 1:].cpu(), atol=1e-5, rtol=1e-4)   # Quantus' curve omits the unperturbed point
            t_q = timeit(lambda: quantus_curve(model, x, maps, t, a.steps), a.reps)
            print(f"[{name}]  deletion vs Quantus PixelFlipping (same curves, checked): ours {t_ours:.3f}s | quantus {t_q:.3f}s "
                  f"-> {t_q / t_ours:.1f}x")
            print(f"[{name}]  ceiling at the same forward passes and precision: quantus / floor = {t_q / t_floor:.1f}x")
        if a.amp != 'none':
            dt = dict(bf16=torch.bfloat16, fp16=torch.float16)[a.amp]
            def ours_amp():
                with torch.autocast(DEV.type, dt): return perturbation_curve(model, x, maps, t, steps=a.steps, chunk=a.chunk)
            gap = (ours_amp() - c).abs().max().item()
            t_amp = timeit(ours_amp, a.reps)
            print(f"[{name}]  deletion under {a.amp} autocast: {t_amp:.3f}s -> {t_ours / t_amp:.2f}x ours in fp32; "
                  f"max |curve - fp32 curve| {gap:.4f}" + (f"; {t_q / t_amp:.1f}x Quantus" if quantus else ''))
        print(f"[{name}]  mean deletion AUC {curve_auc(c).mean():.4f}")


if __name__ == '__main__': main()
