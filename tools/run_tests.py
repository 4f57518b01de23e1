"""`make test`: nbdev-export must leave the library unchanged, then nbdev-test over every notebook and pytest tests/.
Prints one closing line `N passed, N failed` (notebooks + pytest tests) and exits non-zero on any failure."""
import os, re, subprocess, sys, time, xml.etree.ElementTree as ET
from pathlib import Path

root = Path(__file__).resolve().parent.parent
os.chdir(root)
bin_ = Path(sys.executable).parent
env = {**os.environ, 'PYTHONUNBUFFERED': '1'}

def snapshot():
    st = subprocess.run(['git', 'status', '--porcelain', '--', 'robust_saliency'], capture_output=True, text=True).stdout
    diff = subprocess.run(['git', 'diff', '--', 'robust_saliency'], capture_output=True, text=True).stdout
    return st + diff

t0 = time.time()
failed, passed, fails = 0, 0, []
before = snapshot()
r = subprocess.run([bin_/'nbdev-export'], env=env)
if r.returncode or snapshot() != before:
    failed += 1; fails.append('nbdev-export: library out of sync with notebooks (run nbdev-export and commit)')
    subprocess.run(['git', '--no-pager', 'diff', '--stat', '--', 'robust_saliency'])
else: passed += 1

# two notebooks at a time on this 2-core machine, one thread each, so they do not fight over cores
nb_env = {**env, 'OMP_NUM_THREADS': env.get('OMP_NUM_THREADS', '1')}
r = subprocess.run([bin_/'nbdev-test', '--do-print', '--timing', '--n-workers', env.get('NB_WORKERS', '2')],
                   env=nb_env, capture_output=True, text=True)
sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)
done = re.findall(r'^- Completed (.+)$', r.stdout, re.M)
bad = re.findall(r'^\t(.+\.ipynb)$', r.stderr.split('Failed On The Following Notebooks:')[-1], re.M) if r.returncode else []
if r.returncode and not bad: bad = ['nbdev-test (crashed)']
passed += len(done) - len(bad); failed += len(bad); fails += [f'notebook {b}' for b in bad]

xml = root/'.pytest-report.xml'
r = subprocess.run([bin_/'python', '-m', 'pytest', 'tests', '-q', f'--junitxml={xml}'], env=env)
if xml.exists():
    s = ET.parse(xml).getroot()
    s = s if s.tag == 'testsuite' else s.find('testsuite')
    n, f, e, sk = (int(s.get(k, 0)) for k in ('tests', 'failures', 'errors', 'skipped'))
    passed += n - f - e - sk; failed += f + e
    if f + e: fails.append(f'pytest: {f} failed, {e} errors')
    xml.unlink()
elif r.returncode not in (0, 5): failed += 1; fails.append('pytest crashed')

for f in fails: print('FAILED:', f)
print(f'make test took {time.time()-t0:.0f}s')
print(f'{passed} passed, {failed} failed')
sys.exit(1 if failed else 0)
