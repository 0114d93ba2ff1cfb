"""Switchyard's benchmark harness (bench/README.md): systems, scenarios, measurements, report."""
