"""Re-identification ("identities as points"): building blocks for a FastReID bag-of-tricks
(BoT) baseline (Luo et al. 2019): ReID image sets and a P×K sampler (``data/``), a ResNet with
last stride 1 and a BNNeck (``model``), label-smoothed cross-entropy plus batch-hard triplet
(``losses``), chunked CMC/mAP/mINP (``metrics``), k-reciprocal re-ranking (``rerank``) and
an evaluator (``evaluator``).
"""
