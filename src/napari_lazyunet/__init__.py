"""napari-lazyunet: instance segmentation of dense, touching objects from lazy labels.

The headless engine lives in :mod:`napari_lazyunet.api` (scripts, notebooks,
the command line); the napari plugin in :mod:`napari_lazyunet._napari` only
calls that engine.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
