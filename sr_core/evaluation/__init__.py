"""Quality evaluation of super-resolution models.

* :mod:`~sr_core.evaluation.core`: a 10-band x2 model package on whole scenes, reduced resolution (Wald) and full
  resolution (:func:`~sr_core.evaluation.core.evaluate_model`, :func:`~sr_core.evaluation.core.run_evaluation`);
* :mod:`~sr_core.evaluation.wald`: the Wald protocol's degradation operators and the per-band PSNR gains of a
  torch model (the training's validation);
* :mod:`~sr_core.evaluation.report` and :mod:`~sr_core.evaluation.figures`: the JSON / Markdown report and the
  figures of an evaluation (matplotlib is imported when a figure is drawn);
* :mod:`~sr_core.evaluation.misr`: multi-image SR against single-image SR and baselines (``s2sr evaluate --misr``);
* :mod:`~sr_core.evaluation.tasks`: task-based assessment (``s2sr evaluate --tasks``);
* :mod:`~sr_core.evaluation.run`: the evaluation runs as ``s2sr evaluate`` starts them.

Importing this package imports none of them (nor torch): the command line reads :data:`DEFAULT_DEGRADATIONS`
from here to build its help.
"""

#: The training operator and an unseen second blur + decimation (robustness check), names of
#: :data:`sr_core.evaluation.wald.DEGRADATIONS`.
DEFAULT_DEGRADATIONS = ("mtf_gaussian", "mtf_bicubic_aa")
