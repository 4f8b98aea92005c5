"""Gradient-descent training from small init: models, the training engine, what a record measures,
data and images, the escape prediction (through ode/), its sweep, figures and phase diagrams."""
