"""Cost of adversarial training with `AdvTrainCallback` relative to clean fastai training, measured side by side.

One training epoch (validation excluded) with the callback vs one clean epoch, same model, same data, same starting
weights, same process. Prints each ratio next to the cost floor 1+2K/3 (an attack step = forward + input-only
backward ~ 2F, a training step ~ 3F) and the naive K+1 (attack steps that call `.backward()` into the weights).
Then trains PGD-7 with and without `early_stop` for a few epochs and compares time and robust accuracy.

Run (single thread, under the shared lock):
    flock /tmp/heavy.lock env OMP_NUM_THREADS=1 .venv/bin/python bench/advtrain.py
On a GPU, with bf16 autocast and a ResNet-18 (the clean epoch runs under the same autocast, so ratios stay comparable):
    python bench/advtrain.py --device cuda --amp bf16 --arch resnet18 --size 224 --n 2560 --bs 128
"""
import argparse, copy, statistics, time, warnings
import torch
from torch import nn
from fastai.learner import Learner
from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (patches Learner)
from fastai.callback.core import Callback, CancelValidException
from robust_saliency.core import small_cnn
from robust_saliency.data import lesion_dls
from robust_saliency.attacks import PGD, FGSM, robust_accuracy
from robust_saliency.callback.adversarial import AdvTrainCallback, DeviceMixedPrecision

class TrainTimer(Callback):
    "Wall time of the training phase of each epoch; validation skipped when `skip_valid`"
    order = 0
    def __init__(self, skip_valid=True): self.skip_valid, self.times = skip_valid, []
    def _sync(self):
        if self.dls.device is not None and torch.device(self.dls.device).type == 'cuda': torch.cuda.synchronize()
    def before_train(self): self._sync(); self.t0 = time.perf_counter()
    def after_train(self): self._sync(); self.times.append(time.perf_counter() - self.t0)
    def before_validate(self):
        if self.skip_valid: raise CancelValidException()

ARCH, AMP = 'small', 'none'

def new_model():
    if ARCH == 'small': return small_cnn(n_out=2, nf=32)
    import torchvision
    return getattr(torchvision.models, ARCH)(num_classes=2)

def make_learner(dls, state, cbs=()):
    model = new_model()
    model.load_state_dict(state)
    cbs = list(cbs) + ([DeviceMixedPrecision(AMP)] if AMP != 'none' else [])
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), cbs=cbs)
    learn.remove_cb(learn.progress)
    learn.logger = lambda *a: None
    return learn

def epoch_time(dls, state, cb):
    t = TrainTimer()
    learn = make_learner(dls, state, [t] + ([cb] if cb else []))
    learn.fit(1, 1e-3)
    return t.times[0]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=1280)
    ap.add_argument('--size', type=int, default=32)
    ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--eps', type=float, default=8/255)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--robust-epochs', type=int, default=4)
    ap.add_argument('--seeds', type=int, default=2, help='seeds of the early-stop comparison')
    ap.add_argument('--robust-eps', type=float, default=4/255,
                    help='eps of the early-stop comparison (at 8/255 plain PGD-7 collapses to one class in 4 epochs of this CNN)')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--arch', default='small', help="'small' (small_cnn, nf=32) or a torchvision model name, e.g. resnet18")
    ap.add_argument('--amp', default='none', choices=['none', 'bf16', 'fp16'], help='DeviceMixedPrecision for every run')
    a = ap.parse_args()
    global ARCH, AMP
    ARCH, AMP = a.arch, a.amp
    warnings.filterwarnings('ignore')
    torch.manual_seed(0)
    dls = lesion_dls(n=a.n, size=a.size, bs=a.bs, device=a.device)
    eps = a.eps
    # common starting weights: one epoch of PGD-3 training, so early stop is measured on a partly robust model
    torch.manual_seed(0)
    warm = make_learner(dls, new_model().state_dict(), [AdvTrainCallback(PGD(eps, steps=3))])
    warm.fit(1, 1e-3)
    state = copy.deepcopy(warm.model.state_dict())

    configs = [('clean', None, 0)]
    for k in (1, 3, 7, 10): configs.append((f'PGD-{k}', lambda k=k: AdvTrainCallback(PGD(eps, steps=k)), k))
    configs.append(('FGSM-RS', lambda: AdvTrainCallback(FGSM(eps, random_start=True)), 1))
    configs.append(('PGD-7 early_stop', lambda: AdvTrainCallback(PGD(eps, steps=7, early_stop=True)), 7))
    if a.rounds: epoch_time(dls, state, None)                     # warm-up (allocator, kernels)
    times = {name: [] for name, *_ in configs}
    for r in range(a.rounds):                                     # interleaved rounds: drift hits all configs alike
        for name, mk, _ in configs: times[name].append(epoch_time(dls, state, mk() if mk else None))
    med = {k: statistics.median(v) for k, v in times.items()} if a.rounds else None
    if med: print(f"threads={torch.get_num_threads()} n_train={len(dls.train_ds)} size={a.size} bs={a.bs} eps={eps:.4f} "
          f"model={'small_cnn(nf=32)' if a.arch == 'small' else a.arch} device={a.device} amp={a.amp} rounds={a.rounds}")
    if med:
        print(f"clean epoch: {med['clean']:.3f}s (median)")
        print(f"{'config':18s} {'ratio':>7s} {'floor 1+2K/3':>13s} {'naive K+1':>10s} {'ratio/floor':>12s}")
        for name, _, k in configs[1:]:
            r, floor = med[name] / med['clean'], 1 + 2 * k / 3
            print(f"{name:18s} {r:7.2f} {floor:13.2f} {k + 1:10.0f} {r / floor:12.2f}")

    if a.robust_epochs:
        eps = a.robust_eps
        print(f"\n{a.robust_epochs} epochs of training from scratch (fit_one_cycle), robust accuracy under PGD-10 eps={eps:.4f}:")
        diffs, tratios = [], []
        for seed in range(1, a.seeds + 1):
            res = {}
            for name, es in (('PGD-7', False), ('PGD-7 early_stop', True)):
                torch.manual_seed(seed)
                init = new_model().state_dict()
                t = TrainTimer(skip_valid=True)
                learn = make_learner(dls, init, [t, AdvTrainCallback(PGD(eps, steps=7, early_stop=es))])
                learn.fit_one_cycle(a.robust_epochs, 3e-3)
                torch.manual_seed(100 + seed)
                ra = robust_accuracy(learn, dls.valid, PGD(eps, steps=10))
                ca = robust_accuracy(learn, dls.valid, PGD(0.))
                res[name] = (sum(t.times), ca, ra)
                print(f"seed {seed} {name:18s} train time {res[name][0]:7.2f}s  clean acc {ca:.3f}  robust acc {ra:.3f}")
            (t0, _, r0), (t1, _, r1) = res['PGD-7'], res['PGD-7 early_stop']
            diffs.append(100 * (r1 - r0)); tratios.append(t1 / t0)
        print(f"early_stop: time ratio {statistics.mean(tratios):.2f} (mean of {a.seeds}), robust accuracy difference "
              f"{statistics.mean(diffs):+.1f} points (per seed: {', '.join(f'{d:+.1f}' for d in diffs)})")

if __name__ == '__main__': main()
