"""ReID data: image sets (Market-1501, DukeMTMC-reID, a generic folder layout, a synthetic
identity set), the P×K identity batch sampler and the BoT augmentation."""
