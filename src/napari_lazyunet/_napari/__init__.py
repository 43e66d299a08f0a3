"""The napari plugin: dock widgets, layer links, sample data and the project reader / writer.

Only this package imports napari, qtpy, magicgui or superqt; every algorithm
it runs comes from :mod:`napari_lazyunet.api`.
"""
