"""The engine must import and run where napari and Qt are absent."""

import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent(
    """
    import sys
    BLOCKED = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt",
               "vispy", "matplotlib.backends.backend_qtagg")

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED or name in BLOCKED:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_blocker_really_blocks():
    result = run("import napari")
    assert result.returncode != 0 and "blocked" in result.stderr


def test_core_api_and_cli_import_and_run_without_qt():
    result = run(
        """
        import pkgutil, importlib
        for package in ("core", "evaluation", "sample", "cli"):
            module = importlib.import_module(f"napari_lazyunet.{package}")
            for info in pkgutil.iter_modules(module.__path__):
                importlib.import_module(f"napari_lazyunet.{package}.{info.name}")
        import napari_lazyunet.api
        from napari_lazyunet.api import LazyUNet
        from napari_lazyunet.sample.synthetic import make_foam_sample
        s = make_foam_sample(2, shape=(48, 48))
        m = LazyUNet(class_names=s.class_names, base_channels=4, depth=2)
        m.fit(s.images[:1], detection=s.detection[:1], segmentation=s.classes[:1],
              steps=1, batch_size=1, patch_size=32)
        r = m.predict(s.images[1])
        assert r.instances.shape == (48, 48)
        import sys
        bad = [n for n in sys.modules if n.split(".")[0] in ("napari", "qtpy", "PyQt6", "vispy")]
        assert not bad, bad
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
