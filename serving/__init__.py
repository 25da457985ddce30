"""KServe serving of hyperrec bundles (import name ``hyperrec.serving``).

- ``transformer``: the recommend transformer (request → hyperrec.features input → V2 predictor → ranked
  answer) and the ``feedback`` model;
- ``predictor``: an embedded V2 predictor running the bundle's ONNX with onnxruntime (Triton's contract);
- ``server``: the ModelServer used by ``python -m hyperrec.serving`` and ``hyperrec serve``;
- ``cli``: ``hyperrec serve``, ``hyperrec recommend``, ``hyperrec bench serve``.
"""
