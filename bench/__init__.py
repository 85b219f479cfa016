"""Benchmark harness for pix-payouts on the embedded stack (`make bench`)."""
