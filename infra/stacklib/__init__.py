"""The code behind `infra/stack.py`: the embedded stack's processes, packaging and deploy, and the command line."""
