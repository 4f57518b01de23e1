"""fastai callbacks that train medical-image classifiers adversarially so their saliency maps become sharp and
faithful, plus the saliency extractors and metrics that prove it"""

__version__ = "0.1.0"

# `learn.saliency` on every fastai `Learner` (one from `load_learner` included) once this package is imported,
# while `import robust_saliency` itself stays light (no torch, no fastai: the CLI parses its arguments first).
# A stand-in method goes on `Learner` as soon as `fastai.learner` is imported; its first call imports
# `.saliency`, whose `@patch` replaces it. Only `Learner` is touched at import time: nothing of this package is
# imported in the middle of another module's import.
import sys as _sys

def _saliency(self, *args, **kwargs):
    "Saliency maps of `self.model`: `robust_saliency.saliency`'s `Learner.saliency`, imported on first call"
    from . import saliency as _impl   # noqa: F401  (its @patch replaces this stand-in on `Learner`)
    from fastai.learner import Learner
    if Learner.saliency is _saliency:
        raise RuntimeError("robust_saliency.saliency did not patch Learner.saliency")
    return Learner.saliency(self, *args, **kwargs)

def _patch_learner(mod):
    cls = getattr(mod, 'Learner', None)
    if cls is not None and 'saliency' not in cls.__dict__: cls.saliency = _saliency

class _LearnerHook:
    "A `sys.meta_path` finder waiting for `fastai.learner`: the other finders load it, then it is patched"
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != 'fastai.learner': return None
        # once is enough; this also keeps the lookup below from recursing
        if cls in _sys.meta_path: _sys.meta_path.remove(cls)
        import importlib.util
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, 'exec_module'): return spec
        exec_module = spec.loader.exec_module
        def _exec(module):
            exec_module(module)
            _patch_learner(module)
        spec.loader.exec_module = _exec   # this spec's own loader object: no other module is affected
        return spec

def _hooked(): return any(getattr(f, '__name__', None) == '_LearnerHook' for f in _sys.meta_path)

if 'fastai.learner' in _sys.modules: _patch_learner(_sys.modules['fastai.learner'])
elif not _hooked(): _sys.meta_path.insert(0, _LearnerHook)
