"""Layer links, plane flags and training data from the viewer (a viewer model, no window)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel
from napari.layers import Layer

from napari_lazyunet._napari._notify import PluginInputError
from napari_lazyunet._napari.classes import class_colors, class_names, set_class_names
from napari_lazyunet._napari.labels_layers import link_label_layers
from napari_lazyunet._napari.links import (
    ROLES,
    labels_metadata,
    link_id,
    linked_image,
    linked_layers,
)
from napari_lazyunet._napari.planes import (
    current_plane,
    in_channels_of,
    is_sparse,
    n_planes,
    plane_index,
    plane_name,
    set_sparse,
    set_strong,
    strong_planes,
)
from napari_lazyunet._napari.sample_data import foam_layers
from napari_lazyunet._napari.training_data import collect_training_data


@pytest.fixture
def viewer():
    return ViewerModel()


def add_sample(viewer, n_images=2, shape=(48, 48), n_strong=1):
    for data, kwargs, kind in foam_layers(n_images, shape, n_strong=n_strong):
        viewer.add_layer(Layer.create(data, kwargs, kind))
    return viewer.layers[0]


def test_links_survive_renames_and_never_use_names(viewer):
    image = viewer.add_image(np.random.default_rng(0).random((32, 40)), name="cells")
    layers = link_label_layers(viewer, image)
    assert set(layers) == set(ROLES)
    assert all(layer.data.shape == (32, 40) for layer in layers.values())
    image.name = "renamed"
    for layer in layers.values():
        layer.name = f"whatever {layer.name}"
    assert linked_layers(viewer, image) == layers
    assert linked_image(viewer, layers["separation"]) is image
    # A second image with the old name is not linked to these layers.
    other = viewer.add_image(np.zeros((32, 40)), name="cells")
    assert linked_layers(viewer, other) == {}
    # Linking again finds the same layers instead of creating new ones.
    n = len(viewer.layers)
    assert link_label_layers(viewer, image) == layers
    assert len(viewer.layers) == n


def test_rgb_and_stack_shapes(viewer):
    rgb = viewer.add_image(np.zeros((20, 30, 3), dtype=np.uint8), rgb=True)
    layers = link_label_layers(viewer, rgb)
    assert layers["detection"].data.shape == (20, 30)
    assert in_channels_of(rgb) == 3 and n_planes(rgb) == 1
    stack = viewer.add_image(np.zeros((2, 3, 20, 30)))
    assert n_planes(stack) == 6
    assert plane_index(stack, 4) == (1, 1)
    assert "plane (1, 1)" in plane_name(stack, 4)


def test_adopt_checks_shape_and_owner(viewer):
    image = viewer.add_image(np.zeros((16, 16)))
    painted = viewer.add_labels(np.ones((16, 16), dtype=np.uint8), name="old scribbles")
    wrong = viewer.add_labels(np.zeros((8, 8), dtype=np.uint8), name="wrong")
    with pytest.raises(PluginInputError, match="shape"):
        link_label_layers(viewer, image, adopt={"detection": wrong})
    layers = link_label_layers(viewer, image, adopt={"detection": painted})
    assert layers["detection"] is painted and painted.data.sum() == 256
    other = viewer.add_image(np.zeros((16, 16)))
    with pytest.raises(PluginInputError, match="another image"):
        link_label_layers(viewer, other, adopt={"detection": painted})


def test_flags_are_per_plane_and_class_names_validated(viewer):
    image = add_sample(viewer, n_images=3)
    assert strong_planes(image) == [0]
    set_strong(image, 2)
    set_sparse(image, 1)
    assert strong_planes(image) == [0, 2]
    assert is_sparse(image, 1) and not is_sparse(image, 0)
    set_strong(image, 0, False)
    assert strong_planes(image) == [2]
    with pytest.raises(PluginInputError):
        set_strong(image, 3)
    with pytest.raises(PluginInputError, match="differ"):
        set_class_names(image, ["a", "a"])
    set_class_names(image, ["bubble", "crystal", "grain"])
    assert len(class_colors(image)) == 3


def test_collect_training_data_one_entry_per_labelled_plane(viewer):
    image = add_sample(viewer, n_images=3)
    layers = linked_layers(viewer, image)
    layers["detection"].data[2] = 0
    layers["separation"].data[2] = 0  # plane 2 carries nothing: left out
    set_sparse(image, 1)
    data = collect_training_data(viewer)
    assert data.names == ["foam [plane 0]", "foam [plane 1]"]
    assert data.class_names == ("bubble", "crystal") and data.in_channels == 1
    first, second = data.labels
    assert first.strong and first.segmentation is not None
    assert not second.strong and second.segmentation is None
    assert first.detection_complete and not second.detection_complete
    np.testing.assert_array_equal(data.images[1], image.data[1])
    args = data.fit_arguments()
    assert args["images"] is data.images and args["names"] is data.names
    assert [lab.strong for lab in args["labels"]] == [True, False]
    assert [not lab.detection_complete for lab in args["labels"]] == [False, True]


def test_collect_training_data_errors_say_what_to_do(viewer):
    with pytest.raises(PluginInputError, match="no image layer"):
        collect_training_data(viewer)
    image = viewer.add_image(np.random.default_rng(0).random((24, 24)))
    with pytest.raises(PluginInputError, match="Lazy labels widget"):
        collect_training_data(viewer)
    layers = link_label_layers(viewer, image)
    with pytest.raises(PluginInputError, match="nothing is painted"):
        collect_training_data(viewer)
    layers["detection"].data[5:10, 5:10] = 1
    with pytest.raises(PluginInputError, match="no strong image"):
        collect_training_data(viewer)
    assert len(collect_training_data(viewer, require_strong=False).images) == 1
    layers["detection"].data[0, 0] = 9  # not a class of this image
    with pytest.raises(PluginInputError, match="value 9"):
        collect_training_data(viewer, require_strong=False)
    layers["detection"].data[0, 0] = 0
    viewer.layers.remove(layers["separation"])
    viewer.add_labels(
        np.zeros((5, 5), dtype=np.uint8),
        metadata=labels_metadata(link_id(image), "separation"),
    )
    with pytest.raises(PluginInputError, match="shape"):
        collect_training_data(viewer, require_strong=False)


def test_a_strong_plane_with_an_empty_mask_is_refused_by_name(foam_viewer):
    viewer = foam_viewer
    image = viewer.layers["foam"]
    set_strong(image, 2)  # plane 2 of the sample has no segmentation yet
    with pytest.raises(PluginInputError) as raised:
        collect_training_data(viewer)
    message = str(raised.value)
    assert "image 'foam', plane 2," in message and "segmentation mask is empty" in message
    assert "paint the mask" in message and "unmark the plane strong" in message
    set_strong(image, 2, False)
    assert collect_training_data(viewer).n_strong == 1

    cells = viewer.add_image(np.zeros((24, 24)), name="cells")  # a 2D image: no plane index
    link_label_layers(viewer, cells, class_names(image))["detection"].data[2:5, 2:5] = 1
    set_strong(cells, 0)
    with pytest.raises(PluginInputError, match=r"^image 'cells' is marked strong but its"):
        collect_training_data(viewer)


def test_images_with_other_classes_cannot_train_together(viewer):
    a = viewer.add_image(np.random.default_rng(0).random((16, 16)))
    b = viewer.add_image(np.random.default_rng(1).random((16, 16)))
    for image, names in ((a, ["x", "y"]), (b, ["x", "z"])):
        layers = link_label_layers(viewer, image, names)
        layers["detection"].data[:4, :4] = 1
    with pytest.raises(PluginInputError, match="same class names"):
        collect_training_data(viewer, require_strong=False)


def test_current_plane_follows_the_viewer(viewer):
    image = add_sample(viewer, n_images=3)
    viewer.dims.set_current_step(0, 0)
    assert current_plane(viewer, image) == 0
    viewer.dims.set_current_step(0, 2)
    assert current_plane(viewer, image) == 2
