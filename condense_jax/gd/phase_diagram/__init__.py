"""The phase diagram of a training sweep: RD against width per grid point (fit.py), its figures."""
