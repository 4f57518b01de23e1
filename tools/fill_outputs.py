"""Execute a notebook as nbdev-test does (cells flagged `slow`/`cuda`/`notest` and `eval: false` skipped) and store
the outputs of the visible cells that have none yet — new examples — leaving every committed output as it is.

    python tools/fill_outputs.py nbs/04_saliency.ipynb            # fill only cells without outputs
    python tools/fill_outputs.py nbs/04_saliency.ipynb --all      # replace the outputs of every executed cell
    python tools/fill_outputs.py nbs/03_x.ipynb --flags slow      # also run `#| slow` cells (the page's configuration)

Hidden (`#| hide`) and export cells never get outputs stored. Run `nbdev-clean` afterwards."""
import argparse, re, sys
from pathlib import Path
import nbformat
from nbclient import NotebookClient

def _dirs(src): return {m[0]: m[1].strip() for m in re.findall(r'^#\|\s*([\w-]+):?\s*(.*)$', src, re.M)}

def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('nb'); a.add_argument('--all', action='store_true')
    a.add_argument('--flags', default='', help='test flags to run anyway, e.g. "slow"')
    a.add_argument('--timeout', type=int, default=1200)
    o = a.parse_args()
    p = Path(o.nb)
    nb = nbformat.read(p, as_version=4)
    run = set(o.flags.split())
    skip = lambda d: d.get('eval') == 'false' or any(f in d and f not in run for f in ('slow', 'cuda', 'notest'))
    ex = nbformat.reads(nbformat.writes(nb), as_version=4)
    for c in ex.cells:
        if c.cell_type == 'code' and skip(_dirs(c.source)): c.source = ''
    client = NotebookClient(ex, timeout=o.timeout, kernel_name='python3', resources={'metadata': {'path': str(p.parent)}})
    client.execute()
    n = 0
    for c, e in zip(nb.cells, ex.cells):
        if c.cell_type != 'code' or not c.source.strip(): continue
        d = _dirs(c.source)
        if d.keys() & {'hide', 'export', 'exporti', 'exports', 'default_exp'} or skip(d): continue
        if re.search(r'^show_doc\(', c.source, re.M): continue   # nbdev renders these itself
        if o.all or not c.get('outputs'):
            c.outputs, c.execution_count = e.outputs, e.execution_count
            n += 1
    nbformat.write(nb, p)
    print(f'{p}: outputs stored for {n} cells')

if __name__ == '__main__': main()
