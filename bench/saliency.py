"""Saliency speed vs Captum (and pytorch-grad-cam when installed), same model, inputs and run; prints time ratios.

ratio = ours / theirs (< 1: we are faster). Target: every ratio <= 1.05. Also measures the speed options:
input `channels_last`, larger `chunk`, and a `torch.compile`d forward.

Usage: python bench/saliency.py [--arch resnet18|small] [--size 64] [--bs 4] [--n 50] [--chunk 100] [--reps 5]
       [--device cpu|cuda] [--compile]
"""
import argparse, copy, statistics, time, warnings
import torch
import torch.nn.functional as F
from robust_saliency.core import small_cnn
from robust_saliency.saliency import Gradient, SmoothGrad, IntegratedGradients, GradCAM, find_layer

def timeit(f, reps, device):
    "Median wall time of `f()` over `reps` runs after one warm-up"
    def sync():
        if device.type == 'cuda': torch.cuda.synchronize(device)
    f(); sync()
    if reps == 0: return 0.
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); sync(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

def pair(f, g, reps, device):
    "Median wall times of `f()` and `g()`, runs interleaved (f, g, f, g, ...) so machine load drifts hit both alike"
    tf, tg = [], []
    k = max(1, int(0.25 / max(_once(f, device), _once(g, device), 1e-4)))   # fast calls: time k in a row
    for _ in range(reps): tf.append(_once(f, device, k)); tg.append(_once(g, device, k))
    return statistics.median(tf), statistics.median(tg)

def _once(f, device, k=1):
    t0 = time.perf_counter()
    for _ in range(k): f()
    if device.type == 'cuda': torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / k

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', default='resnet18', choices=['resnet18', 'small'])
    p.add_argument('--size', type=int, default=64); p.add_argument('--bs', type=int, default=4)
    p.add_argument('--n', type=int, default=50); p.add_argument('--chunk', type=int, default=100)
    p.add_argument('--reps', type=int, default=5)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--compile', action='store_true', help='also time a torch.compile(model) forward (slow to compile on CPU)')
    a = p.parse_args(argv)
    from captum.attr import Saliency, NoiseTunnel, IntegratedGradients as CIG, LayerGradCam, LayerAttribution
    dev = torch.device(a.device)
    torch.manual_seed(0)
    if a.arch == 'resnet18':
        import torchvision
        model = torchvision.models.resnet18(num_classes=3)
    else: model = small_cnn(n_out=3, nf=32, depth=4)
    model = model.to(dev).eval()
    x = torch.rand(a.bs, 3, a.size, a.size, device=dev)
    y = torch.arange(a.bs, device=dev) % 3
    sig = 0.15 * (x.flatten(1).amax(1) - x.flatten(1).amin(1))             # our sigma is relative: same absolute noise
    print(f"device={dev} threads={torch.get_num_threads()} arch={a.arch} x={tuple(x.shape)} n={a.n} chunk={a.chunk} reps={a.reps}")
    rows = []
    def row(name, ours, theirs):
        to, tt = pair(ours, theirs, a.reps, dev)
        rows.append((name, to, tt)); print(f"{name:<40} ours {to:8.3f}s  ref {tt:8.3f}s  ratio {to/tt:5.2f}", flush=True)
    sal = NoiseTunnel(Saliency(model))
    # Captum's NoiseTunnel takes one stdev per input tensor (not per sample): use per-sample runs' mean stdev for timing
    sd = sig.mean().item()
    row(f'SmoothGrad-{a.n} vs NoiseTunnel(Saliency)',
        lambda: SmoothGrad(Gradient(reduce=None), n=a.n, chunk=a.chunk)(model, x, target=y),
        lambda: sal.attribute(x, nt_type='smoothgrad', nt_samples=a.n, nt_samples_batch_size=a.chunk // a.bs, stdevs=sd, target=y, abs=False))
    row(f'VarGrad-{a.n} vs NoiseTunnel(vargrad)',
        lambda: SmoothGrad(Gradient(reduce=None), n=a.n, kind='var', chunk=a.chunk)(model, x, target=y),
        lambda: sal.attribute(x, nt_type='vargrad', nt_samples=a.n, nt_samples_batch_size=a.chunk // a.bs, stdevs=sd, target=y, abs=False))
    cig = CIG(model)
    row(f'IG-{a.n} vs IntegratedGradients',
        lambda: IntegratedGradients(steps=a.n, reduce=None, chunk=a.chunk)(model, x, target=y),
        lambda: cig.attribute(x, baselines=0., target=y, n_steps=a.n, internal_batch_size=a.chunk))
    layer = find_layer(model, x)
    lgc = LayerGradCam(model, layer)
    # one forward+backward: a fixed per-call cost (preserve_state's snapshot, ~0.5-1 ms for a ResNet-18) shows at tiny
    # batches, so GradCAM is also timed on a 4x larger batch
    for xx, yy in ((x, y), (x.repeat(4, 1, 1, 1), y.repeat(4))):
        row(f'GradCAM vs LayerGradCam+ReLU+up B={len(xx)}',
            lambda: GradCAM(layer=layer)(model, xx, target=yy),
            lambda: LayerAttribution.interpolate(lgc.attribute(xx, target=yy, relu_attributions=True), xx.shape[-2:], 'bilinear'))
    try:
        from pytorch_grad_cam import GradCAM as PGC
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        pgc = PGC(model=model, target_layers=[layer])
        row('GradCAM vs pytorch-grad-cam', lambda: GradCAM(layer=layer)(model, x, target=y),
            lambda: pgc(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in y]))
    except ImportError: print("pytorch-grad-cam not installed: GradCAM vs pytorch-grad-cam skipped (pip install grad-cam)")
    worst = max(r[1] / r[2] for r in rows)
    print(f"worst ratio vs reference: {worst:.2f} ({'OK' if worst <= 1.05 else 'ABOVE'} target 1.05)")

    print("\nspeed options (ratio = option / default, SmoothGrad-%d):" % a.n)
    base = lambda **kw: SmoothGrad(Gradient(reduce=None), n=a.n, chunk=a.chunk, **kw)
    ref = lambda: base()(model, x, target=y)
    t, t0 = pair(lambda: SmoothGrad(Gradient(reduce=None), n=a.n, chunk=a.n * a.bs)(model, x, target=y), ref, a.reps, dev)
    print(f"  chunk={a.n * a.bs} (one pass)           ratio {t/t0:5.2f}")
    t, t0 = pair(lambda: SmoothGrad(Gradient(reduce=None, channels_last=True), n=a.n, chunk=a.chunk)(model, x, target=y), ref, a.reps, dev)
    print(f"  channels_last inputs            ratio {t/t0:5.2f}")
    mcl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    t, t0 = pair(lambda: SmoothGrad(Gradient(reduce=None, channels_last=True), n=a.n, chunk=a.chunk)(mcl, x, target=y), ref, a.reps, dev)
    print(f"  channels_last inputs + model    ratio {t/t0:5.2f}")
    if a.compile:
        cm = torch.compile(model)
        t1 = time.perf_counter(); base()(cm, x, target=y); tc = time.perf_counter() - t1
        t, t0 = pair(lambda: base()(cm, x, target=y), ref, a.reps, dev)
        print(f"  torch.compile(model)            ratio {t/t0:5.2f} (compile + first call {tc:.1f}s)")

if __name__ == '__main__':
    warnings.filterwarnings('ignore')
    main()
