"`robust-saliency compare` as a user runs it: a process, an output folder, clear errors."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from conftest import write_cxr

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
    (['--n-eval', '0'], '--n-eval 0'),
])
def test_compare_errors(tmp_path, args, msg):
    r = run('compare', '--out', str(tmp_path/'x'), '--epochs', '1', '--n', '100', '--bs', '16', *args)
    assert r.returncode == 2 and msg in r.stderr, r.stderr[-2000:]
    assert 'Traceback' not in r.stderr and 'training the' not in r.stderr     # one line, before any training
    assert not (tmp_path/'x').exists()

def test_compare_out_is_a_file(tmp_path):
    f = tmp_path/'afile'; f.write_text('keep me')
    for out in (f, f/'sub'):
        r = run('compare', '--out', str(out), '--epochs', '1', '--n', '100', '--bs', '16')
        assert r.returncode == 2 and 'is a file, not a folder' in r.stderr and '--out' in r.stderr, r.stderr[-2000:]
        assert 'Traceback' not in r.stderr and 'training the' not in r.stderr
    assert f.read_text() == 'keep me'

def test_compare_robust_acc_scored_like_clean(tmp_path):
    # multi-label: with eps=0 the attack is the identity, so robust accuracy (all validation images) equals clean accuracy
    r = run('compare', '--data', 'chest', *SMALL, '--eps', '0', '--n-eval', '64', '--out', str(tmp_path/'c'))
    assert r.returncode == 0, r.stderr[-3000:]
    for M in json.loads((tmp_path/'c'/'report.json').read_text())['models'].values():
        assert M['robust_acc'] == pytest.approx(M['clean_acc'], abs=1e-6)

LABELS = ['No Finding', 'Effusion', 'Nodule|Mass', 'Cardiomegaly', 'Effusion|Cardiomegaly']

def cxr(d, n=30):
    "A ChestX-ray14-format folder of `n` images, one patient each, and no box"
    return write_cxr(d, [LABELS[i % 5] for i in range(n)], size=32)

CXR = ['--size', '16', '--bs', '8', '--epochs', '1', '--steps', '1', '--methods', 'gradient']

def test_compare_chestxray14_finds_boxed_images(tmp_path):
    # boxes are rare: the one boxed validation image lies beyond the first --n-eval ones and must still be found
    from robust_saliency.data import chestxray14_dls, annotations
    d = cxr(tmp_path/'cxr')
    va = annotations(chestxray14_dls(d, size=16, bs=8))
    k = max(i for i in range(len(va)) if va.labels[i].any())
    assert k >= 2
    name = va.items[k].name
    finding = next(l for l in LABELS if l in pd.read_csv(d/'Data_Entry_2017.csv').set_index('Image Index').loc[name, 'Finding Labels'].split('|'))
    pd.DataFrame([{'Image Index': name, 'Finding Label': finding, 'Bbox [x': 256, 'y': 256, 'w': 512, 'h]': 256}]).to_csv(d/'BBox_List_2017.csv', index=False)
    r = run('compare', '--data', str(d), *CXR, '--n-eval', '2', '--out', str(tmp_path/'r'))
    assert r.returncode == 0, r.stderr[-3000:]
    j = json.loads((tmp_path/'r'/'report.json').read_text())
    assert j['notes'] == [] and 'pointing_game' in j['models']['robust']['methods']['gradient']

def test_compare_chestxray14_without_boxes(tmp_path):
    # no validation image has a box: the report falls back to images with a finding, without localisation, and says so
    r = run('compare', '--data', str(cxr(tmp_path/'cxr')), *CXR, '--eps', '0', '--n-eval', '64', '--out', str(tmp_path/'r'))
    assert r.returncode == 0, r.stderr[-3000:]
    j = json.loads((tmp_path/'r'/'report.json').read_text())
    assert len(j['notes']) == 1 and 'bounding box' in j['notes'][0] and 'note: no validation image' in r.stderr
    assert 'Note: no validation image' in (tmp_path/'r'/'report.md').read_text()
    for M in j['models'].values():
        assert 'pointing_game' not in M['methods']['gradient'] and 'gini' in M['methods']['gradient']
        assert M['robust_acc'] == pytest.approx(M['clean_acc'], abs=1e-6)
