"""Benchmarks of Autoencoder Lab against the plain PyTorch way and issue 5's targets.

Run `python -m bench` (or `--quick` for a short smoke run); see BENCHMARKS.md."""
