"""The bundled real sample: a lossless L1C crop shipped with the package (works without ../shared)."""

from __future__ import annotations

from pathlib import Path

from sr_core.io.scene_folder import Scene, read_scene

__all__ = [
    "SAMPLE_HOLDOUT",
    "SAMPLE_ID",
    "SAMPLE_SOURCE_ID",
    "SAMPLE_WINDOW",
    "load_sample",
    "sample_scene_path",
]

#: Source scene of the bundled sample (DSen2 test image, CC BY 4.0).
SAMPLE_SOURCE_ID = "S2A_MSIL1C_20170527_T33UUB"
#: The crop window in 10 m pixels of the source: (row0, row1, col0, col1), half-open.
SAMPLE_WINDOW = (344, 600, 344, 600)
#: Id (and folder name) of the bundled sample.
SAMPLE_ID = f"{SAMPLE_SOURCE_ID}_crop256"
#: Held-out VALIDATION region: never train on these pixels of this scene (any band, any resolution).
SAMPLE_HOLDOUT = (SAMPLE_SOURCE_ID, SAMPLE_WINDOW)


def sample_scene_path() -> Path:
    """Folder of the bundled sample scene (shared layout: bands_10m.tif, bands_20m.tif, scene.json)."""
    p = Path(__file__).resolve().parent.parent / "data" / "sample" / SAMPLE_ID
    if not (p / "scene.json").is_file():
        raise FileNotFoundError(
            f"the bundled sample is missing at {p}: the package was installed without its data files "
            "(package_data sr_core/data/sample)"
        )
    return p


def load_sample() -> Scene:
    """The bundled sample as a :class:`~sr_core.io.scene_folder.Scene` (256 x 256 at 10 m, 128 x 128 at 20 m)."""
    return read_scene(sample_scene_path())
