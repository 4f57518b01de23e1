"""A user's walk through the saliency explorer: JupyterLab on a free localhost port, the notebook opened in headless
Chromium (Debian's /usr/bin/chromium driven by Playwright), Run All, move a widget, the overlay image changes."""
import os, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT/'nbs'/'tutorials'/'saliency_explorer.ipynb'
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture
def lab(tmp_path):
    "JupyterLab serving a copy of the explorer notebook (the user's files are never touched)"
    work = tmp_path/'lab'; work.mkdir()
    shutil.copy(NB, work/'explorer.ipynb')
    port, token = free_port(), secrets.token_hex(16)
    jl = Path(sys.executable).parent/'jupyter-lab'
    log = open(tmp_path/'lab.log', 'w')
    p = subprocess.Popen([str(jl), '--no-browser', f'--port={port}', '--ip=127.0.0.1', f'--ServerApp.token={token}',
                          f'--ServerApp.root_dir={work}', '--allow-root', '--ServerApp.disable_check_xsrf=False'],
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                         env={**os.environ, 'OMP_NUM_THREADS': '2', 'JUPYTER_CONFIG_DIR': str(tmp_path/'jcfg')})
    url = f'http://127.0.0.1:{port}'
    for _ in range(120):
        try:
            urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=2); break
        except Exception: time.sleep(0.5)
    else:
        os.killpg(p.pid, signal.SIGTERM); pytest.fail(f'JupyterLab did not start: {(tmp_path/"lab.log").read_text()[-2000:]}')
    yield url, token, tmp_path
    os.killpg(p.pid, signal.SIGTERM)
    try: p.wait(20)
    except subprocess.TimeoutExpired: os.killpg(p.pid, signal.SIGKILL)
    log.close()

def test_explorer_in_jupyterlab(lab):
    pw = pytest.importorskip('playwright.sync_api')
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (make test installs it with apt-get)"
    url, token, tmp = lab
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        try:
            page.goto(f'{url}/lab/tree/explorer.ipynb?token={token}', timeout=120_000)
            page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=120_000)
            # a kernel dialog may appear on first open: accept the default kernel
            try: page.get_by_role('button', name='Select', exact=True).click(timeout=5_000)
            except Exception: pass
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"], .jp-Toolbar-kernelStatus', timeout=120_000)
            page.get_by_role('menuitem', name='Run', exact=True).click()
            page.get_by_text('Run All Cells', exact=True).click()
            img = page.locator('img.rs-overlay').first
            img.wait_for(state='visible', timeout=300_000)
            page.wait_for_function("() => { const i = document.querySelector('img.rs-overlay'); return i && i.naturalWidth > 0 }",
                                   timeout=60_000)
            # wait until every cell has run (no '[*]' prompt left) before touching the widgets
            page.wait_for_function(r"() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].every(e => /\[\d+\]/.test(e.textContent))",
                                   timeout=300_000)
            img.scroll_into_view_if_needed()
            src0 = img.get_attribute('src')
            i0 = int(page.locator('.rs-label').first.inner_text().split()[1])
            page.screenshot(path=str(tmp/'explorer_before.png'))
            # move the image slider with the keyboard, as a user would
            handle = page.locator('.rs-image-index .noUi-handle, .rs-image-index [role=slider]').first
            handle.focus(); handle.press('ArrowRight'); handle.press('ArrowRight')
            want = f'image {i0 + 2} '
            page.wait_for_function("w => document.querySelector('.rs-label').innerText.startsWith(w)", arg=want, timeout=120_000)
            page.wait_for_function("s => document.querySelector('img.rs-overlay').getAttribute('src') !== s", arg=src0, timeout=120_000)
            src1 = img.get_attribute('src')
            assert src1 != src0
            # and pick another method from the dropdown
            page.locator('.rs-method select').select_option('gradcam')
            page.wait_for_function("s => document.querySelector('img.rs-overlay').getAttribute('src') !== s", arg=src1, timeout=120_000)
            assert 'gradcam' in page.locator('.rs-label').first.inner_text()
            page.screenshot(path=str(tmp/'explorer_after.png'))
        except Exception:
            page.screenshot(path=str(tmp/'explorer_failure.png')); raise
        finally: browser.close()
    assert (tmp/'explorer_after.png').stat().st_size > 10_000
