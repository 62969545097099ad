"""Model packages: a network + its band/scale/normalisation contract, shipped as weights + ONNX + model card.

* :mod:`~sr_core.models.card`: the model card (``card.json``) and its schema, where packages live, checksums, the
  card's contract carried in the checksummed ONNX file (:mod:`~sr_core.models.onnx_metadata` reads and writes it).
* :mod:`~sr_core.models.choice`: the shipped model chosen by the bands of an input and the output resolution
  asked when no model is named; a model's output resolution.
* :mod:`~sr_core.models.engines`: ONNX Runtime sessions and torch networks of a package as numpy functions.
* :mod:`~sr_core.models.postprocess`: the card's post-processing after the network (numpy).
* :mod:`~sr_core.models.predictor`: the single-image and multi-image predictors and their cached loaders.
* :mod:`~sr_core.models.network` (torch): :class:`~sr_core.models.network.SRModel`, a network with its
  normalisation.
* :mod:`~sr_core.models.export` (torch): ONNX export and the writing of a package.

This package re-exports the names of the first four; importing it imports neither torch nor ONNX Runtime (the
ONNX engine is what back-ends run, without torch).
"""

from sr_core.models.card import (
    CARD_VERSION,
    CONTRACT_KEY,
    DEFAULT_MISR_MODEL,
    DEFAULT_MODEL,
    WEIGHTS_DIR,
    ModelCard,
    ModelFileError,
    card_contract,
    check_onnx_contract,
    list_models,
    load_card,
    render_card_markdown,
    resolve_model,
    sha256_file,
    stamp_onnx_contract,
)
from sr_core.models.choice import (
    AUTO_MODELS,
    DEFAULT_RESOLUTION,
    RGBN_MODEL,
    SHARPEN_MODEL,
    auto_resolutions,
    check_model_resolution,
    check_resolution,
    choose_model,
    model_resolution,
    pick_model,
)
from sr_core.models.engines import ENGINES, load_torch_model, ort_session_options
from sr_core.models.postprocess import apply_postprocess, resolve_postprocess
from sr_core.models.predictor import (
    MISRPredictor,
    Predictor,
    check_predictor,
    load_misr_predictor,
    load_predictor,
)

__all__ = [
    "AUTO_MODELS",
    "CARD_VERSION",
    "CONTRACT_KEY",
    "DEFAULT_MISR_MODEL",
    "DEFAULT_MODEL",
    "DEFAULT_RESOLUTION",
    "ENGINES",
    "WEIGHTS_DIR",
    "MISRPredictor",
    "ModelCard",
    "ModelFileError",
    "Predictor",
    "RGBN_MODEL",
    "SHARPEN_MODEL",
    "apply_postprocess",
    "auto_resolutions",
    "card_contract",
    "check_model_resolution",
    "check_onnx_contract",
    "check_resolution",
    "choose_model",
    "check_predictor",
    "list_models",
    "load_card",
    "load_misr_predictor",
    "load_predictor",
    "load_torch_model",
    "model_resolution",
    "ort_session_options",
    "pick_model",
    "render_card_markdown",
    "resolve_model",
    "resolve_postprocess",
    "sha256_file",
    "stamp_onnx_contract",
]
