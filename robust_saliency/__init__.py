"""fastai callbacks that train medical-image classifiers adversarially so their saliency maps become sharp and faithful, plus the saliency extractors and metrics that prove it

Modules:

- `robust_saliency.cli`: `robust-saliency compare`: train a standard and an adversarially trained model, extract saliency with several methods, evaluate the metrics and write a report. `make demo` runs exactly this on the built-in lesions.
- `robust_saliency.data`: Built-in procedural data with ground truth for saliency (lesions, chest radiographs), fastai `DataLoaders` for them, and loaders for the real formats (HAM10000/ISIC, DermaMNIST `.npz`, ChestX-ray14)."""

__version__ = "0.1.0"
