"""An example plugin package for flopsfit: a model with dropout, a dataset, a loss, a size rule.

docs/plugins.md walks through it; examples/my_config.py is the config that uses it.
"""
