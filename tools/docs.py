"""The documentation site without Quarto: nbdev's own processing of the notebooks, checks of what it needs, and an
offline render of the processed notebooks with Sphinx + myst-nb.

    python tools/docs.py check [NB ...]   # static checks of the notebooks (all when none given); exit 1 on a finding
    python tools/docs.py proc [NB ...]    # nbdev's docs processing into _proc/ (never installs Quarto)
    python tools/docs.py build            # proc + render _proc/ into _docs/ (offline); `make docs` calls this
    python tools/docs.py readme           # README.md from nbs/index.ipynb (nbdev-readme needs Quarto)

With Quarto on PATH, `make docs` runs nbdev's own `nbdev-docs` instead."""
import ast, importlib, inspect, json, os, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS, PROC, SRC, OUT = ROOT/'nbs', ROOT/'_proc', ROOT/'_sphinx', ROOT/'_docs'
PROCESS_WORDS = r'\b(the issue|issues? asks?|honestly|\(CI\)|quick path|test harness|CI runs|on the 2-core|2-core CPU|in CI)\b'

def notebooks(names=()):
    "The notebooks under nbs/ (or those named, by file name or path)"
    nbs = sorted(p for p in NBS.rglob('*.ipynb') if not any(q.startswith(('.', '_')) for q in p.relative_to(NBS).parts))
    if not names: return nbs
    return [p for p in nbs if any(p.name == n or str(p).endswith(n) or p.stem == n for n in names)]

def directives(src):
    "nbdev's `#| key value` directives of a cell"
    return {m[0]: m[1].strip() for m in re.findall(r'^#\|\s*([\w-]+):?\s*(.*)$', src, re.M)}

def _parse(src):
    code = '\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!', '#|')))
    try: return ast.parse(code)
    except SyntaxError: return None

def _has_import(t): return t is not None and any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(t))
def _only_imports(t): return t is not None and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in t.body)
def _is_export(d): return bool(d.keys() & {'export', 'exporti', 'exports'})
def _is_hidden(d): return bool(d.keys() & {'hide', 'exporti', 'export'}) or d.get('include') == 'false'

def _public_syms(mod):
    "(qualified name, object) for the module's `__all__` and its public methods, patched ones included"
    from robust_saliency._modidx import d
    m = importlib.import_module(f'robust_saliency.{mod}')
    out = []
    for q in d['syms'].get(f'robust_saliency.{mod}', {}):
        parts = q.split('.')[2 + mod.count('.'):]
        if any(p.startswith('_') and p not in ('__init__', '__call__') for p in parts): continue
        if len(parts) == 1 and parts[0] not in getattr(m, '__all__', ()): continue
        o = m
        try:
            for p in parts: o = inspect.getattr_static(o, p) if inspect.isclass(o) else getattr(o, p)
        except AttributeError:
            from fastai.learner import Learner
            o = inspect.getattr_static(Learner, parts[-1], None)
        if isinstance(o, (staticmethod, classmethod)): o = o.__func__
        if isinstance(o, property) or o is None: continue
        out.append(('.'.join(parts), o))
    return out

def param_problems(mod):
    "Public callables of `mod` whose parameters lack docments, or whose signature would read `NoneType`"
    from fastcore.docments import docments
    probs = []
    for name, o in _public_syms(mod):
        f = o.__init__ if inspect.isclass(o) else o
        if inspect.isclass(o) and f is object.__init__: continue
        try: sig = inspect.signature(f)
        except (TypeError, ValueError): continue
        ps = [p for p in sig.parameters.values() if p.name not in ('self', 'cls')]
        if not ps: continue
        try: ds = docments(f, full=True, args_kwargs=True)
        except Exception as e: probs.append(f'{mod}.{name}: docments failed ({e})'); continue
        undoc = [p.name for p in ps if not (ds.get(p.name) or {}).get('docment')]
        if undoc: probs.append(f'{mod}.{name}: no docment for {", ".join(undoc)}')
        nonetype = [p.name for p in ps if p.default is None and p.annotation is inspect.Parameter.empty]
        if nonetype: probs.append(f'{mod}.{name}: default None without a type (shows as NoneType): {", ".join(nonetype)}')
        if any(p.kind is p.VAR_KEYWORD for p in ps) and not hasattr(f, '__delwrap__') and ps[-1].name in undoc:
            probs.append(f'{mod}.{name}: bare **{ps[-1].name} (use @delegates or document it)')
    return probs

def check_nb(p):
    "Findings for one notebook: what breaks nbdev's docs processing or reads as process notes"
    nb, rel, out = json.loads(p.read_text()), p.relative_to(NBS), []
    cells, seen_code, mod = nb['cells'], False, None
    for i, c in enumerate(cells):
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            for w in re.findall(PROCESS_WORDS, src, re.I): out.append(f'{rel}[{i}]: prose speaks of the process: {w!r}')
            if re.match(r'^`\w+(\.\w+)?\(', src.lstrip()): out.append(f'{rel}[{i}]: prose restates a signature show_doc shows')
            continue
        d, t = directives(src), _parse(src)
        if 'default_exp' in d: mod = d['default_exp']; continue
        if not _is_hidden(d):
            for w in re.findall(PROCESS_WORDS, src, re.I): out.append(f'{rel}[{i}]: visible code speaks of the process: {w!r}')
        if _is_export(d): continue
        if _has_import(t):
            if not _only_imports(t): out.append(f'{rel}[{i}]: a cell mixes imports with other code (nbdev runs it for the docs)')
            elif seen_code: out.append(f'{rel}[{i}]: imports after the first cells (move them to the import cells at the top)')
            if c.get('outputs'): out.append(f'{rel}[{i}]: an import cell with committed outputs (nbdev replaces them)')
        elif t is not None and t.body and 'show_doc' not in src: seen_code = True
    toks = []   # headings and content, in reading order: a heading is empty when the next thing is a heading as high
    for i, c in enumerate(cells):
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            for l in src.splitlines():
                if m := re.match(r'^(#+)\s+(.*)', l): toks.append((i, len(m[1]), m[2]))
                elif l.strip(): toks.append((i, 0, ''))
        elif src.strip() and not (_is_hidden(directives(src)) and not _is_export(directives(src))): toks.append((i, 0, ''))
    for (i, lv, h), nxt in zip(toks, toks[1:] + [(None, 1, '')]):
        if lv and nxt[1] and nxt[1] <= lv: out.append(f'{rel}[{i}]: heading with nothing under it: {h!r}')
    if mod:
        try: out += [f'{rel}: {m}' for m in param_problems(mod)]
        except Exception as e: out.append(f'{rel}: could not import robust_saliency.{mod}: {e}')
    return out

def check(names=()):
    probs = [m for p in notebooks(names) for m in check_nb(p)]
    print('\n'.join(probs) or 'no findings')
    return probs

def proc(names=(), n_workers=2):
    "nbdev's docs processing (nbdev-proc-nbs less its Quarto install) into _proc/"
    os.chdir(ROOT)
    from nbdev.doclinks import _build_modidx
    from nbdev.serve import proc_nbs
    from nbdev.quarto import refresh_quarto_yml
    refresh_quarto_yml()   # nbs/nbdev.yml from pyproject.toml, as nbdev-docs does (it writes _quarto.yml only if missing)
    _build_modidx()
    for p in notebooks(names): (PROC/p.relative_to(NBS)).unlink(missing_ok=True)
    if names:
        for p in notebooks(names): proc_nbs(str(NBS), n_workers=0, file_glob=p.name)
    else: proc_nbs(str(NBS), n_workers=n_workers)
    missing = [p for p in notebooks(names) if not (PROC/p.relative_to(NBS)).exists()]
    if missing: raise SystemExit(f'nbdev processing failed on: {", ".join(str(p.relative_to(NBS)) for p in missing)}')
    return PROC

def readme_text():
    "README.md from nbs/index.ipynb as nbdev processes it (what nbdev-readme makes with Quarto), less outputs"
    if not (PROC/'index.ipynb').exists(): proc(['index.ipynb'])
    from docs_render import _frontmatter
    nb = json.loads((PROC/'index.ipynb').read_text())
    fm, parts = _frontmatter(nb), []
    parts.append(f"# {fm.get('title', 'robust_saliency')}\n\n> {fm.get('description', '')}".rstrip('> '))
    for c in nb['cells']:
        s = ''.join(c['source']).strip()
        if not s or s.startswith('<!-- WARNING'): continue
        if c['cell_type'] == 'markdown': parts.append(re.sub(r'(!\[[^]]*\]\()(?![a-z]+:|/)', r'\1nbs/', s))
        elif c['cell_type'] == 'code' and not re.search(r'^#\|\s*echo:\s*false', s, re.M):
            parts.append('```python\n' + '\n'.join(l for l in s.splitlines() if not l.startswith('#|')) + '\n```')
    return '\n\n'.join(parts) + '\n'

_re_ansi = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')

def _outs(cell):
    "What a reader sees of a cell's outputs (execution counts and metadata aside)"
    res = []
    for o in cell.get('outputs', []):
        if o['output_type'] == 'stream': res.append(('stream', _re_ansi.sub('', ''.join(o['text']))))
        elif 'data' in o: res.append(('data', {k: ''.join(v) if isinstance(v, list) else v
                                             for k, v in o['data'].items() if 'widget' not in k}))
        else: res.append((o['output_type'], o.get('ename')))
    return res

def changed_outputs(names=()):
    "Visible cells whose outputs nbdev's processing replaced (compare after `proc`)"
    bad = []
    for p in notebooks(names):
        q = PROC/p.relative_to(NBS)
        if not q.exists(): bad.append(f'{p.relative_to(NBS)}: not processed'); continue
        src = [c for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'code' and c.get('outputs')
               and not _is_hidden(directives(''.join(c['source'])))
               and not re.search(r'^show_doc\(', ''.join(c['source']), re.M)]
        got = [c for c in json.loads(q.read_text())['cells'] if c['cell_type'] == 'code' and c.get('outputs')
               and not re.search(r'^show_doc\(', ''.join(c['source']), re.M)]
        if len(src) != len(got): bad.append(f'{p.relative_to(NBS)}: {len(src)} cells with outputs, {len(got)} after processing')
        for i, (a, b) in enumerate(zip(src, got)):
            if _outs(a) != _outs(b): bad.append(f'{p.relative_to(NBS)}: outputs of {"".join(a["source"])[:60]!r} changed')
    return bad

if __name__ == '__main__':
    cmd, *args = sys.argv[1:] or ['build']
    if cmd == 'check': sys.exit(1 if check(args) else 0)
    elif cmd == 'proc':
        proc(args)
        if bad := changed_outputs(args): sys.exit('\n'.join(bad))
    elif cmd == 'readme': proc(['index.ipynb']); (ROOT/'README.md').write_text(readme_text())
    elif cmd == 'build':
        from docs_render import build
        proc(); (ROOT/'README.md').write_text(readme_text()); build()
    else: raise SystemExit(__doc__)
