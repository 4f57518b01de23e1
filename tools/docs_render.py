"""Render nbdev's processed notebooks (`_proc/`) into a static site in `_docs/` with Sphinx + myst-nb, offline.

Notebooks are rendered with their stored outputs (nothing is executed), under the page names Quarto would give them
(nbdev's `output-file`: `00_core.ipynb` -> `core.html`), so nbdev's cross-links resolve. `sidebar.yml` is the
navigation; nbdev's cell directives that survive processing are honoured: `echo: false` (input removed),
`output: asis` (text output rendered as markdown), `include: false` (cell removed), `output: false` (outputs removed),
`code-fold` (input collapsed)."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROC, SRC, OUT = ROOT/'_proc', ROOT/'_sphinx', ROOT/'_docs'

def _frontmatter(nb):
    "nbdev's frontmatter (the raw `---` cell it writes first), removed from `nb`"
    c = nb['cells'][0] if nb['cells'] else None
    if c is None or c['cell_type'] != 'raw': return {}
    src = ''.join(c['source']).strip()
    if not src.startswith('---'): return {}
    nb['cells'].pop(0)
    return yaml.safe_load(src.strip('-')) or {}

def docname(nb_path):
    "The page name Quarto gives a processed notebook (nbdev's `output-file`, else the file name)"
    fm = _frontmatter(json.loads(Path(nb_path).read_text()))
    rel = Path(nb_path).relative_to(PROC)
    return (rel.parent/Path(fm.get('output-file', rel.name)).stem).as_posix()

def _site_url():
    cfg = yaml.safe_load((PROC/'nbdev.yml').read_text()) if (PROC/'nbdev.yml').exists() else {}
    return (cfg.get('website', {}).get('site-url') or '').rstrip('/') + '/'

_re_dir = re.compile(r'^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')

def _directives(cell):
    "Quarto cell options left in the source by nbdev, removed from it"
    lines, d = ''.join(cell.get('source', '')).splitlines(), {}
    while lines and (m := _re_dir.match(lines[0])):
        d[m[1]] = m[2].strip('"\''); lines.pop(0)
    cell['source'] = '\n'.join(lines)
    return d

def _esc(name): return name.replace('_', r'\_')   # `__call__` in a heading is a name, not bold

def _anchor(md):
    "An explicit anchor with nbdev's id (`inputspace.to_pixel`) before each show_doc heading"
    md = re.sub(r'^---\s*$', '', md, count=1, flags=re.M)   # nbdev's rule above each entry: the theme draws one
    md = re.sub(r'\[source\]\((\S+?)\)\{[^}]*\}', r'<a class="nbdev-source" href="\1" target="_blank">[source]</a>', md)
    # a string annotation holding quotes (`Literal['l2']` under PEP 563) is shown by fastcore inside double quotes
    md = re.sub(r'(\w):"([^"\n]+)"', r'\1:\2', md)
    return re.sub(r'^(#{2,4}) (\S+)\s*$', lambda m: f'<span class="nbdev-entry" id="{m[2].lower()}"></span>\n\n{m[1]} {_esc(m[2])}', md, flags=re.M)

def _link_nbs(md, names, here, site):
    "Links to notebooks (`03_callback.adversarial.ipynb`) as site links to their pages (made relative after the build)"
    def nb(m):
        target = os.path.normpath(os.path.join(here, m[2])).replace(os.sep, '/')
        if m[3] == '.ipynb': target = names.get(target, target)
        return f'{m[1]}({site}{target}.html{m[4] or ""})'
    md = re.sub(r'(\]\s*)\(((?:\.\./|\./)?[\w./-]+?)(\.ipynb|\.html)(#[\w.-]+)?\)', nb, md)
    return md

def convert(src, dst, names):
    "One processed notebook -> a myst-nb notebook with its title, tags and links"
    nb = json.loads(Path(src).read_text())
    fm, cells = _frontmatter(nb), []
    here = Path(src).relative_to(PROC).parent.as_posix()
    head = f"# {fm.get('title', Path(src).stem)}\n"
    if fm.get('description'): head += f"\n```{{rst-class}} lead\n{fm['description']}\n```\n"
    cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': head})
    for c in nb['cells']:
        if c['cell_type'] == 'raw': continue
        c.pop('has_sd', None)
        c.get('metadata', {}).pop('execution', None)   # nbdev's timings: not valid nbformat
        if c['cell_type'] == 'markdown':
            s = ''.join(c['source'])
            if s.startswith('<!-- WARNING'): continue
            c['source'] = _link_nbs(s, names, here, _site_url())
            cells.append(c); continue
        d, tags = _directives(c), set(c.get('metadata', {}).get('tags', []))
        if d.get('include') == 'false': continue
        if d.get('echo') == 'false' or not c['source'].strip(): tags.add('remove-input')
        if d.get('output') == 'false': tags.add('remove-output')
        if 'code-fold' in d: tags.add('hide-input')
        for o in c.get('outputs', []):
            if d.get('output') == 'asis' and o['output_type'] == 'stream':
                o.update(output_type='display_data', data={'text/markdown': o.pop('text')}, metadata={})
                o.pop('name', None)
            md = o.get('data', {}).get('text/markdown')
            if md is not None:
                o['data']['text/markdown'] = _link_nbs(_anchor(''.join(md)), names, here, _site_url())
        if not c['source'].strip() and not c.get('outputs'): continue
        c.setdefault('metadata', {})['tags'] = sorted(tags)
        cells.append(c)
    nb['cells'] = cells
    nb.setdefault('metadata', {})['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(nb))

def sidebar():
    "(section, [notebook paths]) from nbs/sidebar.yml, in order"
    sb = yaml.safe_load((PROC/'sidebar.yml').read_text())['website']['sidebar']['contents']
    out, top = [], []
    for e in sb:
        if isinstance(e, str): top.append(e)
        else: out.append((e.get('section', ''), [c if isinstance(c, str) else c['href'] for c in e['contents']]))
    return top, out

CONF = '''project = {title!r}
html_title = {title!r}
extensions = ['myst_nb']
html_theme = 'furo'
nb_execution_mode = 'off'
nb_render_markdown_format = 'myst'
nb_merge_streams = True
myst_enable_extensions = ['attrs_inline', 'colon_fence', 'dollarmath', 'html_image']
myst_heading_anchors = 4
exclude_patterns = ['_build', 'jupyter_execute', '**.ipynb_checkpoints']
html_static_path = ['_static']
html_css_files = ['nbdev.css']
html_show_sourcelink = False
suppress_warnings = ['myst.header', 'myst.xref_missing', 'misc.highlighting_failure', 'mystnb.unknown_mime_type']
'''

CSS = '''a.nbdev-source { float: right; font-size: smaller; }
.cell_output table { font-size: 0.9em; }
'''

def build(out=OUT, strict=True):
    "Render `_proc/` into `out` (default `_docs/`); returns the list of pages (doc names) in sidebar order"
    if not PROC.exists(): raise SystemExit('run nbdev processing first (tools/docs.py proc)')
    shutil.rmtree(SRC, ignore_errors=True); SRC.mkdir()
    nbs = sorted(PROC.rglob('*.ipynb'))
    names = {(p.relative_to(PROC).parent/p.stem).as_posix(): docname(p) for p in nbs}
    for p in nbs: convert(p, SRC/f'{names[(p.relative_to(PROC).parent/p.stem).as_posix()]}.ipynb', names)
    for d in PROC.rglob('*'):   # pictures and other files the pages refer to
        if d.is_file() and d.suffix not in ('.ipynb', '.yml', '.yaml', '.txt', '.css'):
            (SRC/d.relative_to(PROC)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(d, SRC/d.relative_to(PROC))
    top, sections = sidebar()
    have = lambda f: (Path(f).parent/Path(f).stem).as_posix() in names
    missing = [f for f in top + [f for _, fs in sections for f in fs] if not have(f)]
    if missing and strict: raise SystemExit(f'sidebar pages not processed: {", ".join(missing)}')
    top, sections = [f for f in top if have(f)], [(c, [f for f in fs if have(f)]) for c, fs in sections]
    page = lambda f: names[(Path(f).parent/Path(f).stem).as_posix()]
    root = SRC/'index.ipynb'
    nb = json.loads(root.read_text())
    for cap, files in [('', [f for f in top if page(f) != 'index'])] + sections:
        if not files: continue
        toc = '```{toctree}\n:hidden:\n' + (f':caption: {cap}\n' if cap else '') + '\n' + '\n'.join(page(f) for f in files) + '\n```'
        nb['cells'].append({'cell_type': 'markdown', 'metadata': {}, 'source': toc})
    root.write_text(json.dumps(nb))
    title = yaml.safe_load((PROC/'nbdev.yml').read_text()).get('website', {}).get('title', 'docs')
    (SRC/'conf.py').write_text(CONF.format(title=title))
    (SRC/'_static').mkdir(exist_ok=True)
    (SRC/'_static'/'nbdev.css').write_text(CSS)
    shutil.rmtree(out, ignore_errors=True)
    html = SRC/'_build'/'html'   # myst-nb writes its image files beside the output folder: keep them inside _sphinx/
    r = subprocess.run([sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-j', '1', str(SRC), str(html)],
                       capture_output=True, text=True)
    if r.returncode: raise SystemExit(f'sphinx-build failed:\n{r.stderr[-4000:]}')
    shutil.copytree(html, out, dirs_exist_ok=True)
    warn = [l for l in r.stderr.splitlines() if 'WARNING' in l or 'ERROR' in l]
    if warn: print(f'{len(warn)} Sphinx warnings, e.g.:\n' + '\n'.join(warn[:10]))
    site = _site_url()
    for h in out.rglob('*.html'):   # nbdev's links to this site, made relative so the site works from disk
        up = '../' * h.relative_to(out).as_posix().count('/')
        s = h.read_text()
        if site != '/' and site in s: h.write_text(s.replace(f'href="{site}', f'href="{up}'))
    pages = ['index'] + [page(f) for f in top if page(f) != 'index'] + [page(f) for _, fs in sections for f in fs]
    print(f'{len(pages)} pages rendered into {out}')
    return pages

if __name__ == '__main__': build(strict='--preview' not in sys.argv)
