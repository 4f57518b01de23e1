"""`robust-saliency compare` under torchrun with two CPU processes (gloo): both train (fastai's `distrib_ctx`), rank 0
alone scores the models (robust accuracy by AutoAttack) and writes the report, and both ranks end with the same weights."""
import json, os, re, socket, subprocess, sys
from pathlib import Path
import pytest

pytest.importorskip('accelerate', reason="fastai's distributed training needs `accelerate` (in the dev extra)")

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def test_two_processes_one_report_same_weights(tmp_path):
    out = tmp_path/'run'
    # `--` before `compare`: torchrun would read a bare --n as one of its own (abbreviated) options
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(_free_port()),
           '-m', 'robust_saliency.cli', '--', 'compare', '--n', '160', '--size', '24', '--epochs', '1', '--steps', '2',
           '--methods', 'gradient', '--n-eval', '16', '--bs', '32', '--eval-attack', 'autoattack-fast', '--out', str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    j = json.loads((out/'report.json').read_text())
    assert j['complete'] is True and j['config']['world_size'] == 2
    # rank 0 scored both models with AutoAttack (fast), the losses defined for 2 classes, each attack's share kept
    assert j['evaluation']['eval_attack'].startswith('AutoAttack, fast version (apgd-ce, apgd-margin, square;')
    for m in j['models'].values():
        assert list(m['after_attack']) == ['apgd-ce', 'apgd-margin', 'square'] and m['robust_acc'] <= m['clean_acc']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['run']               # written once, nothing left beside it
    assert r.stdout.count('report written to') == 1 and r.stderr.count('writing the report') == 1
    # rank 1 prints its parameters' digest after each fit: the same as rank 0's, which report.json records
    other = dict(re.findall(r'rank 1 of 2: (standard|robust) model trained, parameters ([0-9a-f]{16})', r.stderr))
    assert other == {k: j['models'][k]['params_digest'] for k in ('standard', 'robust')}, (other, r.stderr[-3000:])
    # and the saved weights are the ones trained (the digest of the file's parameters)
    from robust_saliency.cli import load_model, _digest
    assert _digest(load_model(out/'robust.pth').model) == other['robust']
