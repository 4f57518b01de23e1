"`robust-saliency compare` as a user runs it: a process, an output folder, clear errors, interruptions survived."
import json, os, re, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from conftest import write_cxr

BIN = Path(sys.executable).parent/'robust-saliency'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}

def cmd(*args):
    return ([str(BIN)] if BIN.exists() else [sys.executable, '-m', 'robust_saliency.cli']) + [str(a) for a in args]

def run(*args, cwd=None, env=None):
    return subprocess.run(cmd(*args), capture_output=True, text=True, cwd=cwd, env={**ENV, **(env or {})})

# PGD evaluation keeps these runs short; test_autoattack_evaluation runs the default's fast version
SMALL = ['--n', '160', '--size', '24', '--epochs', '1', '--steps', '2', '--methods', 'gradient,gradcam', '--n-eval', '32',
         '--eval-attack', 'pgd']

def report(d): return json.loads((Path(d)/'report.json').read_text())

def partial(out): return Path(out).parent/f'.{Path(out).name}.partial'

@pytest.fixture(scope='module')
def small_run(tmp_path_factory):
    "One complete small run, shared by the tests that only read its outputs"
    out = tmp_path_factory.mktemp('small')/'rep'
    r = run('compare', *SMALL, '--out', out)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r

def test_compare_writes_report(small_run, tmp_path):
    out, r = small_run
    files = {p.name for p in out.iterdir()}
    assert {'report.json', 'report.md', 'saliency_grid.png', 'metrics.png', 'standard.pth', 'robust.pth'} <= files
    assert not partial(out).exists()
    j = report(out)
    assert j['complete'] is True
    assert j['config']['data'] == 'lesions' and j['config']['methods'] == ['gradient', 'gradcam']
    for k in ('standard', 'robust'):
        M = j['models'][k]
        assert 0 <= M['clean_acc'] <= 1 and 0 <= M['robust_acc'] <= 1
        assert M['n'] == 32 and M['clean_acc_ci95'][0] <= M['clean_acc'] <= M['clean_acc_ci95'][1]   # the same 32 images
        for meth in ('gradient', 'gradcam'):
            for metric in ('gini', 'entropy', 'pointing_game', 'mask_auc', 'deletion_auc', 'insertion_auc'):
                assert isinstance(M['methods'][meth][metric], float)
    # reusable: classes in order, normalisation, sizes, versions, wall time
    d = j['data']
    assert d['classes'] == ['benign', 'malignant'] and (d['n_train'], d['n_valid']) == (128, 32)
    assert len(d['normalization']['mean']) == 3 and {'torch', 'fastai', 'robust_saliency'} <= set(j['versions'])
    assert j['seconds'] > 0 and j['config']['epochs'] == 1
    sd = torch.load(out/'robust.pth', weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in sd['state_dict'].values()) and sd['classes'] == ['benign', 'malignant']
    md = (out/'report.md').read_text()
    assert '| robust |' in md and 'gini' in md and 'same 32 validation images' in md
    # the result lines are lines of their own, on stdout
    lines = r.stdout.splitlines()
    assert any(l.startswith('standard  clean acc ') for l in lines) and any(l.startswith('robust    clean acc ') for l in lines)
    assert lines[-1].startswith('report written to ')
    # an existing output folder is never overwritten unless asked
    r = run('compare', *SMALL, '--out', out)
    assert r.returncode == 2 and '--overwrite' in r.stderr

def test_logs_without_a_terminal(small_run):
    _, r = small_run
    log = r.stdout + r.stderr
    assert '\r' not in log and max(map(len, log.splitlines())) < 600       # no progress-bar frames
    assert 'standard epoch 1/1: train_loss' in r.stderr and 'robust model trained in' in r.stderr
    assert 'Traceback' not in r.stderr and 'Warning:' not in r.stderr     # no Python warnings either

def test_quiet(tmp_path):
    r = run('compare', *SMALL, '--methods', 'gradient', '--quiet', '--out', tmp_path/'q')
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(l.startswith('warning: ') for l in r.stderr.splitlines()), r.stderr
    assert r.stdout.splitlines()[0].startswith('standard  clean acc')

def test_help_shows_every_default():
    r = run('compare', '--help')
    assert r.returncode == 0
    blocks = {}                                  # option -> its help text (argparse starts each at a 2-space indent)
    for l in r.stdout.splitlines():
        m = re.match(r'^  (?:-\w, )?--([\w-]+)', l)
        if m: opt = m[1]; blocks[opt] = l
        elif l.startswith('   ') and blocks: blocks[opt] += ' ' + l.strip()
    assert {'data', 'arch', 'epochs', 'eps', 'methods', 'ig-baseline', 'resume', 'check', 'classes', 'no-balance', 'quiet'} <= set(blocks)
    missing = [o for o, b in blocks.items() if 'default' not in b and o != 'help']
    assert not missing, missing

def test_compare_chest(tmp_path):
    r = run('compare', '--data', 'chest', *SMALL, '--out', tmp_path/'c')
    assert r.returncode == 0, r.stderr[-3000:]
    j = report(tmp_path/'c')
    M = j['models']['robust']
    assert 'mask_auc' in M['methods']['gradcam']
    # multi-label: per-finding AUROC and its mean are the headline
    for m in j['models'].values():
        assert set(m['clean_auroc_per_finding']) | set(m['findings_left_out']) == set(j['data']['classes'])
        assert 0 <= m['clean_auroc'] <= 1 and len(m['clean_auroc_ci95']) == 2 and 'robust_auroc' in m
    assert 'mean AUROC' in (tmp_path/'c'/'report.md').read_text() and 'mean AUROC' in r.stdout

# each bad setting: exit 2, one line naming the option, no traceback, before any training, --out not created
BAD = [
    (['--data', '/no/such/folder'], 'neither'),
    (['--methods', 'gradient,telepathy'], 'unknown saliency method'),
    (['--methods', 'ig(white)'], "IG's baseline"),
    (['--metrics', 'gini,sharpness'], "unknown metric 'sharpness'"),
    (['--eval-attack', 'fab'], '--eval-attack'),
    (['--arch', 'resnet9000'], 'pip install timm'),
    (['--attack', 'cw'], 'invalid choice'),
    (['--norm', 'l3'], 'invalid choice'),
    (['--bs', '128'], 'fewer than one batch'),
    (['--bs', '0'], '--bs 0'),
    (['--n-eval', '0'], '--n-eval 0'),
    (['--epochs', '0'], '--epochs 0'),
    (['--epochs', '-1'], '--epochs -1'),
    (['--epochs', 'five'], 'invalid int value'),
    (['--lr', '-1'], '--lr -1'),
    (['--eps', '0'], '--eps 0'),
    (['--eps', '-0.1'], '--eps -0.1'),
    (['--size', '4'], '--size 4'),
    (['--steps', '0'], '--steps 0'),
    (['--device', 'gpu'], "'cuda'"),
    (['--device', 'mps'], '--device mps'),
    (['--device', 'cuda:x'], '--device'),
    (['--classes', 'nv,mel'], '--classes applies to data folders'),
    (['--check', 'full'], '--check applies to data folders'),
    (['--no-balance'], '--no-balance applies'),
    (['--resume'], 'no interrupted run'),
    (['--resume', '--overwrite'], 'only one of them'),
]
if not torch.cuda.is_available(): BAD.append((['--device', 'cuda'], '--device cuda'))

@pytest.mark.parametrize('args,msg', BAD, ids=[' '.join(a) for a, _ in BAD])
def test_compare_errors(tmp_path, args, msg):
    t = time.time()
    r = run('compare', '--out', tmp_path/'x', '--epochs', '1', '--n', '100', '--bs', '16', *args)
    dt = time.time() - t
    assert r.returncode == 2 and msg in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith('robust-saliency: error: '), r.stderr
    assert 'Traceback' not in r.stderr and 'training the' not in r.stderr     # one line, before any training
    assert not (tmp_path/'x').exists() and not partial(tmp_path/'x').exists()
    assert dt < 5, f"{dt:.1f} s"     # these are refused before torch is imported

def test_arch_too_big_for_size(tmp_path):
    # needs the architecture itself (built on the meta device): still before any data or training
    r = run('compare', '--out', tmp_path/'x', '--arch', 'vit_b_16', '--size', '32')
    assert r.returncode == 2 and '--arch vit_b_16 does not run on --size 32' in r.stderr and len(r.stderr.splitlines()) == 1
    assert not (tmp_path/'x').exists()

def test_compare_out_is_a_file(tmp_path):
    f = tmp_path/'afile'; f.write_text('keep me')
    for out in (f, f/'sub'):
        r = run('compare', '--out', out, '--epochs', '1', '--n', '100', '--bs', '16', '--eval-attack', 'pgd')
        assert r.returncode == 2 and 'is a file, not a folder' in r.stderr and '--out' in r.stderr, r.stderr[-2000:]
        assert 'Traceback' not in r.stderr and 'training the' not in r.stderr
    assert f.read_text() == 'keep me'

def test_unwritable_out_refused_before_training(tmp_path):
    outs = [Path('/proc/robust-saliency-test/out')]            # nobody may create files there, root included
    if os.geteuid() != 0:
        ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o555); outs.append(ro/'out')
    for out in outs:
        r = run('compare', '--out', out, '--epochs', '1', '--n', '100', '--bs', '16', '--eval-attack', 'pgd')
        assert r.returncode == 2 and 'cannot write in' in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
        assert 'training the' not in r.stderr and not out.exists()

def test_overwrite_only_replaces_reports(tmp_path):
    d = tmp_path/'thesis'; d.mkdir(); (d/'chapter1.tex').write_text('x')
    r = run('compare', *SMALL, '--out', d, '--overwrite')
    assert r.returncode == 2 and 'not a robust-saliency report' in r.stderr
    assert (d/'chapter1.tex').read_text() == 'x'

def test_compare_robust_acc_scored_like_clean(tmp_path):
    # multi-label: with a negligible budget the attack changes nothing, so robust accuracy (on the same images) equals clean accuracy
    r = run('compare', '--data', 'chest', *SMALL, '--eps', '1e-9', '--n-eval', '64', '--out', tmp_path/'c')
    assert r.returncode == 0, r.stderr[-3000:]
    for M in report(tmp_path/'c')['models'].values():
        assert M['robust_acc'] == pytest.approx(M['clean_acc'], abs=1e-6) and M['n'] == 32
        assert M['robust_auroc'] == pytest.approx(M['clean_auroc'], abs=1e-6)

def _digest(path):
    "The parameters' digest of a saved model, as report.json records it"
    from robust_saliency.cli import load_model, _digest as dg
    return dg(load_model(path).model)

def _consistent(out):
    "A folder that looks complete is complete: every file present and of the run its report.json describes"
    j = report(out)
    assert j['complete'] is True
    for f in j['files']: assert (out/f).stat().st_size > 0, f
    for k in ('standard', 'robust'): assert _digest(out/f'{k}.pth') == j['models'][k]['params_digest']
    return j

def test_sigkill_never_leaves_a_complete_looking_folder(tmp_path):
    out = tmp_path/'k'
    # killed at each phase in turn, resumed each time: --out never exists before the run is complete
    for i, point in enumerate(['standard', 'robust', 'accuracy', 'saliency', 'report.json']):
        r = run('compare', *SMALL, '--out', out, *(['--resume'] if i else []), env={'ROBUST_SALIENCY_FAULT': point})
        assert r.returncode == -signal.SIGKILL, (point, r.returncode, r.stderr[-2000:])
        assert not out.exists(), point
        assert partial(out).is_dir() and (partial(out)/'standard.pth').is_file()
        if point == 'report.json': _consistent(partial(out))       # everything is written; only the move is left
        else: assert not (partial(out)/'report.json').exists()
    r = run('compare', *SMALL, '--out', out)                        # without --resume: told how to continue
    assert r.returncode == 2 and '--resume' in r.stderr
    r = run('compare', *SMALL, '--out', out, '--resume')
    assert r.returncode == 0, r.stderr[-3000:]
    first = _consistent(out)
    assert not partial(out).exists() and len(first['sessions']) == 5
    # --overwrite killed while the new run replaces the old one: the folder is one run or the other, never a mix
    r = run('compare', *SMALL, '--seed', '1', '--out', out, '--overwrite', env={'ROBUST_SALIENCY_FAULT': 'swap'})
    assert r.returncode == -signal.SIGKILL
    if out.exists(): assert _consistent(out)['config']['seed'] in (0, 1)    # Linux: swapped in one step, the new run is there
    else: assert _consistent(partial(out))['config']['seed'] == 1         # elsewhere: the new run waits beside it
    r = run('compare', *SMALL, '--seed', '1', '--out', out, '--overwrite')
    assert r.returncode == 0, r.stderr[-3000:]
    assert _consistent(out)['config']['seed'] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['k']      # nothing left beside it

def _strip(j):
    "A report without what differs between two runs of the same settings: timings"
    j = json.loads(json.dumps(j))
    for k in ('seconds', 'sessions', 'finished_at', 'finished'): j.pop(k)
    for m in j['models'].values(): m.pop('fit_seconds')
    return j

def test_sigint_after_first_fit_then_resume(tmp_path):
    args = [*SMALL, '--epochs', '2']
    r = run('compare', *args, '--out', tmp_path/'a')
    assert r.returncode == 0, r.stderr[-3000:]
    # Ctrl-C's default action in the child, even where the tests run in a background job (which ignores SIGINT,
    # and a process that starts with SIGINT ignored keeps ignoring it, as `nohup` relies on)
    p = subprocess.Popen(cmd('compare', *args, '--out', tmp_path/'b'), stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=ENV, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in p.stderr:
        if 'standard model trained' in line: break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 130, err[-3000:]
    assert 'Traceback' not in err and err.strip().splitlines()[-1].startswith('robust-saliency: interrupted: kept the standard model')
    assert '--resume' in err.strip().splitlines()[-1] and not (tmp_path/'b').exists()
    r = run('compare', *args, '--out', tmp_path/'b', '--resume')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'training the standard model' not in r.stderr and 'training the robust model' in r.stderr
    assert 'standard model: kept from the interrupted run' in r.stderr
    a, b = report(tmp_path/'a'), report(tmp_path/'b')
    assert len(b['sessions']) == 2
    assert _strip(a) == _strip(b)
    # a changed setting is refused
    r = run('compare', *args, '--out', tmp_path/'c', env={'ROBUST_SALIENCY_FAULT': 'standard'})
    r = run('compare', *args, '--lr', '0.01', '--out', tmp_path/'c', '--resume')
    assert r.returncode == 2 and '--lr 0.005 (now 0.01)' in r.stderr

def _npz(path, labels=None, n=240, size=24, seed=0):
    "A DermaMNIST-style .npz of built-in lesion images; `labels` replaces the true ones"
    from robust_saliency.data import synth_lesions
    d = synth_lesions(n, size=size, seed=seed)
    im = (d.images.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    lab = (d.labels if labels is None else labels).numpy().astype(np.uint8)[:, None]
    k = n * 3 // 4
    np.savez(path, train_images=im[:k], train_labels=lab[:k], val_images=im[k:], val_labels=lab[k:])
    return path

def test_chance_level_warning_on_shuffled_labels(tmp_path):
    y = torch.randint(0, 2, (240,), generator=torch.Generator().manual_seed(1))
    f = _npz(tmp_path/'shuffled.npz', labels=y)
    r = run('compare', '--data', f, '--size', '24', '--epochs', '1', '--steps', '1', '--methods', 'gradient', '--n-eval', '32',
            '--bs', '32', '--eval-attack', 'pgd', '--out', tmp_path/'r')
    assert r.returncode == 0, r.stderr[-3000:]
    j = report(tmp_path/'r')
    assert any('at chance level' in w for w in j['warnings']), j['warnings']
    assert any(l.startswith('warning: ') and 'at chance level' in l for l in r.stdout.splitlines())
    assert '> **Warning:** the standard model is at chance level' in (tmp_path/'r'/'report.md').read_text()

def test_reloaded_model_predicts_the_same_in_a_fresh_process(small_run, tmp_path):
    out, _ = small_run
    code = f"""
import json, sys, torch
from robust_saliency.cli import load_model, load_data, _valid_rows
m = load_model({str(out/'robust.pth')!r})
dls = load_data('lesions', size=24, n=160, seed=0)
order = torch.randperm(len(dls.valid_ds), generator=torch.Generator().manual_seed(0)).tolist()
x, y = _valid_rows(dls, sorted(order[:512]))
with torch.no_grad(): p = m.model(x).softmax(1)
torch.save(p, {str(tmp_path/'p.pt')!r})
print(json.dumps(dict(classes=m.classes, acc=(p.argmax(1) == y).float().mean().item(), arch=m.info['arch'])))
"""
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.splitlines()[-1])
    assert got['classes'] == ['benign', 'malignant'] and got['arch'] == 'small_cnn'
    # the same accuracy as the run measured on these images, and the same predictions as a reload here
    assert got['acc'] == pytest.approx(report(out)['models']['robust']['clean_acc'], abs=1e-9)
    from robust_saliency.cli import load_model, load_data, _valid_rows
    m = load_model(out/'robust.pth')
    dls = load_data('lesions', size=24, n=160, seed=0)
    order = torch.randperm(len(dls.valid_ds), generator=torch.Generator().manual_seed(0)).tolist()
    with torch.no_grad(): p = m.model(_valid_rows(dls, sorted(order[:512]))[0]).softmax(1)
    assert torch.equal(p, torch.load(tmp_path/'p.pt'))

LABELS = ['No Finding', 'Effusion', 'Nodule|Mass', 'Cardiomegaly', 'Effusion|Cardiomegaly']

def cxr(d, n=30):
    "A ChestX-ray14-format folder of `n` images, one patient each, and no box"
    return write_cxr(d, [LABELS[i % 5] for i in range(n)], size=32)

CXR = ['--size', '16', '--bs', '8', '--epochs', '1', '--steps', '1', '--methods', 'gradient', '--eval-attack', 'pgd']

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
    r = run('compare', '--data', d, *CXR, '--n-eval', '2', '--out', tmp_path/'r')
    assert r.returncode == 0, r.stderr[-3000:]
    j = report(tmp_path/'r')
    assert j['notes'] == [] and 'pointing_game' in j['models']['robust']['methods']['gradient']

def test_compare_chestxray14_without_boxes(tmp_path):
    # no validation image has a box: the report falls back to images with a finding, without localisation, and says so
    r = run('compare', '--data', cxr(tmp_path/'cxr'), *CXR, '--eps', '1e-9', '--n-eval', '64', '--out', tmp_path/'r')
    assert r.returncode == 0, r.stderr[-3000:]
    j = report(tmp_path/'r')
    assert len(j['notes']) == 1 and 'bounding box' in j['notes'][0] and 'note: no validation image' in r.stderr
    assert 'Note: no validation image' in (tmp_path/'r'/'report.md').read_text()
    for M in j['models'].values():
        assert 'pointing_game' not in M['methods']['gradient'] and 'gini' in M['methods']['gradient']
        assert M['robust_acc'] == pytest.approx(M['clean_acc'], abs=1e-6)

def test_chestxray14_without_patient_id_warns(tmp_path):
    d = cxr(tmp_path/'cxr')
    df = pd.read_csv(d/'Data_Entry_2017.csv'); df.drop(columns='Patient ID').to_csv(d/'Data_Entry_2017.csv', index=False)
    r = run('compare', '--data', d, *CXR, '--out', tmp_path/'r')
    assert r.returncode == 0, r.stderr[-3000:]
    assert any(l.startswith('warning: ') and 'Patient ID' in l for l in r.stderr.splitlines()), r.stderr
    assert any('Patient ID' in w for w in report(tmp_path/'r')['warnings'])

def test_real_data_options(tmp_path):
    # --n subsamples a real data set; --check and --classes reach the loader
    f = _npz(tmp_path/'d.npz')
    r = run('compare', '--data', f, '--n', '100', '--size', '24', '--epochs', '1', '--steps', '1', '--methods', 'gradient',
            '--bs', '16', '--n-eval', '8', '--eval-attack', 'pgd', '--out', tmp_path/'r')
    assert r.returncode == 0, r.stderr[-3000:]
    d = report(tmp_path/'r')['data']
    assert d['n_train'] + d['n_valid'] == 100 and d['n_total_found'] == 240
    r = run('compare', '--data', f, '--classes', 'nv,mel', '--out', tmp_path/'x')
    assert r.returncode == 2 and 'not to a .npz file' in r.stderr

def test_unreadable_image_met_in_training_is_one_line(tmp_path):
    d = cxr(tmp_path/'cxr', n=40)
    victim = sorted((d/'images').iterdir())[3]
    victim.write_bytes(victim.read_bytes()[:60])                 # a truncated PNG: its header still reads
    r = run('compare', '--data', d, *CXR, '--check', 'header', '--out', tmp_path/'r')
    assert r.returncode == 2, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith('robust-saliency: error: ') and victim.name in last and 'Traceback' not in r.stderr
    assert not (tmp_path/'r').exists()

def test_autoattack_evaluation(tmp_path):
    "The default evaluation is AutoAttack: the report names its attacks and how far each brought robust accuracy down"
    args = [a for a in SMALL if a not in ('--eval-attack', 'pgd')]
    r = run('compare', *args, '--eval-attack', 'autoattack-fast', '--out', tmp_path/'aa')
    assert r.returncode == 0, r.stderr[-3000:]
    j = report(tmp_path/'aa')
    assert j['evaluation']['eval_attack'].startswith('AutoAttack, fast version (apgd-ce, apgd-margin, square; l2'), j['evaluation']
    for m in j['models'].values():
        after = m['after_attack']
        assert list(after) == ['apgd-ce', 'apgd-margin', 'square'] and set(m['broken_by']) == set(after)
        assert list(after.values()) == sorted(after.values(), reverse=True)    # each attack only on the unbroken images
        assert abs(after['square'] - m['robust_acc']) <= 1 / m['n'] and m['robust_acc'] <= m['clean_acc']
    md = (tmp_path/'aa'/'report.md').read_text()
    assert 'robust accuracy under AutoAttack, fast version' in md and 'AutoAttack runs its attacks in turn' in md
