"""The effective ODE of the three-layer network (3.10) to its blow-up T*: its vector fields and
reduced form, the solver, the theorems' bounds, its sweep and its figures."""
