"""The four phases of a two-layer ReLU classifier from small init: data, dynamics (GD and gradient
flow), the detector, its sweep and its figures."""
