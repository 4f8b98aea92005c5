"""The engine: what every sweep shares and that knows no family (plan, execute, store, devices,
cluster, report, figures, statistics). It imports nothing from ode/, gd/, four_phases/ or kinds.py."""
