"""Re-identification ("identities as points"): FastReID's bag-of-tricks (BoT) baseline
(Luo et al. 2019) as task ``reid``: ReID image sets and a P×K sampler (``data/``), a ResNet
with last stride 1 and a BNNeck (``model``), label-smoothed cross-entropy plus batch-hard
triplet (``losses``), chunked CMC/mAP/mINP (``metrics``), k-reciprocal re-ranking
(``rerank``), an evaluator (``evaluator``), the task (``task``), the predictor, retrieval
strips (``retrieval``) and ONNX export (``onnx_export``).

Importing the package registers task ``reid``, its datasets and its models.
"""

from pointforge.tasks.reid import task  # noqa: F401
