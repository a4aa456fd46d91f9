"""Training a specialist encoder (``fp-rank train-encoder``): the authors' car-classifier recipe.

* :mod:`~fp_rank.training.data`: the labelled images (Hub dataset, datasets folder, ImageFolder)
  and the benchmark gallery's images left out;
* :mod:`~fp_rank.training.trainer`: the recipe, the network, checkpoints;
* :mod:`~fp_rank.training.run`: :func:`train_encoder`, which writes a folder that
  ``fp_rank.load_encoder(FOLDER)`` and ``--encoder FOLDER`` load like any backbone.

Nothing here is imported until used (``fp-rank --help`` loads no torch).
"""

from fp_rank._lazy import lazy_exports

#: The reference recipe's backbone (torchvision's EfficientNetV2-S).
TORCHVISION_BACKBONE = "efficientnet_v2_s"

__all__ = ["ENCODER_FILE", "TORCHVISION_BACKBONE", "Recipe", "Trained", "load_training_data", "train_encoder"]

_EXPORTS = {"ENCODER_FILE": "fp_rank.training.run", "Recipe": "fp_rank.training.trainer", "Trained": "fp_rank.training.run",
            "load_training_data": "fp_rank.training.data", "train_encoder": "fp_rank.training.run"}
__getattr__, __dir__ = lazy_exports("fp_rank.training", _EXPORTS, globals())
