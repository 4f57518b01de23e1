"""The documentation site as a reader meets it: nbdev's docs processing of every notebook (no output changed), the
offline render (`make docs` without Quarto), and every sidebar page opened in headless Chromium."""
import importlib, inspect, os, re, shutil, subprocess, sys
from pathlib import Path
from html import unescape
from urllib.parse import urlparse, unquote
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import docs, docs_render

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "nbdev's processing of every notebook into _proc/, rendered into a temporary site folder"
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PATH': os.environ.get('PATH', '')}
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'docs.py'), 'proc'], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, f'nbdev docs processing failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    out = tmp_path_factory.mktemp('site')
    pages = docs_render.build(out)
    return out, pages

def test_notebooks_follow_the_docs_rules():
    "Imports first, no outputs nbdev would replace, parameter docs, no empty headings, prose for readers"
    assert docs.check() == []

def test_processing_keeps_committed_outputs(site):
    assert docs.changed_outputs() == []

def test_readme_is_the_index_page(site):
    assert (ROOT/'README.md').read_text() == docs.readme_text(), 'README.md is out of date: python tools/docs.py readme'

def _module_pages():
    "(module, page) for every exported module: the page is the notebook's output file"
    from robust_saliency._modidx import d
    res = {}
    for mod, syms in d['syms'].items():
        if syms: res[mod] = next(iter(syms.values()))[0].split('#')[0]
    return res

def test_site_in_a_browser(site, tmp_path):
    pytest.importorskip('playwright.sync_api')
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (make test installs it with apt-get)"
    out, pages = site
    bad, (n_img, n_links, n_names) = browse(out, pages, tmp_path)
    assert not bad, '\n'.join(bad[:40])
    print(f'{len(pages)} pages, {n_img} images, {n_links} internal links, {n_names} public names checked')
    assert len(pages) >= 18 and n_img > 10 and n_links > 50 and n_names > 100

def browse(out, pages, shots):
    "Open every page in Chromium: findings, and the number of images, internal links and public names checked"
    from playwright import sync_api as pw
    ids, n_img, n_links, bad = {}, 0, 0, []
    def page_ids(f):
        if f not in ids: ids[f] = set(re.findall(r'\sid="([^"]+)"', f.read_text())) if f.exists() else None
        return ids[f]
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={'width': 1300, 'height': 1000})
        errors = []
        pg.on('pageerror', lambda e: errors.append(str(e)))
        for name in pages:
            f = out/f'{name}.html'
            assert f.exists(), f'sidebar page {name} was not rendered'
            pg.goto(f.as_uri(), wait_until='load')
            text = pg.inner_text('article')
            for pat in ('Traceback (most recent call last)', 'NameError', 'Error in cell'):
                if pat in text: bad.append(f'{name}: shows {pat!r}')
            if pg.locator('.output.error, .output.traceback').count(): bad.append(f'{name}: an error output')
            imgs = pg.eval_on_selector_all('article img', 'es => es.map(e => [e.getAttribute("src"), e.complete && e.naturalWidth])')
            n_img += len(imgs)
            bad += [f'{name}: image {s} does not load' for s, w in imgs if not w]
            for href in pg.eval_on_selector_all('a[href]', 'es => es.map(e => e.getAttribute("href"))'):
                u = urlparse(href)
                if u.scheme or href.startswith(('mailto:', '//')): continue
                n_links += 1
                target = (f.parent/unquote(u.path)).resolve() if u.path else f
                got = page_ids(target)
                if got is None: bad.append(f'{name}: link {href} points at a missing page')
                elif u.fragment and unquote(u.fragment) not in got: bad.append(f'{name}: link {href}: no #{u.fragment} there')
        for name in ('index', 'callback.adversarial', 'tutorials/margeloiu2020'):
            if (out/f'{name}.html').exists():
                pg.goto((out/f'{name}.html').as_uri())
                pg.screenshot(path=str(shots/f'{name.replace("/", "_")}.png'), full_page=False)
        browser.close()
    bad += [f'script error: {e}' for e in errors]
    # every public name documented on its module's page, with its parameters' docs where it takes any
    n_names = 0
    for mod, html in _module_pages().items():
        m = importlib.import_module(mod)
        if not (out/html).exists(): bad.append(f'no page {html} for {mod}'); continue
        src = (out/html).read_text()
        for nm in getattr(m, '__all__', []):
            o = getattr(m, nm)
            # re-exports (e.g. `metrics.road_auc`) are documented on the page of the module that defines them
            if not callable(o) or getattr(o, '__module__', None) != mod: continue
            n_names += 1
            i = src.find(f'<span class="nbdev-entry" id="{nm.lower()}"></span>')   # the show_doc entry (a section may share the id)
            if i < 0: bad.append(f'{html}: no entry for {nm}'); continue
            entry = src[i:src.find('nbdev-source', i + 1) if 'nbdev-source' in src[i + 1:] else None]
            f = o.__init__ if inspect.isclass(o) else o
            try: params = [q.name for q in inspect.signature(f).parameters.values() if q.name not in ('self', 'cls')
                           and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD)]   # show_doc shows no docs for *a, **k
            except (TypeError, ValueError): params = []
            text = unescape(re.sub(r'<[^>]+>', '', entry))
            undoc = [q for q in params if not re.search(rf'\b{q}\b[^\n]*#\s*\S', text)]
            if undoc: bad.append(f'{html}: {nm} shows no docs for {", ".join(undoc)}')
    return bad, (n_img, n_links, n_names)
