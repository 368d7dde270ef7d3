"""Tooling no notebook imports: make run-all, make rehearse, make bench, make exercises and the Colab badges."""
