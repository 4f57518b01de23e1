"""fastai's distributed training with `AdvTrainCallback` (Madry and TRADES): two CPU processes (gloo) train inside `learn.distrib_ctx()`
(fastai's `DistributedTrainer`: the model in DDP through `accelerate`, each rank on its own shard of every epoch's shuffled training set) and
end with identical weights. The robust-accuracy column, scored by `AutoAttack` on each rank's validation shard through the
DDP-wrapped model, equals the same attack run again in that process alone.

Two CPU-only adjustments, both to fastai rather than to this library: `distrib_ctx(sync_bn=False, cpu=True)`, since
`SyncBatchNorm` is GPU-only; and fastai 2.8's `DistributedDL._broadcast` sends the shuffled indices through a CUDA
tensor (written for nccl), so it is replaced here by the same broadcast on a CPU tensor."""
import os, socket, tempfile
from pathlib import Path
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

pytest.importorskip('accelerate', reason="fastai's distributed training needs `accelerate` (in the dev extra)")
WORLD = 2

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _cpu_broadcast(self, t, rank):
    t = torch.tensor(t, dtype=torch.long)
    dist.broadcast(t, rank)
    return t.tolist()

def _worker(rank, port, out, trades):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from fastai.learner import Learner
    from fastai.callback.core import Callback
    from fastai.distributed import DistributedDL, DistributedTrainer
    from robust_saliency.core import small_cnn
    from robust_saliency.data import tensor_dls, SynthData
    from robust_saliency.attacks import PGD, attacked_correctness
    from robust_saliency.callback.adversarial import AdvTrainCallback
    from robust_saliency.robustness import AutoAttack
    from robust_saliency.core import as_space, plain
    DistributedDL._broadcast = _cpu_broadcast

    class Probe(Callback):
        "Records, per training batch, the model's wrapper type and this rank's batch size; the last validation's batches"
        order = 90
        def before_fit(self): self.wrapped, self.bs = [], []
        def before_validate(self): self.valid = []
        def after_batch(self):
            if self.training: self.wrapped.append(type(self.learn.model).__name__); self.bs.append(len(self.yb[0]))
            else: self.valid.append((plain(self.xb[0]).clone(), plain(self.yb[0]).clone()))

    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    try:
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, 2, (256,), generator=g)
        p = (torch.rand(256, 3, 12, 12, generator=g) * 0.5 + y.view(-1, 1, 1, 1) * 0.1 * torch.tensor([1., 0, 0]).view(1, 3, 1, 1))
        perm = torch.randperm(256, generator=g).tolist()
        dls = tensor_dls(SynthData(['neg', 'pos'], images=p, labels=y), bs=32, splits=(perm[64:], perm[:64]),
                         mean=[0.25] * 3, std=[0.15] * 3)
        torch.manual_seed(0)                     # same initial weights on both ranks
        # the robust column scored by AutoAttack (fast, a short Square) on each rank's validation shard
        aa = AutoAttack(4/255, version='fast', n_queries=100)
        cb = AdvTrainCallback(PGD(4/255, steps=2), watchdog='log', trades_beta=trades, robust_metric=True, eval_attack=aa)
        probe = Probe()
        learn = Learner(dls, small_cnn(n_out=2), loss_func=nn.CrossEntropyLoss(), cbs=[cb, probe])
        w0 = [q.detach().clone() for q in learn.model.parameters()]
        torch.manual_seed(100 + rank)            # different random starts per rank: only gradient sync keeps weights equal
        with learn.distrib_ctx(sync_bn=False, cpu=True):
            assert any(isinstance(c, DistributedTrainer) for c in learn.cbs)
            learn.fit(2, 1e-2)
        # the same images attacked again in this process alone, on the unwrapped model
        sp = as_space(dls)
        alone = torch.cat([attacked_correctness(learn.model, x, y, aa, sp) for x, y in probe.valid])
        torch.save(dict(params=[q.detach() for q in learn.model.parameters()], w0=w0, values=learn.recorder.values,
                        names=learn.recorder.metric_names, wrapped=probe.wrapped, bs=probe.bs,
                        model_type=type(learn.model).__name__, alone=alone, n_valid=sum(len(y) for _, y in probe.valid),
                        aa_repr=repr(aa)), Path(out) / f'{rank}.pt')
    finally:
        dist.destroy_process_group()

# TRADES: two forward passes through the DDP model (clean, then adversarial) before one backward
@pytest.mark.parametrize('trades', [None, 1.0], ids=['madry', 'trades'])
def test_fastai_distrib_ctx_two_ranks_identical_weights(trades):
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(_free_port(), out, trades), nprocs=WORLD, join=True)
        r0, r1 = (torch.load(Path(out) / f'{r}.pt', weights_only=False) for r in range(WORLD))
    assert all(torch.equal(a, b) for a, b in zip(r0['params'], r1['params'])), "ranks diverged"
    assert any(not torch.equal(a, b) for a, b in zip(r0['params'], r0['w0'])), "no training happened"
    for r in (r0, r1):
        assert set(r['wrapped']) == {'DistributedDataParallel'}       # trained through fastai's DistributedTrainer
        assert r['model_type'] == 'Sequential'                        # and unwrapped again after the fit
        assert r['bs'] == [32] * 6                                    # each rank: 96 of the 192 training images per epoch
        assert len(r['values']) == 2
        col = r['names'].index('adv_loss') - 1
        assert all(v[col] is not None and v[col] > 0 for v in r['values'])
    wd = r0['names'].index('wd_robust_acc_pgd10') - 1                    # the watchdog's accuracy is averaged over ranks
    assert [v[wd] for v in r0['values']] == [v[wd] for v in r1['values']]
    # AutoAttack through the DDP-wrapped model: each rank's column is what the same attack gives outside DDP
    aa = r0['names'].index('robust_acc_autoattack_fast') - 1
    for r in (r0, r1):
        assert r['n_valid'] == 32                                      # each rank: half of the 64 validation images
        assert r['values'][-1][aa] == pytest.approx(r['alone'].mean().item(), abs=1e-12)
        assert 'binary: apgd-ce, apgd-margin, square' in r['aa_repr']    # the losses defined for 2 classes ran

if __name__ == '__main__':
    for t in (None, 1.0): test_fastai_distrib_ctx_two_ranks_identical_weights(t)
    print('ok')
