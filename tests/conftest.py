import os, sys
from pathlib import Path
# tests import the package from the checkout even before it is installed
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault('OMP_NUM_THREADS', '1')
