"`robust-saliency compare` as a user runs it: a process, an output folder, clear errors."
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch

BIN = Path(sys.executable).parent/'robust-saliency'

def run(*args, cwd=None):
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, '-c', 'import sys; from robust_saliency.cli import main; sys.exit(main())']
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=cwd, env={**os.environ, 'OMP_NUM_THREADS': '1'})

SMALL = ['--n', '160', '--size', '24', '--epochs', '1', '--steps', '2', '--methods', 'gradient,gradcam', '--n-eval', '32']

def test_compare_writes_report(tmp_path):
    r = run('compare', *SMALL, '--out', str(tmp_path/'rep'))
    assert r.returncode == 0, r.stderr[-3000:]
    files = {p.name for p in (tmp_path/'rep').iterdir()}
    assert {'report.json', 'report.md', 'saliency_grid.png', 'metrics.png', 'standard.pth', 'robust.pth'} <= files
    j = json.loads((tmp_path/'rep'/'report.json').read_text())
    assert j['config']['data'] == 'lesions' and j['config']['methods'] == ['gradient', 'gradcam']
    for k in ('standard', 'robust'):
        M = j['models'][k]
        assert 0 <= M['clean_acc'] <= 1 and 0 <= M['robust_acc'] <= 1
        for meth in ('gradient', 'gradcam'):
            for metric in ('gini', 'entropy', 'pointing_game', 'mask_auc', 'deletion_auc', 'insertion_auc'):
                assert isinstance(M['methods'][meth][metric], float)
    sd = torch.load(tmp_path/'rep'/'robust.pth', weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in sd.values())
    md = (tmp_path/'rep'/'report.md').read_text()
    assert '| robust |' in md and 'gini' in md
    # an existing output folder is never overwritten unless asked
    r = run('compare', *SMALL, '--out', str(tmp_path/'rep'))
    assert r.returncode == 2 and '--overwrite' in r.stderr

def test_compare_chest(tmp_path):
    r = run('compare', '--data', 'chest', *SMALL, '--out', str(tmp_path/'c'))
    assert r.returncode == 0, r.stderr[-3000:]
    M = json.loads((tmp_path/'c'/'report.json').read_text())['models']['robust']
    assert 'mask_auc' in M['methods']['gradcam']

@pytest.mark.parametrize('args,msg', [
    (['--data', '/no/such/folder'], 'neither'),
    (['--methods', 'gradient,telepathy'], 'unknown saliency method'),
    (['--arch', 'resnet9000'], '--arch'),
    (['--attack', 'cw'], 'invalid choice'),
    (['--norm', 'l3'], 'invalid choice'),
    (['--bs', '128'], 'fewer than one batch'),
])
def test_compare_errors(tmp_path, args, msg):
    r = run('compare', '--out', str(tmp_path/'x'), '--epochs', '1', '--n', '100', '--bs', '16', *args)
    assert r.returncode == 2 and msg in r.stderr, r.stderr[-2000:]
    assert not (tmp_path/'x').exists()
