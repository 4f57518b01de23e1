"""Two CPU processes (gloo) train with `AdvTrainCallback` under DistributedDataParallel and end with identical weights.

fastai's own `DistributedTrainer` needs `accelerate` (`fastai.distributed` does not even import without it) and its
`DistributedDL` broadcasts through CUDA tensors, so this test uses the same two ingredients without them: the model
wrapped in DDP by a callback, and each rank training on its own shard of the training set."""
import os, socket, tempfile
from pathlib import Path
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

WORLD = 2

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _worker(rank, port, out):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from fastai.learner import Learner
    from fastai.callback.core import Callback
    from robust_saliency.core import small_cnn
    from robust_saliency.data import tensor_dls, SynthData
    from robust_saliency.attacks import PGD
    from robust_saliency.callback.adversarial import AdvTrainCallback

    class GlooDDP(Callback):
        "fastai's DistributedTrainer without accelerate/CUDA: the model wrapped in DDP during fit"
        order = 11
        def before_fit(self): self.learn.model = nn.parallel.DistributedDataParallel(self.model)
        def after_fit(self): self.learn.model = self.learn.model.module

    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    try:
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, 2, (256,), generator=g)
        p = (torch.rand(256, 3, 12, 12, generator=g) * 0.5 + y.view(-1, 1, 1, 1) * 0.1 * torch.tensor([1., 0, 0]).view(1, 3, 1, 1))
        perm = torch.randperm(256, generator=g).tolist()
        train, valid = perm[64:][rank::WORLD], perm[:64]               # this rank's shard of the training set
        dls = tensor_dls(SynthData(['neg', 'pos'], images=p, labels=y), bs=32, splits=(train, valid),
                         mean=[0.25, 0.25, 0.25], std=[0.15, 0.15, 0.15])
        torch.manual_seed(0)                     # same initial weights on both ranks
        cb = AdvTrainCallback(PGD(4/255, steps=2), watchdog='log')
        learn = Learner(dls, small_cnn(n_out=2), loss_func=nn.CrossEntropyLoss(), cbs=[cb, GlooDDP()])
        learn.remove_cb(learn.progress)
        w0 = [q.detach().clone() for q in learn.model.parameters()]
        torch.manual_seed(100 + rank)            # different random starts per rank: only gradient sync keeps weights equal
        learn.fit(2, 1e-2)
        vals = learn.recorder.values
        torch.save(dict(params=[q.detach() for q in learn.model.parameters()], w0=w0, values=vals,
                        adv_loss_col=learn.recorder.metric_names.index('adv_loss') - 1), Path(out) / f'{rank}.pt')
    finally:
        dist.destroy_process_group()

def test_ddp_two_ranks_identical_weights():
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
        r0, r1 = (torch.load(Path(out) / f'{r}.pt', weights_only=False) for r in range(WORLD))
    assert all(torch.equal(a, b) for a, b in zip(r0['params'], r1['params'])), "ranks diverged"
    assert any(not torch.equal(a, b) for a, b in zip(r0['params'], r0['w0'])), "no training happened"
    for r in (r0, r1):
        assert len(r['values']) == 2
        assert all(v[r['adv_loss_col']] is not None and v[r['adv_loss_col']] > 0 for v in r['values'])

if __name__ == '__main__':
    test_ddp_two_ranks_identical_weights(); print('ok')
