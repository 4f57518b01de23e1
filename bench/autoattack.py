"""Strength and speed of the project's APGD / APGD-T / AutoAttack against torchattacks', measured side by side.

Three small CNNs trained here in seconds: one on sklearn's digits (10 classes, PGD-3 adversarial training at L∞ 8/255,
evaluated at 16/255), one on the built-in lesions (2 classes, standard training, evaluated at 2/255) and one on the
built-in chest images (3 findings, multi-label, standard training, evaluated at 2/255). On the same images and models:

- strength: robust accuracy of our APGD-CE-100 (mean over 10 random starts of each) and APGD-T-100 minus
  torchattacks' at the same 100 steps (should be <= +0.5 point), and our standard ensemble minus the per-image union
  of torchattacks' APGD-CE-100 and APGD-T-100 (2 classes: of their APGD-CE, FAB-T and Square, as torchattacks'
  APGD-T needs 4 classes; multi-label: per finding, the model seen as a 2-class one, as torchattacks needs);
- speed: time per APGD iteration over time per PGD step (the same full batch, nothing broken; the time of 50
  iterations less that of 10, so the passes around them do not count), and the whole
  ensemble's time over torchattacks' APGD-CE-100 + APGD-T-100, with Square's share of it (its queries are forwards
  of every image the gradient attacks left, so on a robust model they alone can cost as much as the reference), and
  the same ratio at larger eps, where fewer images are left to Square; and the floor of that ratio, the least time
  any implementation needs for the images no attack breaks (each takes 1000 forward + input-gradient backward passes
  and 5000 forwards), measured on the same images.

torchattacks' own AutoAttack is run on the 2-class model only to report whether it crashes.

Run (single thread, under the shared lock):
    flock /tmp/heavy.lock env OMP_NUM_THREADS=1 .venv/bin/python bench/autoattack.py
"""
import argparse, time, warnings
import torch
from torch import nn
import torchattacks
from robust_saliency.core import small_cnn, InputSpace, fold_bn
from robust_saliency.data import lesion_dls, chest_dls
from robust_saliency.attacks import PGD
from robust_saliency.robustness import APGD, APGDT, AutoAttack, correctness

class Normed(nn.Module):
    "The model with its normalisation inside: torchattacks attacks pixel images"
    def __init__(self, m, sp): super().__init__(); self.m, self.sp = m, sp
    def forward(self, p): return self.m(self.sp.to_model(p))

def train(net, xs, ys, sp, epochs, adv_eps=None, bs=64, lr=3e-3, loss=nn.functional.cross_entropy):
    "A few epochs of Adam, with PGD-3 adversarial examples when `adv_eps` is given"
    opt = torch.optim.Adam(net.parameters(), lr)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xs), generator=g)
        for i in range(0, len(xs), bs):
            b = perm[i:i + bs]
            xb = sp.to_model(xs[b])
            if adv_eps: xb = PGD(adv_eps, steps=3)(net, xb, ys[b], sp)
            l = loss(net(xb), ys[b])
            opt.zero_grad(); l.backward(); opt.step()
    return net.eval()

def digits(n_valid):
    from sklearn.datasets import load_digits
    X, Y = load_digits(return_X_y=True)
    X = nn.functional.interpolate(torch.tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16, size=16, mode='bilinear')
    Y = torch.tensor(Y)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    tr, va = perm[:1500], perm[1500:1500 + n_valid]
    sp = InputSpace([0.3], [0.4])
    torch.manual_seed(0)
    net = train(small_cnn(n_in=1, n_out=10, nf=16), X[tr], Y[tr], sp, epochs=6, adv_eps=8/255)
    return net, sp, X[va], Y[va]

def pixel_splits(dls):
    "Training and validation images in pixel space, with their labels"
    sp = InputSpace.from_dls(dls)
    def split(dl):
        xs, ys = zip(*[(sp.to_pixel(b[0].as_subclass(torch.Tensor)), b[1].as_subclass(torch.Tensor)) for b in dl])
        return torch.cat(xs).clamp(0, 1), torch.cat(ys)
    return sp, split(dls.train), split(dls.valid)

def lesions(n_valid):
    sp, (xt, yt), (xv, yv) = pixel_splits(lesion_dls(n=1280, size=32, bs=64, seed=0, device='cpu'))
    torch.manual_seed(0)
    net = train(small_cnn(n_out=2, nf=16), xt, yt, sp, epochs=6, lr=3e-3)
    return net, sp, xv[:n_valid], yv[:n_valid]

def chest(n_valid):
    sp, (xt, yt), (xv, yv) = pixel_splits(chest_dls(n=1280, size=32, bs=64, seed=0, device='cpu'))
    torch.manual_seed(0)
    net = train(small_cnn(n_in=xt.shape[1], n_out=yt.shape[1], nf=16), xt, yt.float(), sp, epochs=6,
                loss=nn.functional.binary_cross_entropy_with_logits)
    return net, sp, xv[:n_valid], yv[:n_valid].float()

class OneLabel(nn.Module):
    "Label `j` of a multi-label model as a 2-class one (logits 0 and z_j): torchattacks attacks one label at a time"
    def __init__(self, m, j): super().__init__(); self.m, self.j = m, j
    def forward(self, x): z = self.m(x)[:, self.j]; return torch.stack([torch.zeros_like(z), z], 1)

def timed(f):
    t = time.perf_counter(); r = f(); return r, time.perf_counter() - t

def ours_correct(net, sp, attack, xv, yv):
    r, t = timed(lambda: attack.run(net, sp.to_model(xv), yv, sp))
    with torch.no_grad(): c = correctness(net(r['x_adv']), yv)   # re-evaluated on the model, as robust_accuracy does
    return c, t, r

def theirs_correct(net, sp, make, xv, yv):
    tn = Normed(net, sp).eval()
    try: xa, t = timed(lambda: make(tn)(xv, yv))
    except Exception as e: return None, 0., f'{type(e).__name__}: {e}'
    with torch.no_grad(): return correctness(net(sp.to_model(xa)), yv), t, ''

def pct(c): return 100 * c.float().mean().item()

def floor_time(net, sp, xs, ys, iters, queries):
    "`iters` forward + input-gradient backward passes and `queries` forwards of `xs`, each the fastest of 3"
    # what images no attack breaks cost any implementation of the ensemble: APGD's iterations and Square's queries
    x = sp.to_model(xs)
    fn = fold_bn(net, x)
    def fwd():
        with torch.no_grad(): fn(x)
    def fwd_bwd():
        xg = x.clone().requires_grad_()
        torch.autograd.grad(nn.functional.cross_entropy(fn(xg), ys), xg)
    fwd(); fwd_bwd()
    t_f, t_fb = (min(timed(lambda: [f() for _ in range(20)])[1] / 20 for _ in range(3)) for f in (fwd, fwd_bwd))
    return iters * t_fb + queries * t_f, t_fb, t_f

def floor_line(net, sp, xv, yv, survived, aa, ref, n_classes):
    "`floor_time` of the images no attack broke over the reference time `ref`: no ensemble ratio can be lower"
    atks = [a for _, a in aa.attacks_for(aa.task, n_classes)]
    iters = sum(a.steps * a.restarts * getattr(a, 'n_targets', 1) for a in atks if isinstance(a, APGD))
    t, t_fb, t_f = floor_time(net, sp, xv[survived], yv[survived], iters, aa.n_queries)
    return (f'floor: the {int(survived.sum())} images no attack breaks take {iters} APGD iterations '
            f'(forward + input-gradient backward of all of them {1e3 * t_fb:.2f} ms) and {aa.n_queries} '
            f'Square queries (a forward, {1e3 * t_f:.2f} ms) each: {t:.1f}s = {t / ref:.2f} of the reference')

def bench(name, net, sp, xv, yv, eps, n_classes):
    print(f'\n## {name}: {len(xv)} images, L∞ eps={eps * 255:.0f}/255')
    with torch.no_grad(): clean = correctness(net(sp.to_model(xv)), yv)
    print(f'clean accuracy {pct(clean):.1f}%')
    ta_union, ta_time, ta_all = torch.ones_like(clean), 0., 0.
    xa = PGD(eps, steps=10)(net, sp.to_model(xv), yv, sp)
    with torch.no_grad(): pgd10 = correctness(net(xa), yv)
    print(f'project PGD-10 (the old evaluation): {pct(pgd10):.1f}%')
    cmp = [('APGD-CE-100', APGD(eps, steps=100, loss='ce'),
            lambda m: torchattacks.APGD(m, eps=eps, steps=100, loss='ce', seed=0))]
    if n_classes >= 4:
        cmp.append(('APGD-T-100', APGDT(eps, steps=100, n_targets=min(9, n_classes - 1)),
                    lambda m: torchattacks.APGDT(m, eps=eps, steps=100, n_classes=n_classes, seed=0)))
    else:
        cmp.append(('APGD-T-100', None, lambda m: torchattacks.APGDT(m, eps=eps, steps=100, n_classes=n_classes, seed=0)))
        cmp.append(('FAB-T', None, lambda m: torchattacks.FAB(m, norm='Linf', eps=eps, steps=100, n_classes=n_classes,
                                                              multi_targeted=True, seed=0)))
        cmp.append(('Square-5000', None, lambda m: torchattacks.Square(m, norm='Linf', eps=eps, n_queries=5000, seed=0)))
    # APGD-CE from 10 random starts: one run differs from another by a few borderline images either way, so
    # parity is judged on the mean over seeds
    seeds = range(10)
    c_t = [theirs_correct(net, sp, lambda m: torchattacks.APGD(m, eps=eps, steps=100, loss='ce', seed=s), xv, yv)[0] for s in seeds]
    c_o = [ours_correct(net, sp, APGD(eps, steps=100, loss='ce', seed=s), xv, yv)[0] for s in seeds]
    mt, mo = (sum(pct(c) for c in cs) / len(cs) for cs in (c_t, c_o))
    fmt = lambda cs: ', '.join(f'{pct(c):.1f}' for c in cs)
    print(f"APGD-CE-100 over seeds 0-{len(seeds) - 1}: torchattacks {fmt(c_t)} (mean {mt:.2f}%) | "
          f"ours {fmt(c_o)} (mean {mo:.2f}%) | mean ours - theirs {mo - mt:+.2f} points (<= +0.5: {mo - mt <= 0.5})")
    for label, ours, make in cmp:
        c_t, t_t, err = theirs_correct(net, sp, make, xv, yv)
        if c_t is not None:
            ta_union, ta_all = torch.minimum(ta_union, c_t), ta_all + t_t
            if label in ('APGD-CE-100', 'APGD-T-100'): ta_time += t_t
        line = f'{label:12s} torchattacks ' + (f'{pct(c_t):5.1f}% ({t_t:6.1f}s)' if c_t is not None else f'crashed ({err[:90]})')
        if ours is not None:
            c_o, t_o, _ = ours_correct(net, sp, ours, xv, yv)
            line += f' | ours {pct(c_o):5.1f}% ({t_o:6.1f}s)'
            if c_t is not None:
                d = pct(c_o) - pct(c_t)
                # APGD-CE's parity is the seed mean above; one seed each is only a spot check
                line += f' | ours - theirs {d:+.1f} points' + (
                    ' (seed 0 only)' if label == 'APGD-CE-100' else f' (<= +0.5: {d <= 0.5})')
                line += f', time ratio {t_o / t_t:.2f}'
        print(line)
    aa = AutoAttack(eps, version='standard')
    c_aa, t_aa, r = ours_correct(net, sp, aa, xv, yv)
    after = ', '.join(f'{k} {100 * v.float().mean().item():.1f}%' for k, v in r['after'].items())
    print(f'ours AutoAttack standard: {pct(c_aa):.1f}% in {t_aa:.1f}s ({aa.task}: after {after})')
    union_names = 'APGD-CE-100 + APGD-T-100' if n_classes >= 4 else 'APGD-CE-100 + FAB-T + Square-5000 (those that ran)'
    print(f'torchattacks per-image union of {union_names}: {pct(ta_union):.1f}% | ensemble - union {pct(c_aa) - pct(ta_union):+.1f} '
          f'points (<= +0.5: {pct(c_aa) - pct(ta_union) <= 0.5})')
    if n_classes >= 4:
        print(f'time: ensemble / torchattacks APGD-CE-100 + APGD-T-100 = {t_aa:.1f}s / {ta_time:.1f}s = {t_aa / ta_time:.2f}')
        # where the time goes: Square alone on the images the gradient attacks left (the floor line below
        # times one forward of the images no attack breaks)
        left = r['after'][r['attacks'][-2]] > 0
        sq = aa.attacks_for(aa.task, n_classes)[-1][1]
        _, t_sq, _ = ours_correct(net, sp, sq, xv[left], yv[left])
        print(f'  of which Square-{sq.n_queries} on the {int(left.sum())} images left: {t_sq:.1f}s '
              f'({1e3 * t_sq / sq.n_queries:.2f} ms a query), {t_sq / ta_time:.2f} of torchattacks '
              f'APGD-CE-100 + APGD-T-100 alone; the rest of the ensemble {(t_aa - t_sq) / ta_time:.2f}')
        print('  ' + floor_line(net, sp, xv, yv, c_aa > 0, aa, ta_time, n_classes))
    else: print(f'time: ensemble / torchattacks APGD-CE-100 + FAB-T + Square-5000 = {t_aa:.1f}s / {ta_all:.1f}s = {t_aa / ta_all:.2f}')
    if n_classes < 4:
        _, _, err = theirs_correct(net, sp, lambda m: torchattacks.AutoAttack(m, norm='Linf', eps=eps, version='standard',
                                                                             n_classes=n_classes, seed=0), xv[:16], yv[:16])
        print(f"torchattacks AutoAttack on this {n_classes}-class model: {'crashed: ' + err[:100] if err else 'ran'}")
    # per-iteration cost: a budget too small to break anything keeps the whole batch in every iteration. One
    # iteration's cost is the time of 50 less that of 10, over 40: the passes before the first iteration and
    # after the last (clean check, start point, final check) are the same for any number of steps
    tiny, lo, hi = 0.05 / 255, 10, 50
    x = sp.to_model(xv)
    runs = {'APGD': lambda s: timed(lambda: APGD(tiny, steps=s)(net, x, yv, sp))[1],
            'PGD': lambda s: timed(lambda: PGD(tiny, steps=s)(net, x, yv, sp))[1],
            'torchattacks APGD': lambda s: theirs_correct(
                net, sp, lambda m: torchattacks.APGD(m, eps=tiny, steps=s, loss='ce', seed=0), xv, yv)[1]}
    for f in runs.values(): f(2)                        # warm-up (folding is traced once)
    # the fastest of 3 alternating runs each: other processes only ever add time
    ts = [{(k, s): f(s) for k, f in runs.items() for s in (lo, hi)} for _ in range(3)]
    it = {k: (min(t[k, hi] for t in ts) - min(t[k, lo] for t in ts)) / (hi - lo) for k in runs}
    whole = {k: min(t[k, hi] for t in ts) / hi for k in runs}
    c = APGD(tiny, steps=2).run(net, x, yv, sp)['correct']
    print(f"per iteration ({int(c.sum())} of {len(x)} images attacked, none broken): " +
          ', '.join(f'{k} {1e3 * v:.1f} ms' for k, v in it.items()) +
          f" | APGD / PGD step = {it['APGD'] / it['PGD']:.2f}, torchattacks APGD / PGD step = "
          f"{it['torchattacks APGD'] / it['PGD']:.2f} (whole {hi}-step runs, setup included: "
          f"{whole['APGD'] / whole['PGD']:.2f} and {whole['torchattacks APGD'] / whole['PGD']:.2f})")

def time_at(net, sp, xv, yv, eps, n_classes):
    "The ensemble's time over torchattacks' APGD-CE-100 + APGD-T-100 at another eps, and the share left to Square"
    ts = [theirs_correct(net, sp, mk, xv, yv)[1] for mk in (
        lambda m: torchattacks.APGD(m, eps=eps, steps=100, loss='ce', seed=0),
        lambda m: torchattacks.APGDT(m, eps=eps, steps=100, n_classes=n_classes, seed=0))]
    aa = AutoAttack(eps)
    c, t, r = ours_correct(net, sp, aa, xv, yv)
    left = r['after'][r['attacks'][-2]].float().mean().item()
    print(f'L∞ eps={eps * 255:.0f}/255: {100 * left:.1f}% left to Square, robust accuracy {pct(c):.1f}%; '
          f'time: ensemble / torchattacks APGD-CE-100 + APGD-T-100 = {t:.1f}s / {sum(ts):.1f}s = {t / sum(ts):.2f}')
    print('  ' + floor_line(net, sp, xv, yv, c > 0, aa, sum(ts), n_classes))

def bench_multilabel(net, sp, xv, yv, eps):
    "Per label (the model seen as one 2-class model per finding): ours against torchattacks' union; then jointly"
    L = yv.shape[1]
    print(f'\n## built-in chest, {L} findings, multi-label, standard training: {len(xv)} images, L∞ eps={eps * 255:.0f}/255')
    with torch.no_grad(): print(f'clean label accuracy {pct(correctness(net(sp.to_model(xv)), yv)):.1f}%')
    ta = [('APGD-CE-100', lambda m: torchattacks.APGD(m, eps=eps, steps=100, loss='ce', seed=0)),
          ('FAB-T', lambda m: torchattacks.FAB(m, norm='Linf', eps=eps, steps=100, n_classes=2, multi_targeted=True, seed=0)),
          ('Square-5000', lambda m: torchattacks.Square(m, norm='Linf', eps=eps, n_queries=5000, seed=0))]
    union, ours, t_ta, t_o = torch.ones_like(yv), torch.ones_like(yv), 0., 0.
    for j in range(L):
        yj, mj = yv[:, j].long(), OneLabel(net, j).eval()
        for _, make in ta:
            c, t, err = theirs_correct(mj, sp, make, xv, yj)
            if c is None: raise RuntimeError(err)
            union[:, j], t_ta = torch.minimum(union[:, j], c), t_ta + t
        c, t, _ = ours_correct(mj, sp, AutoAttack(eps), xv, yj)
        ours[:, j], t_o = c, t_o + t
    d = pct(ours) - pct(union)
    print(f'per label: ours AutoAttack standard {pct(ours):.1f}% ({t_o:.1f}s) | torchattacks per-image union of '
          f'{" + ".join(n for n, _ in ta)} {pct(union):.1f}% ({t_ta:.1f}s) | ours - union {d:+.1f} points '
          f'(<= +0.5: {d <= 0.5}), time ratio {t_o / t_ta:.2f}')
    aa = AutoAttack(eps)
    c, t, r = ours_correct(net, sp, aa, xv, yv)
    print(f'jointly (one perturbation for all findings, the threat robust accuracy means): ours {pct(c):.1f}% in {t:.1f}s '
          f'({aa.task}: after ' + ', '.join(f'{k} {pct(v):.1f}%' for k, v in r['after'].items()) +
          f'); per-label attacks can only do better, {pct(union):.1f}%')

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n-digits', type=int, default=200, help='digits validation images')
    ap.add_argument('--n-lesions', type=int, default=128, help='lesion validation images')
    ap.add_argument('--n-chest', type=int, default=64, help='chest validation images')
    a = ap.parse_args()
    warnings.filterwarnings('ignore')
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.perf_counter()
    net, sp, xv, yv = digits(a.n_digits)
    bench('sklearn digits, 10 classes, PGD-3 trained at 8/255', net, sp, xv, yv, 16/255, 10)
    # Square's cost grows with the images the gradient attacks leave: the same model at a larger eps
    for e in (20/255, 24/255): time_at(net, sp, xv, yv, e, 10)
    net, sp, xv, yv = lesions(a.n_lesions)
    bench('built-in lesions, 2 classes, standard training', net, sp, xv, yv, 2/255, 2)
    net, sp, xv, yv = chest(a.n_chest)
    bench_multilabel(net, sp, xv, yv, 2/255)
    print(f'\ntotal {time.perf_counter() - t0:.0f}s')

if __name__ == '__main__': main()
